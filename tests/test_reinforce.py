"""REINFORCE: returns on a hand-computed episode, the loss, baselines and normalization, the episode
source, action maps, and the shared RL plumbing (videos refused without a renderer)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rlgen.datamodules.experience import EpisodeExperience
from rlgen.envs import make_vector_env
from rlgen.errors import RlgenError
from rlgen.lightning_modules.reinforce import Reinforce, discounted_returns, reinforce_loss
from tests.conftest import CONFIGS, run_cli


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
    loss, entropy = reinforce_loss(logits, actions, advantages, n_episodes=2, entropy_coef=0.1)
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
    assert value.policy.value_head
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
