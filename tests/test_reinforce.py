"""REINFORCE: returns on a hand-computed episode, the loss, baselines and normalization, the episode
source, action maps, the shared RL plumbing (videos refused without a renderer), and continuous actions:
the Gaussian log-probability and its score by hand, the policies' distributions against the hand-written
log-probabilities and entropies, actions within bounds, unsupported spaces, MuJoCo videos."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import gymnasium as gym
import numpy as np
import pytest
import pytorch_lightning as pl
import torch

from rlgen.callbacks.rl import EnvStepBudget
from rlgen.cli.summary import closing_summary
from rlgen.envs import make_vector_env
from rlgen.errors import RlgenError
from rlgen.experience.sources import EpisodeExperience
from rlgen.lightning_modules.reinforce import Reinforce, discounted_returns, reinforce_loss
from rlgen.nets.rl import CategoricalPolicy, GaussianPolicy
from tests.conftest import CONFIGS, REPO, run_cli
from tests.test_cli import expect_error


def test_reward_to_go_and_whole_return_on_two_tiny_episodes():
    rewards = np.array([1.0, 0.0, 2.0, 1.0, 1.0])
    lengths = np.array([3, 2])
    # Episode 1 with gamma 0.5: G2 = 2, G1 = 0 + 0.5 * 2 = 1, G0 = 1 + 0.5 * 1 = 1.5; episode 2: G1 = 1, G0 = 1.5.
    np.testing.assert_allclose(discounted_returns(rewards, lengths, 0.5), [1.5, 1.0, 2.0, 1.5, 1.0])
    np.testing.assert_allclose(discounted_returns(rewards, lengths, 0.5, reward_to_go=False),
                               [1.5, 1.5, 1.5, 1.5, 1.5])


def test_returns_restart_at_each_point_for_pong():
    rewards = np.array([0.0, 1.0, 0.0, -1.0])
    # Backwards: G3 = -1, G2 = -0.5; r1 = +1 ends a point, so G1 = 1 (no -0.5 leaks in), G0 = 0.5.
    np.testing.assert_allclose(discounted_returns(rewards, np.array([4]), 0.5, reset_on_reward=True),
                               [0.5, 1.0, -0.5, -1.0])


def test_reinforce_loss_by_hand():
    logits = torch.zeros(3, 2, requires_grad=True)  # pi = (1/2, 1/2): log pi = -ln 2, entropy ln 2
    actions = torch.tensor([0, 1, 1])
    advantages = torch.tensor([1.0, -2.0, 3.0])
    dist = torch.distributions.Categorical(logits=logits)
    loss, entropy = reinforce_loss(dist.log_prob(actions), dist.entropy(), advantages, n_episodes=2, entropy_coef=0.1)
    # -(1/2) * sum_t A_t * (-ln 2) - 0.1 * ln 2 = (2 / 2) ln 2 - 0.1 ln 2
    assert loss.item() == pytest.approx(math.log(2) - 0.1 * math.log(2))
    assert entropy.item() == pytest.approx(math.log(2))
    loss.backward()
    # d/d logit_a of -A log softmax: -A (1[a] - 1/2) / E; row 0 took action 0 with A = 1.
    # (the entropy is at its maximum, so its gradient is zero)
    torch.testing.assert_close(logits.grad[0], torch.tensor([-0.25, 0.25]))


def test_advantages_normalization_and_running_mean_baseline():
    returns = torch.tensor([1.0, 2.0, 3.0, 6.0])
    normalized = Reinforce(normalize_returns=True)._advantages(returns, None)
    assert normalized.mean().item() == pytest.approx(0.0, abs=1e-6)
    assert normalized.std().item() == pytest.approx(1.0, abs=1e-4)
    mean_baseline = Reinforce(normalize_returns=False, baseline="mean", baseline_momentum=0.5)
    torch.testing.assert_close(mean_baseline._advantages(returns, None), returns)  # baseline starts at 0
    assert mean_baseline.baseline_mean.item() == pytest.approx(0.5 * 3.0)  # then moves halfway to the mean 3
    torch.testing.assert_close(mean_baseline._advantages(returns, None), returns - 1.5)
    value = Reinforce(normalize_returns=False, baseline="value")
    torch.testing.assert_close(value._advantages(returns, torch.ones(4)), returns - 1.0)


def test_episode_source_yields_whole_episodes():
    envs = make_vector_env("CartPole-v1", 2, seed=3)
    source = EpisodeExperience(envs, lambda obs: np.zeros(len(obs), dtype=np.int64), episodes_per_batch=3, seed=3)
    batch = next(iter(source))
    assert len(batch.lengths) == 3 and batch.lengths.sum().item() == len(batch.obs) == len(batch.rewards)
    assert batch.obs.shape[1:] == (4,)
    assert source.stats.episodes == 3 and source.stats.returns == [float(n) for n in batch.lengths]
    envs.close()


def test_action_map_round_trip():
    model = Reinforce(env_id="ALE/Pong-v5", action_map=[2, 3])
    env_actions = model._to_env_action(torch.tensor([0, 1, 1]))
    assert env_actions.tolist() == [2, 3, 3]
    assert model._to_policy_action(env_actions).tolist() == [0, 1, 1]


@pytest.mark.parametrize("bad", [{"lr": 0.0}, {"gamma": 1.5}, {"entropy_coef": -1.0}, {"action_map": [2]}])
def test_bad_hyperparameters_raise_one_line_errors(bad):
    with pytest.raises(RlgenError):
        Reinforce(**bad)


def test_reinforce_fit_then_test_from_checkpoint(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = str(CONFIGS / "reinforce" / "cartpole.yaml")
    args = ["--trainer.enable_progress_bar=false", "--trainer.val_check_interval=4", "--model.eval_episodes=2"]
    run_cli("fit", "-c", cfg, "--trainer.max_steps=8", *args)
    (last,) = tmp_path.rglob("last.ckpt")
    ckpt = torch.load(last, weights_only=False)
    state = ckpt["rl_state"]["rollout"]
    # one episode per gradient step (and one fetched ahead); a CartPole episode lasts >= 8 steps
    assert state["episodes"] >= ckpt["global_step"] >= 4 and state["env_steps"] >= 8 * state["episodes"]
    run_cli("test", "-c", cfg, f"--ckpt_path={last}", "--model.test_episodes=2", *args)


def test_video_without_renderer_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    try:
        import pygame  # noqa: F401

        pytest.skip("pygame is installed: CartPole renders")
    except ImportError:
        pass
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        run_cli("test", "-c", str(CONFIGS / "reinforce" / "cartpole.yaml"), "--model.video_dir=videos",
                "--model.test_episodes=1", "--trainer.enable_progress_bar=false")
    assert "needs its renderer" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ continuous actions
class SpacesEnv(gym.Env):
    """5-step episodes of 3-D observations, with the action space named by ``space``; records every action
    the environment receives in ``SpacesEnv.received``."""

    received: list[np.ndarray] = []
    SPACES = {
        "box": lambda: gym.spaces.Box(np.array([-1, 0], np.float32), np.array([1, 2], np.float32)),
        "unbounded": lambda: gym.spaces.Box(-np.inf, np.inf, (2,), dtype=np.float32),
        "box2d": lambda: gym.spaces.Box(-1.0, 1.0, (2, 2), dtype=np.float32),
        "dict": lambda: gym.spaces.Dict({"a": gym.spaces.Discrete(2)}),
        "multidiscrete": lambda: gym.spaces.MultiDiscrete([2, 3]),
        "multibinary": lambda: gym.spaces.MultiBinary(3),
    }

    def __init__(self, space: str = "box") -> None:
        self.action_space = self.SPACES[space]()
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (3,), dtype=np.float32)
        self.t = 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self.observation_space.sample(), {}

    def step(self, action):
        SpacesEnv.received.append(np.array(action))
        self.t += 1
        return self.observation_space.sample(), 1.0, False, self.t >= 5, {}


SPACES_ID = "rlgen-test/Spaces-v0"
if SPACES_ID not in gym.registry:
    gym.register(id=SPACES_ID, entry_point=SpacesEnv)


def test_gaussian_log_prob_entropy_and_score_by_hand():
    mean = torch.tensor([[0.0, 1.0], [2.0, -1.0]], requires_grad=True)
    policy = GaussianPolicy().build((1,), 2)
    log_std = policy.log_std = torch.nn.Parameter(torch.tensor([0.0, math.log(2.0)]))  # sigma = (1, 2)
    actions = torch.tensor([[1.0, 1.0], [0.0, 3.0]])
    advantages = torch.tensor([1.0, -2.0])
    dist = policy._distribution(mean)  # the distribution of means `mean` and this sigma, as the policy builds it
    z = (actions - mean) / log_std.exp()
    by_hand = (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)  # (2,)
    torch.testing.assert_close(dist.log_prob(actions), by_hand)
    loss, entropy = reinforce_loss(dist.log_prob(actions), dist.entropy(), advantages, n_episodes=1)
    torch.testing.assert_close(entropy, (log_std + 0.5 * (1 + math.log(2 * math.pi))).sum())
    loss.backward()
    # z = (a - mu) / sigma: row 0 (1, 0), row 1 (-2, 2). d loss/d mu = -A (a - mu) / sigma^2:
    # row 0: -1 * (1/1, 0/4) = (-1, 0); row 1: 2 * (-2/1, 4/4) = (-4, 2).
    torch.testing.assert_close(mean.grad, torch.tensor([[-1.0, 0.0], [-4.0, 2.0]]))
    # d loss/d log sigma_i = -sum_t A_t (z_ti^2 - 1): dim 0: -(1 * 0 - 2 * 3) = 6; dim 1: -(1 * -1 - 2 * 3) = 7.
    torch.testing.assert_close(log_std.grad, torch.tensor([6.0, 7.0]))
    # the same gradients through torch.distributions
    mean2, log_std2 = mean.detach().requires_grad_(), log_std.detach().requires_grad_()
    dist = torch.distributions.Normal(mean2, log_std2.exp())
    (-(dist.log_prob(actions).sum(-1) * advantages).sum()).backward()
    torch.testing.assert_close((mean2.grad, log_std2.grad), (mean.grad, log_std.grad))


def test_gaussian_actions_are_clipped_into_the_bounds_and_the_batch_keeps_the_samples():
    SpacesEnv.received = []
    model = Reinforce(env_id=SPACES_ID, policy=GaussianPolicy(hidden_sizes=[8], init_std=5.0), seed=0)
    model.setup("fit")
    assert model.continuous and model.policy.log_std.shape == (2,)
    envs = model._make_train_envs()
    batch = next(iter(EpisodeExperience(envs, model._act, episodes_per_batch=4, seed=0)))
    envs.close()
    low, high = np.array([-1.0, 0.0]), np.array([1.0, 2.0])
    assert batch.actions.dtype == torch.float32 and batch.actions.shape == (20, 2)  # 4 episodes of 5 steps
    samples = batch.actions.numpy()
    assert ((samples < low) | (samples > high)).any(), "sigma = 5: some samples fall outside the bounds"
    received = np.array(SpacesEnv.received)  # (20, 2): what the environment was given
    assert received.shape == (20, 2) and (received >= low).all() and (received <= high).all()
    np.testing.assert_allclose(received, np.clip(samples, low, high))
    greedy = model(torch.full((6, 3), 50.0))  # far-out observations: the clipped mean
    assert greedy.shape == (6, 2) and (greedy >= torch.tensor(low)).all() and (greedy <= torch.tensor(high)).all()
    assert model._eval_action(np.zeros(3, np.float32)).shape == (2,)


@pytest.mark.parametrize("space, fragments", [
    ("unbounded", ["unbounded", "finite bounds"]),
    ("box2d", ["one vector of actions"]),
    ("dict", ["Discrete actions or a bounded 1-D Box", "Dict"]),
    ("multidiscrete", ["Discrete actions or a bounded 1-D Box", "MultiDiscrete"]),
    ("multibinary", ["Discrete actions or a bounded 1-D Box", "MultiBinary"]),
])
def test_unsupported_action_spaces_are_one_line_errors(space, fragments):
    model = Reinforce(env_id=SPACES_ID, env_options={"env_kwargs": {"space": space}})
    with pytest.raises(RlgenError) as err:
        model.setup("fit")
    assert "\n" not in str(err.value) and all(f in str(err.value) for f in fragments), str(err.value)


def test_policy_defaults_to_the_action_space_and_does_not_change_the_given_network():
    gaussian = Reinforce(env_id="Pendulum-v1", baseline="value")
    gaussian.setup("fit")
    assert isinstance(gaussian.policy, GaussianPolicy) and gaussian.policy.value is not None
    categorical = Reinforce(env_id="CartPole-v1")
    categorical.setup("fit")
    assert isinstance(categorical.policy, CategoricalPolicy) and categorical.policy.value is None
    given = CategoricalPolicy(hidden_sizes=[8])
    model = Reinforce(policy=given, baseline="value")
    assert given.value_head is False, "the caller's network keeps its configuration"
    model.setup("fit")
    assert model.policy is given and given.value is not None, "the value network is built for baseline: value"
    with pytest.raises(RlgenError, match="GaussianPolicy"):
        Reinforce(env_id="Pendulum-v1", policy=CategoricalPolicy()).setup("fit")
    with pytest.raises(RlgenError, match="action_map is for Discrete"):
        Reinforce(env_id="Pendulum-v1", action_map=[0, 1]).setup("fit")


def test_env_step_budget_stops_training(tmp_path):
    model = Reinforce(env_id="Pendulum-v1", episodes_per_batch=1, seed=0)
    trainer = pl.Trainer(max_steps=100, limit_val_batches=0, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp_path,
                         callbacks=[EnvStepBudget(max_env_steps=400)])
    trainer.fit(model)
    # Pendulum episodes last 200 steps: one gradient step, and the batch Lightning fetched ahead spends the rest
    assert model.rollout.env_steps == 400 and trainer.global_step == 1
    # the closing summary says why the run stopped short of max_steps
    head = closing_summary("fit", trainer, model, [], time.time()).splitlines()[0]
    assert head.endswith(": 400 env steps spent the budget of 400 (EnvStepBudget)"), head


def test_the_closing_summary_names_max_time_when_the_timer_stops_training(tmp_path):
    model = Reinforce(env_id="Pendulum-v1", episodes_per_batch=1, seed=0)
    trainer = pl.Trainer(max_steps=100, max_time={"seconds": 0}, limit_val_batches=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         default_root_dir=tmp_path)
    trainer.fit(model)
    assert trainer.global_step < 100  # stopped by the Timer, not by max_steps
    head = closing_summary("fit", trainer, model, [], time.time()).splitlines()[0]
    assert head.endswith(": max_time of 0 s reached (Timer)"), head


def test_seeded_tiny_pendulum_run_end_to_end(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = str(CONFIGS / "reinforce" / "inverted_pendulum.yaml")
    args = ["--model.env_id=Pendulum-v1", "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            "--seed_everything=1", "--model.episodes_per_batch=1", "--model.eval_episodes=1"]  # no MuJoCo
    weights = []
    for run_dir in ("a", "b"):
        run_cli("fit", "-c", cfg, "--trainer.max_steps=3", "--trainer.val_check_interval=3",
                f"--trainer.default_root_dir={run_dir}", f"--trainer.logger.init_args.save_dir={run_dir}", *args)
        (last,) = (tmp_path / run_dir).rglob("last.ckpt")
        ckpt = torch.load(last, weights_only=False)
        assert ckpt["global_step"] == 3 and ckpt["rl_state"]["rollout"]["env_steps"] >= 600  # + one batch fetched ahead
        weights.append(ckpt["state_dict"])
    assert set(weights[0]) >= {"policy.log_std", "policy.mean.0.weight", "policy.value.0.weight"}
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0]), "same seed, same weights"
    run_cli("test", "-c", cfg, f"--ckpt_path={last}", "--model.test_episodes=1", "--trainer.default_root_dir=b",
            "--trainer.logger.init_args.save_dir=b", *args)


def test_mujoco_video_renders_headless(tmp_path, monkeypatch):
    pytest.importorskip("mujoco")
    monkeypatch.chdir(tmp_path)
    try:
        run_cli("test", "-c", str(CONFIGS / "reinforce" / "inverted_pendulum.yaml"), "--model.video_dir=videos",
                "--model.test_episodes=1", "--trainer.enable_progress_bar=false")
    except SystemExit:
        pytest.skip("no headless OpenGL (EGL or OSMesa) on this machine")
    (video,) = (tmp_path / "videos").glob("*.mp4")
    assert video.stat().st_size > 0


def test_mujoco_video_without_a_working_backend_is_a_one_line_error(tmp_path, monkeypatch, capsys):
    pytest.importorskip("mujoco")
    from gymnasium.envs.mujoco.mujoco_rendering import MujocoRenderer

    def no_opengl(*args, **kwargs):
        raise AttributeError("'NoneType' object has no attribute 'glGetError'")  # PyOpenGL without OSMesa

    monkeypatch.setattr(MujocoRenderer, "render", no_opengl)
    monkeypatch.chdir(tmp_path)
    expect_error(capsys, ["test", "-c", str(CONFIGS / "reinforce" / "inverted_pendulum.yaml"), "--model.video_dir=v",
                          "--model.test_episodes=1", "--trainer.enable_progress_bar=false"],
                 "needs MuJoCo's headless OpenGL", "MUJOCO_GL=", "osmesa")


@pytest.mark.xdist_group("processes")  # a fresh interpreter: MuJoCo reads MUJOCO_GL when it is first imported
def test_mujoco_with_a_broken_backend_is_a_one_line_error(tmp_path):
    pytest.importorskip("mujoco")
    code = ("from rlgen.cli import cli_main\n"
            f"cli_main(['fit', '-c', {str(CONFIGS / 'reinforce' / 'inverted_pendulum.yaml')!r}, "
            "'--trainer.max_steps=1'])\n")
    env = {**os.environ, "PYTHONPATH": str(REPO), "MUJOCO_GL": "no-such-backend"}
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, timeout=300,
                          env=env)
    assert proc.returncode == 1, proc.stderr[-3000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("rlgen: error: ") and "MUJOCO_GL=no-such-backend" in last and "unset" in last, last


# ------------------------------------------------------------------------------ policies return distributions
def test_policy_distributions_equal_the_hand_written_log_probs_and_entropies():
    """The distributions of ``Policy.distribution`` give the log-probabilities and entropies that REINFORCE
    computed by hand before it took them from ``torch.distributions`` (the formulas are written out here)."""
    torch.manual_seed(0)
    obs = torch.randn(5, 3)
    gaussian = GaussianPolicy(hidden_sizes=[8], init_std=0.7).build((3,), 2)
    with torch.no_grad():
        gaussian.log_std.copy_(torch.tensor([math.log(0.7), math.log(2.0)]))
    mean, _ = gaussian(obs)  # (5, 2)
    actions = torch.randn(5, 2) * 2
    dist, value = gaussian.distribution(obs)
    assert value is None and dist.batch_shape == (5,) and dist.event_shape == (2,)
    log_std = gaussian.log_std
    z = (actions - mean) / log_std.exp()
    by_hand = (-0.5 * z.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(dim=-1)  # (5,): sum over dimensions
    torch.testing.assert_close(dist.log_prob(actions), by_hand, atol=1e-6, rtol=1e-6)
    entropy_by_hand = (log_std + 0.5 * (1.0 + math.log(2 * math.pi))).sum()  # the same in every state
    torch.testing.assert_close(dist.entropy(), entropy_by_hand.expand(5), atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(dist.mode, mean)

    categorical = CategoricalPolicy(hidden_sizes=[8]).build((3,), 4, value_head=True)
    logits, values = categorical(obs)  # (5, 4), (5,)
    dist, value = categorical.distribution(obs)
    torch.testing.assert_close(value, values)
    choice = torch.tensor([0, 3, 1, 2, 3])
    log_softmax = logits - logits.exp().sum(dim=1, keepdim=True).log()  # (5, 4)
    torch.testing.assert_close(dist.log_prob(choice), log_softmax[torch.arange(5), choice])
    torch.testing.assert_close(dist.entropy(), -(log_softmax.exp() * log_softmax).sum(dim=1))
    assert dist.mode.tolist() == logits.argmax(dim=1).tolist()
