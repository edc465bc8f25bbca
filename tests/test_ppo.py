"""PPO and A2C: GAE on a hand-worked rollout with a terminal and a truncation, the rollout source's handling of
next-step autoreset, the clipped surrogate and value losses by hand, the running statistics, bad inputs, a short
CartPole run that learns, the A2C setting, and the normalization statistics through a checkpoint and `rlgen test`."""

from __future__ import annotations

import math
import threading
from concurrent.futures import ThreadPoolExecutor

import gymnasium as gym
import numpy as np
import pytest
import torch

from rlgen.cli import run
from rlgen.errors import RlgenError
from rlgen.experience import PolicyStep, RewardScaler, RolloutExperience, RunningMeanStd, gae
from rlgen.lightning_modules.ppo import PPO, clipped_surrogate_loss, value_loss
from tests.conftest import CONFIGS


# ------------------------------------------------------------------------------------------------ GAE
def test_gae_by_hand_with_a_terminal_and_a_truncation():
    # Env 0: step 1 ends in a terminal state, step 3 is cut by a time limit; env 1 never ends.
    rewards = torch.tensor([[1.0, 1.0], [2.0, 1.0], [3.0, 1.0], [4.0, 1.0]])  # (T=4, N=2)
    values = torch.tensor([[10.0, 0.0], [20.0, 0.0], [30.0, 0.0], [40.0, 0.0], [50.0, 8.0]])  # (T + 1, N)
    terminated = torch.tensor([[False, False], [True, False], [False, False], [False, False]])
    truncated = torch.tensor([[False, False], [False, False], [False, False], [True, False]])
    advantages, returns = gae(rewards, values, terminated, truncated, gamma=0.5, gae_lambda=0.5)
    # gamma * lambda = 0.25. Env 0, backwards:
    #   t=3 truncated: delta = 4 + 0.5 * 50 - 40 = -11 (bootstraps from V(s_4) = 50); A_3 = -11
    #   t=2: delta = 3 + 0.5 * 40 - 30 = -7; A_2 = -7 + 0.25 * (-11) = -9.75
    #   t=1 terminal: delta = 2 + 0 - 20 = -18; the sum stops: A_1 = -18
    #   t=0: delta = 1 + 0.5 * 20 - 10 = 1; A_0 = 1 + 0.25 * (-18) = -3.5
    # Env 1: delta = (1, 1, 1, 1 + 0.5 * 8) = (1, 1, 1, 5); A = (1.390625, 1.5625, 2.25, 5)
    expected = torch.tensor([[-3.5, 1.390625], [-18.0, 1.5625], [-9.75, 2.25], [-11.0, 5.0]])
    torch.testing.assert_close(advantages, expected)
    torch.testing.assert_close(returns, expected + values[:-1])


def test_gae_lambda_one_is_the_discounted_return_minus_the_value():
    rewards = torch.tensor([[1.0], [2.0], [3.0]])
    values = torch.tensor([[0.5], [1.0], [-1.0], [4.0]])
    no = torch.zeros(3, 1, dtype=torch.bool)
    advantages, returns = gae(rewards, values, no, no, gamma=0.9, gae_lambda=1.0)
    expected_returns = torch.tensor([[1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 4], [2 + 0.9 * 3 + 0.81 * 4], [3 + 0.9 * 4]])
    torch.testing.assert_close(returns, expected_returns)
    torch.testing.assert_close(advantages, expected_returns - values[:-1])


class CountEnv(gym.Env):
    """Observation [t], reward 1, episodes of 3 steps ended by a time limit (or a terminal state)."""

    def __init__(self, terminal: bool = False) -> None:
        self.observation_space = gym.spaces.Box(0.0, 10.0, (1,), dtype=np.float32)
        self.action_space = gym.spaces.Discrete(2)
        self.terminal, self.t = terminal, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.array([0.0], np.float32), {}

    def step(self, action):
        self.t += 1
        end = self.t >= 3
        return np.array([float(self.t)], np.float32), 1.0, end and self.terminal, end and not self.terminal, {}


@pytest.mark.parametrize("terminal, advantage_at_end", [(False, 1 + 0.5 * 30 - 20), (True, 1 - 20)])
def test_rollout_bootstraps_a_truncation_from_the_real_final_observation(terminal, advantage_at_end):
    envs = gym.vector.SyncVectorEnv([lambda: CountEnv(terminal)])  # Gymnasium's next-step autoreset

    def act(obs):  # V(s) = 10 s
        obs_t = torch.as_tensor(obs)
        return PolicyStep(np.zeros(len(obs), np.int64), obs_t, torch.zeros(len(obs), dtype=torch.long),
                          torch.zeros(len(obs)), 10 * obs_t[:, 0])

    source = RolloutExperience(envs, act, lambda obs: 10 * torch.as_tensor(obs)[:, 0], num_steps=8, gamma=0.5,
                               gae_lambda=0.0, update_epochs=1, num_minibatches=1)
    rollout = source.collect()
    # 8 vector steps: 0->1, 1->2, 2->3 (end), reset step, 0->1, 1->2, 2->3 (end), reset step: 6 transitions
    assert rollout.obs[:, 0].tolist() == [0, 1, 2, 0, 1, 2] and source.stats.env_steps == 6
    # lambda 0: A_t = r + gamma V(s_t+1) - V(s_t) = 1 + 5 s_{t+1} - 10 s_t; at the end V(s_3) = 30 only if truncated
    expected = [1 + 5 - 0, 1 + 10 - 10, advantage_at_end] * 2
    torch.testing.assert_close(rollout.advantages, torch.tensor(expected, dtype=torch.float32))
    batches = [next(it) for it in [iter(source)]]
    assert len(batches[0].obs) == 6
    envs.close()


def test_rollout_yields_epochs_of_shuffled_minibatches():
    envs = gym.vector.SyncVectorEnv([lambda: CountEnv() for _ in range(2)])

    def act(obs):
        obs_t = torch.as_tensor(obs)
        return PolicyStep(np.zeros(len(obs), np.int64), obs_t, torch.zeros(len(obs), dtype=torch.long),
                          torch.zeros(len(obs)), torch.zeros(len(obs)))

    source = RolloutExperience(envs, act, lambda obs: torch.zeros(len(obs)), num_steps=3, update_epochs=2,
                               num_minibatches=3)
    stream = iter(source)
    batches = [next(stream) for _ in range(6)]  # one update: 2 epochs x 3 minibatches of the 6 steps
    assert [len(b.obs) for b in batches] == [2] * 6
    for epoch in (batches[:3], batches[3:]):
        assert sorted(torch.cat([b.obs for b in epoch])[:, 0].tolist()) == [0, 0, 1, 1, 2, 2]
    assert source.stats.env_steps == 6, "the next rollout is collected only after the update's minibatches"
    envs.close()


def test_rollout_recomputes_the_advantages_with_the_current_value_before_each_later_epoch():
    envs = gym.vector.SyncVectorEnv([lambda: CountEnv()])  # 0 -> 1 -> 2 -> 3 (truncated), then the reset step
    scale = [10.0]  # V(s) = scale * s: the value network, as it is when asked

    def value(seen):
        return scale[0] * torch.as_tensor(seen)[:, 0]

    def act(obs):
        obs_t = torch.as_tensor(obs)
        return PolicyStep(np.zeros(len(obs), np.int64), obs_t, torch.zeros(len(obs), dtype=torch.long),
                          torch.zeros(len(obs)), value(obs_t))

    source = RolloutExperience(envs, act, value, num_steps=4, gamma=0.5, gae_lambda=0.0, update_epochs=2,
                               num_minibatches=1, seed=0, seen_value=value)
    stream = iter(source)

    def by_state(batch):  # (values, advantages, returns) in the order s = 0, 1, 2
        order = batch.obs[:, 0].argsort()
        return [x[order].tolist() for x in (batch.values, batch.advantages, batch.returns)]

    # lambda 0: A_t = 1 + 0.5 V(s_t+1) - V(s_t); the truncation at s = 2 bootstraps from V(3)
    assert by_state(next(stream)) == [[0, 10, 20], [1 + 5 - 0, 1 + 10 - 10, 1 + 15 - 20], [6, 11, 16]]
    scale[0] = 20.0  # the value network moved during the first epoch
    assert by_state(next(stream)) == [[0, 20, 40], [1 + 10 - 0, 1 + 20 - 20, 1 + 30 - 40], [11, 21, 31]]
    envs.close()


# ------------------------------------------------------------------------------------------------ losses
def test_clipped_surrogate_by_hand():
    ratios = torch.tensor([1.5, 0.5, 1.1])
    old = torch.tensor([-1.0, -2.0, -0.5])
    log_probs = (old + ratios.log()).requires_grad_()
    advantages = torch.tensor([1.0, 1.0, -2.0])
    loss, approx_kl, clip_fraction = clipped_surrogate_loss(log_probs, old, advantages, clip_range=0.2)
    # min(rho A, clip(rho, 0.8, 1.2) A): min(1.5, 1.2) = 1.2; min(0.5, 0.8) = 0.5; min(-2.2, -2.2) = -2.2
    assert loss.item() == pytest.approx(-(1.2 + 0.5 - 2.2) / 3)
    assert clip_fraction.item() == pytest.approx(2 / 3)  # |rho - 1| > 0.2 for 1.5 and 0.5
    assert approx_kl.item() == pytest.approx(sum(r - 1 - math.log(r) for r in (1.5, 0.5, 1.1)) / 3)
    loss.backward()
    # the clipped term (rho = 1.5, A > 0) has no gradient; the others: d(-rho A / 3)/d log pi = -rho A / 3
    torch.testing.assert_close(log_probs.grad, torch.tensor([0.0, -0.5 / 3, 2.2 / 3]))
    unclipped, _, none_clipped = clipped_surrogate_loss(log_probs, old, advantages, clip_range=None)
    assert unclipped.item() == pytest.approx(-(1.5 + 0.5 - 2.2) / 3) and none_clipped.item() == 0.0


def test_a2c_setting_gives_the_advantage_actor_critic_gradient():
    """At theta = theta_old (A2C's single step) rho = 1 and d rho = d log pi: the gradient is -A_t / B."""
    log_probs = torch.tensor([-0.3, -1.2, -2.0], requires_grad=True)
    advantages = torch.tensor([2.0, -1.0, 0.5])
    loss, approx_kl, _ = clipped_surrogate_loss(log_probs, log_probs.detach(), advantages, clip_range=None)
    loss.backward()
    torch.testing.assert_close(log_probs.grad, -advantages / 3)
    assert approx_kl.item() == 0.0


def test_value_loss_by_hand():
    values, old, returns = torch.tensor([2.0, 0.0]), torch.tensor([1.0, 1.0]), torch.tensor([3.0, 0.0])
    # unclipped (V - R)^2 = (1, 0); clipped V_old + clip(V - V_old, -0.5, 0.5) = (1.5, 0.5) -> (2.25, 0.25)
    assert value_loss(values, old, returns, clip_range=0.5).item() == pytest.approx(0.5 * (2.25 + 0.25) / 2)
    assert value_loss(values, old, returns, clip_range=None).item() == pytest.approx(0.5 * (1 + 0) / 2)


# ------------------------------------------------------------------------------------------ normalization
def test_running_mean_std_matches_the_whole_stream():
    torch.manual_seed(0)
    x = torch.randn(300, 3) * torch.tensor([1.0, 5.0, 0.1]) + torch.tensor([2.0, -1.0, 0.0])
    rms = RunningMeanStd((3,))
    for part in x.split([7, 100, 193]):
        rms.update(part)
    whole = x.double().numpy()
    np.testing.assert_allclose(rms.mean, whole.mean(0), atol=1e-5, rtol=1e-5)
    np.testing.assert_allclose(rms.var, whole.var(0), atol=1e-4, rtol=1e-4)
    z = rms.normalize(x)
    assert z.dtype == torch.float32 and z.mean(0).abs().max() < 1e-3 and (z.std(0) - 1).abs().max() < 1e-2
    saved = rms.state_dict()["_extra_state"]  # the statistics are the module's state, as tensors
    np.testing.assert_array_equal(saved["mean"].numpy(), rms.mean)
    assert saved["count"] == pytest.approx(300 + 1e-4)
    copy = RunningMeanStd((3,))
    copy.load_state_dict(rms.state_dict())
    torch.testing.assert_close(copy.normalize(x), z)
    rms.update(x[:5] + 100.0)  # the statistics change in place: neither the saved state nor the copy follows
    assert rms.mean[0] > saved["mean"][0].item() + 1 and copy.mean[0] == saved["mean"][0].item()


def test_merged_statistics_of_two_ranks_are_those_of_all_their_data():
    """Two ranks (threads here, summing through a barrier as an all-reduce would) with their own streams merge after
    each of two rollouts: both end with the statistics of one RunningMeanStd that saw everything."""
    rng = np.random.default_rng(0)
    streams = [rng.normal([1.0, -2.0], [1.0, 3.0], size=(60, 2)), rng.normal([4.0, 0.0], [0.5, 1.0], size=(40, 2))]
    ranks, sent, barrier = [RunningMeanStd((2,)), RunningMeanStd((2,))], [None, None], threading.Barrier(2, timeout=10)

    def train(rank: int) -> None:
        def total(x: np.ndarray) -> np.ndarray:
            sent[rank] = x
            barrier.wait()
            summed = sent[0] + sent[1]
            barrier.wait()  # both have read before the next merge sends again
            return summed

        for rollout in np.array_split(streams[rank], 2):
            for row in rollout:
                ranks[rank].update(row[None])
            ranks[rank].merge(total)

    with ThreadPoolExecutor(2) as pool:
        for done in [pool.submit(train, rank) for rank in (0, 1)]:
            done.result()
    whole = RunningMeanStd((2,))
    whole.update(np.concatenate(streams))
    for rms in ranks:
        np.testing.assert_allclose(rms.mean, whole.mean, rtol=1e-9)
        np.testing.assert_allclose(rms.var, whole.var, rtol=1e-9)
        assert rms.count == pytest.approx(100 + 1e-4)


def test_reward_scaler_divides_by_the_std_of_the_discounted_return():
    scaler = RewardScaler(gamma=0.5)
    ones, no = torch.ones(1), torch.zeros(1, dtype=torch.bool)
    out = [scaler.scale(ones, no).item() for _ in range(3)]
    # returns G = 1, 1.5, 1.75; the third reward is divided by their std (the prior count 1e-4 barely counts)
    assert out[2] == pytest.approx(1 / np.std([1.0, 1.5, 1.75]), rel=1e-3)
    scaler.scale(ones, torch.ones(1, dtype=torch.bool))
    assert scaler.returns.tolist() == [0.0], "the return restarts after an episode's end"
    assert set(scaler.state_dict()) == {"return_rms._extra_state"}


# -------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize("bad, fragment", [
    ({"clip_range": 0.0}, "clip_range must be > 0"),
    ({"gae_lambda": 1.5}, "gae_lambda must be in [0, 1]"),
    ({"gae_lambda": -0.1}, "gae_lambda must be in [0, 1]"),
    ({"update_epochs": 0}, "update_epochs must be >= 1"),
    ({"num_minibatches": 9, "num_envs": 2, "num_steps": 4}, "more than the rollout's 8 steps"),
    ({"lr": 0.0}, "lr must be > 0"),
])
def test_bad_hyperparameters_raise_one_line_errors(bad, fragment):
    with pytest.raises(RlgenError) as err:
        PPO(**bad)
    assert fragment in str(err.value) and "\n" not in str(err.value)


def test_policy_matches_the_action_space():
    from rlgen.nets.rl import CategoricalPolicy, GaussianPolicy

    model = PPO(env_id="Pendulum-v1")
    model.setup("fit")
    assert isinstance(model.policy, GaussianPolicy) and model.policy.value is not None
    with pytest.raises(RlgenError, match="GaussianPolicy"):
        PPO(env_id="Pendulum-v1", policy=CategoricalPolicy()).setup("fit")


def test_pi_is_the_policy_distribution_without_the_value_network():
    from rlgen.nets.rl import CategoricalPolicy, GaussianPolicy

    torch.manual_seed(0)
    for policy, obs_dim, n_actions in ((CategoricalPolicy(), 4, 3), (GaussianPolicy(), 5, 2)):
        policy.build((obs_dim,), n_actions, value_head=True)
        obs = torch.randn(6, obs_dim)
        dist, _ = policy.distribution(obs)
        calls = []
        policy.value.register_forward_hook(lambda *_, seen=calls: seen.append(1))
        alone = policy.pi(obs)
        actions = dist.sample()
        torch.testing.assert_close(alone.log_prob(actions), dist.log_prob(actions))
        torch.testing.assert_close(alone.mode, dist.mode)
        assert calls == [], "pi(obs) runs the policy's layers alone"


# ---------------------------------------------------------------------------------------------- runs
def greedy_returns(model: PPO, episodes: int) -> list[float]:
    """Greedy returns of ``episodes`` evaluation episodes, from the evaluation env's seed (as `rlgen test`)."""
    env = model._make_eval_env()
    env.reset(seed=model.env_seed + 5_000)
    returns = [model._play_episode(env, False)[0] for _ in range(episodes)]
    env.close()
    return returns


def test_ppo_cartpole_learns_in_seconds(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = run(["fit", "-c", str(CONFIGS / "ppo" / "cartpole.yaml"), "--trainer.max_steps=400",
               "--trainer.val_check_interval=400", "--model.eval_episodes=5", "--trainer.enable_progress_bar=false"])
    # 20 rollouts of 8 x 32 steps (5,120 env steps, one more fetched ahead); a random policy lasts ~22 steps
    assert cli.trainer.global_step == 400 and 5_000 <= cli.model.rollout.env_steps <= 5_400
    assert float(cli.trainer.callback_metrics["val/episodic_return"]) > 195
    metrics = set(cli.trainer.callback_metrics)
    assert {"train/policy_loss", "train/value_loss", "train/entropy", "train/approx_kl", "train/clip_fraction",
            "rollout/env_steps"} <= metrics


def test_a2c_config_takes_one_step_per_rollout(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = run(["fit", "-c", str(CONFIGS / "a2c" / "cartpole.yaml"), "--trainer.max_steps=20",
               "--trainer.val_check_interval=20", "--model.eval_episodes=1", "--trainer.log_every_n_steps=1",
               "--trainer.enable_progress_bar=false"])
    hp = cli.model.hparams
    assert (hp.update_epochs, hp.num_minibatches, hp.clip_range, hp.normalize_advantages) == (1, 1, None, False)
    assert isinstance(cli.trainer.optimizers[0], torch.optim.RMSprop)
    per_rollout = hp.num_envs * hp.num_steps
    # one gradient step per rollout: 20 steps, 21 rollouts (one fetched ahead), less the autoreset steps
    assert 20 * per_rollout - 40 <= cli.model.rollout.env_steps <= 21 * per_rollout
    assert float(cli.trainer.callback_metrics["train/clip_fraction"]) == 0.0


def test_normalization_statistics_survive_the_checkpoint_and_stay_frozen(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = str(CONFIGS / "ppo" / "cartpole.yaml")
    args = ["--model.normalize_obs=true", "--model.normalize_reward=true", "--model.test_episodes=3",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false"]
    fit = run(["fit", "-c", cfg, "--trainer.max_steps=40", "--trainer.val_check_interval=40",
               "--model.eval_episodes=1", *args])
    def statistics(model) -> dict[str, np.ndarray]:
        both = (("obs", model.obs_rms), ("return", model.reward_scaler.return_rms))
        return {f"{name}.{s}": np.copy(getattr(rms, s)) for name, rms in both for s in ("mean", "var", "count")}

    trained = statistics(fit.model)
    assert trained["obs.count"] > 256 and trained["obs.var"].min() != 1.0 and trained["return.var"] != 1.0
    (last,) = tmp_path.rglob("last.ckpt")
    saved = torch.load(last, weights_only=True)["state_dict"]
    assert {k for k in saved if "rms" in k} == {"obs_rms._extra_state", "reward_scaler.return_rms._extra_state"}
    np.testing.assert_array_equal(saved["obs_rms._extra_state"]["var"].numpy(), trained["obs.var"])
    before = greedy_returns(fit.model, 3)

    tested = run(["test", "-c", cfg, f"--ckpt_path={last}", *args])
    after = statistics(tested.model)
    assert all(np.array_equal(after[k], trained[k]) for k in trained), "rlgen test uses the statistics, frozen"
    assert tested.model.eval_returns == before, "the reloaded agent plays the same greedy episodes"
    # and they matter: the same weights without the statistics play differently
    tested.model.obs_rms.mean = np.zeros_like(trained["obs.mean"])
    tested.model.obs_rms.var = np.ones_like(trained["obs.var"])
    assert greedy_returns(tested.model, 3) != before
