"""DQN: TD targets (terminated vs truncated, Double DQN), target updates, epsilon schedule, dueling
head, bad input, and resuming a run from its checkpoint."""

from __future__ import annotations

import copy
import math
from pathlib import Path

import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch import nn

from rlgen.cli import run
from rlgen.errors import RlgenError
from rlgen.experience import ReplayBuffer
from rlgen.lightning_modules.dqn import DQN, linear_schedule, polyak_update, td_target
from rlgen.nets.rl import DuelingHead, NoisyLinear, QNetwork, QuantileNetwork
from tests.conftest import CONFIGS, run_cli

GAMMA = 0.9


def test_td_target_bootstraps_through_truncation_but_not_termination():
    # Two transitions from the replay buffer: the first ends by termination, the second by a time limit.
    buffer = ReplayBuffer(16, (2,), gamma=GAMMA)
    obs = np.array([[0.0, 0.0]], np.float32)
    buffer.add(obs, [1], [1.0], obs + 1, terminated=[True], truncated=[False])
    buffer.add(obs + 5, [0], [2.0], obs + 6, terminated=[False], truncated=[True])
    batch = buffer.sample(64)
    next_q = torch.tensor([[3.0, 4.0]]).expand(64, 2)  # max = 4 for every next state
    y = td_target(batch.rewards, batch.discounts, next_q)
    terminal = batch.rewards == 1.0
    assert terminal.any() and (~terminal).any()
    torch.testing.assert_close(y[terminal], torch.full_like(y[terminal], 1.0))  # 1 + 0
    torch.testing.assert_close(y[~terminal], torch.full_like(y[~terminal], 2.0 + GAMMA * 4.0))  # 2 + 0.9 * 4


def test_double_dqn_target_picks_with_online_and_evaluates_with_target():
    rewards = torch.tensor([1.0, 0.0])
    discounts = torch.tensor([0.5, 0.5])
    next_q_target = torch.tensor([[10.0, 2.0, 0.0], [1.0, 1.0, 8.0]])
    next_q_online = torch.tensor([[0.0, 5.0, 1.0], [3.0, 0.0, 0.0]])  # online argmax: action 1, action 0
    torch.testing.assert_close(td_target(rewards, discounts, next_q_target), torch.tensor([6.0, 4.0]))
    torch.testing.assert_close(td_target(rewards, discounts, next_q_target, next_q_online),
                               torch.tensor([1.0 + 0.5 * 2.0, 0.5 * 1.0]))


def test_polyak_update_moves_target_towards_online():
    online, target = nn.Linear(2, 1), nn.Linear(2, 1)
    with torch.no_grad():
        online.weight.fill_(1.0), online.bias.fill_(2.0), target.weight.fill_(0.0), target.bias.fill_(0.0)
    polyak_update(target, online, tau=0.25)
    torch.testing.assert_close(target.weight, torch.full((1, 2), 0.25))
    torch.testing.assert_close(target.bias, torch.full((1,), 0.5))
    polyak_update(target, online, tau=1.0)  # a hard copy
    torch.testing.assert_close(target.bias, online.bias)


def test_epsilon_schedule_is_linear_over_env_steps_then_constant():
    assert [linear_schedule(1.0, 0.1, 100, t) for t in (0, 50, 100, 1000)] == pytest.approx([1.0, 0.55, 0.1, 0.1])
    model = DQN(eps_start=1.0, eps_end=0.04, eps_decay_steps=8000)
    model.rollout.env_steps = 4000
    assert model.epsilon == pytest.approx(0.52)


def test_dueling_head_shape_and_mean_zero_advantage():
    head = DuelingHead(in_features=8, n_actions=5, hidden=16)
    features = torch.randn(3, 8)
    q = head(features)
    assert q.shape == (3, 5)
    # Q - V = A - mean(A): averaging Q over the actions gives back V.
    torch.testing.assert_close(q.mean(dim=1), head.value(features).squeeze(1))


def test_q_network_shapes_for_vectors_and_stacked_frames():
    assert QNetwork([32]).build((4,), 2)(torch.zeros(7, 4)).shape == (7, 2)
    pixels = QNetwork(dueling=True).build((4, 84, 84), 6)
    assert pixels(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape == (2, 6)


def test_channels_last_layout_changes_strides_not_values_and_survives_checkpoints():
    torch.manual_seed(0)
    fast = QNetwork(dueling=True).build((4, 84, 84), 6)
    plain = QNetwork(dueling=True, channels_last=False).build((4, 84, 84), 6)
    plain.load_state_dict(fast.state_dict())  # the same weights, saved from one layout, loaded into the other
    conv = fast.torso.net[0].weight
    assert conv.is_contiguous(memory_format=torch.channels_last) and not conv.is_contiguous()
    assert plain.torso.net[0].weight.is_contiguous()
    frames = torch.randint(0, 256, (3, 4, 84, 84), dtype=torch.uint8)
    torch.testing.assert_close(fast(frames), plain(frames), rtol=1e-4, atol=1e-5)
    fast.load_state_dict(plain.state_dict())  # loading keeps the module's own layout
    assert fast.torso.net[0].weight.is_contiguous(memory_format=torch.channels_last)


def test_nips_cnn_is_the_2013_torso_and_takes_frames_as_uint8_or_scaled_floats():
    net = QNetwork(cnn="nips", cnn_features=256).build((4, 84, 84), 6)
    convs = [m for m in net.torso.net if isinstance(m, torch.nn.Conv2d)]
    assert [(c.out_channels, c.kernel_size[0], c.stride[0]) for c in convs] == [(16, 8, 4), (32, 4, 2)]
    assert net.torso.net[-2].in_features == 32 * 9 * 9 and net.torso.out_features == 256
    frames = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    floats = frames.float() / 255
    before = floats.clone()
    torch.testing.assert_close(net(frames), net(floats))
    assert torch.equal(floats, before)  # a float input is used as it is, never scaled in place


def test_pixel_scale_one_feeds_the_raw_pixel_values():
    torch.manual_seed(0)
    scaled = QNetwork(dueling=True).build((4, 84, 84), 6)
    raw = QNetwork(dueling=True, pixel_scale=1.0).build((4, 84, 84), 6)
    raw.load_state_dict(scaled.state_dict())
    frames = torch.randint(0, 256, (2, 4, 84, 84), dtype=torch.uint8)
    torch.testing.assert_close(raw(frames), scaled(frames.float()))  # 0-255 floats are not scaled
    torch.testing.assert_close(scaled(frames), scaled(frames.float() / 255))
    with pytest.raises(RlgenError, match="pixel_scale"):
        QNetwork(pixel_scale=0.0).build((4, 84, 84), 6)


def test_noisy_linear_is_its_mean_in_eval_and_the_factorized_noisy_weight_in_training():
    torch.manual_seed(0)
    layer = NoisyLinear(5, 3, sigma0=0.5)
    assert torch.equal(layer.weight_sigma, torch.full((3, 5), 0.5 / math.sqrt(5)))  # sigma_0 / sqrt(p)
    assert torch.equal(layer.bias_sigma, torch.full((3,), 0.5 / math.sqrt(5)))
    assert layer.weight.abs().max() <= 1 / math.sqrt(5) and layer.bias.abs().max() <= 1 / math.sqrt(5)
    x = torch.randn(4, 5)
    layer.eval()
    torch.testing.assert_close(layer(x), x @ layer.weight.T + layer.bias)
    layer.train()
    torch.manual_seed(1)
    y = layer(x)
    torch.manual_seed(1)  # the same draws, in the layer's order: eps_in (5,), then eps_out (3,)
    eps_in, eps_out = (e.sign() * e.abs().sqrt() for e in (torch.randn(5), torch.randn(3)))  # f(e)
    weight = layer.weight + layer.weight_sigma * torch.outer(eps_out, eps_in)  # the paper's noisy weight, formed
    torch.testing.assert_close(y, x @ weight.T + layer.bias + layer.bias_sigma * eps_out)
    assert not torch.allclose(layer(x), y), "every training-mode forward draws fresh noise"
    y.sum().backward()
    assert layer.weight_sigma.grad.abs().sum() > 0 and layer.bias_sigma.grad.abs().sum() > 0  # sigma is learned


@pytest.mark.parametrize("obs_shape", [(4,), (4, 84, 84)], ids=["vector", "pixels"])
@pytest.mark.parametrize("dueling", [False, True], ids=["linear", "dueling"])
def test_noisy_q_network_makes_every_fully_connected_layer_noisy(obs_shape, dueling):
    torch.manual_seed(0)
    net = QNetwork([16, 8], dueling=dueling, cnn_features=32, noisy_std=0.1).build(obs_shape, 3)
    layers = [m for m in net.modules() if isinstance(m, (nn.Linear, NoisyLinear))]
    assert len(layers) == (3 if len(obs_shape) == 1 else 2) + dueling and all(isinstance(m, NoisyLinear)
                                                                          for m in layers)
    for m in layers:  # each with the network's sigma_0
        torch.testing.assert_close(m.weight_sigma * math.sqrt(m.weight.shape[1]), torch.full_like(m.weight, 0.1))
    obs = torch.rand(2, *obs_shape) * (255 if len(obs_shape) == 3 else 1)
    net.eval()
    assert net(obs).shape == (2, 3) and torch.equal(net(obs), net(obs))  # evaluation: the mean weights
    net.train()
    assert not torch.equal(net(obs), net(obs))  # acting and learning: noisy
    plain = QNetwork([16, 8], dueling=dueling, cnn_features=32).build(obs_shape, 3)
    assert not any(isinstance(m, NoisyLinear) for m in plain.modules())
    quantiles = QuantileNetwork(4, [16], dueling=dueling, noisy_std=0.1).build((4,), 3)
    assert any(isinstance(m, NoisyLinear) for m in quantiles.modules()) and quantiles(torch.zeros(1, 4)).shape == (1, 3)
    with pytest.raises(RlgenError, match="noisy_std"):
        QNetwork(noisy_std=-0.1)


def test_noisy_dqn_trains_without_epsilon_and_its_checkpoint_plays_with_the_mean_weights(tmp_path, monkeypatch):
    """NoisyNet-DQN from the CLI: epsilon 0 (the noise explores), its noise scales learned, and the noisy
    layers rebuilt from the checkpoint by ``rlgen test`` with the family config alone."""
    monkeypatch.chdir(tmp_path)
    noisy = ["--model.q_net.init_args.noisy_std=0.5", "--model.eps_start=0", "--model.eps_end=0"]
    fit = run(["fit", "-c", str(CONFIGS / "dqn" / "cartpole.yaml"), "--trainer.max_steps=20", *TINY, *noisy])
    assert fit.model.epsilon == 0 and fit.trainer.global_step == 20
    sigma = fit.model.q_net.head.weight_sigma  # (2, 16)
    assert not torch.equal(sigma, torch.full_like(sigma, 0.5 / math.sqrt(16))), "the noise scale is learned"
    (ckpt,) = tmp_path.rglob("last.ckpt")
    test = run(["test", "-c", str(CONFIGS / "dqn" / "cartpole.yaml"), *TINY[:3], "--model.test_episodes=2",
                "--ckpt_path", str(ckpt)])
    assert isinstance(test.model.q_net.head, NoisyLinear) and len(test.model.eval_returns) == 2
    torch.testing.assert_close(test.model.q_net.head.weight_sigma, sigma)


@pytest.mark.parametrize("bad", [{"lr": -1.0}, {"batch_size": 0}, {"eps_end": 1.5}, {"tau": 0.0},
                                 {"warm_start_steps": 8, "batch_size": 32}])
def test_bad_hyperparameters_raise_one_line_errors(bad):
    with pytest.raises(RlgenError):
        DQN(**bad)


def test_continuous_action_space_is_refused(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        run_cli("fit", "-c", str(CONFIGS / "dqn" / "cartpole.yaml"), "--trainer.fast_dev_run=true",
                "--model.env_id=Pendulum-v1")
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rlgen: error: DQN needs a discrete action space"), err


TINY = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.logger=false",
        "--trainer.val_check_interval=10", "--model.eval_episodes=1", "--model.warm_start_steps=64",
        "--model.batch_size=16", "--model.train_frequency=4", "--model.gradient_steps=2",
        "--model.eps_decay_steps=1000", "--model.q_net.init_args.hidden_sizes=[16]"]


@pytest.mark.parametrize("save_buffer", [True, False])
def test_resume_continues_env_steps_and_epsilon(tmp_path, monkeypatch, save_buffer):
    monkeypatch.chdir(tmp_path)
    cfg = str(CONFIGS / "dqn" / "cartpole.yaml")
    common = [*TINY, f"--model.save_buffer={save_buffer}"]
    first = run(["fit", "-c", cfg, "--trainer.max_steps=20", *common])
    # 64 warm-up steps, then 4 env steps per 2 gradient steps: 10 phases for 20 gradient steps (each phase
    # is collected when its training_step starts, not one phase ahead).
    assert first.model.rollout.env_steps == 64 + 10 * 4 == 104
    (last,) = tmp_path.rglob("last.ckpt")
    second = run(["fit", "-c", cfg, "--trainer.max_steps=40", f"--ckpt_path={last}", *common])
    refill = 0 if save_buffer else 64  # without the saved buffer, the warm-up refills it
    assert second.trainer.global_step == 40
    expected = 104 + refill + 10 * 4  # the counter goes on from the checkpoint's 104
    assert second.model.rollout.env_steps == expected
    assert second.model.epsilon == pytest.approx(1.0 + (0.04 - 1.0) * expected / 1000)  # eps_end 0.04 (config)
    assert math.isfinite(second.trainer.callback_metrics["val/episodic_return"].item())


class BufferAtTrainStart(pl.Callback):
    """A copy of the replay buffer's state when training starts (after a resumed run has loaded its buffer)."""

    def on_train_start(self, trainer, pl_module) -> None:
        self.state = {k: v.clone() if isinstance(v, torch.Tensor) else copy.deepcopy(v)
                      for k, v in pl_module.buffer.state_dict().items()}


@pytest.mark.parametrize("per_alpha", [0.0, 0.6], ids=["uniform", "prioritized"])
def test_resumed_run_starts_from_the_saved_replay_buffer(tmp_path, monkeypatch, per_alpha):
    """save_buffer: `--ckpt_path last` continues with the very transitions (and priorities, and sampler state)
    the interrupted run had, not a refilled buffer."""
    monkeypatch.chdir(tmp_path)
    cfg = str(CONFIGS / "dqn" / "cartpole.yaml")
    common = [*TINY, "--model.save_buffer=true", f"--model.per_alpha={per_alpha}"]
    first = run(["fit", "-c", cfg, "--trainer.max_steps=20", *common])
    saved = first.model.buffer.state_dict()
    (last,) = tmp_path.rglob("last.ckpt")
    second = run(["fit", "-c", cfg, "--trainer.max_steps=22", f"--ckpt_path={last}", *common,
                  "--trainer.callbacks+=tests.test_dqn.BufferAtTrainStart"])
    resumed = next(c for c in second.trainer.callbacks if isinstance(c, BufferAtTrainStart)).state
    assert resumed.keys() == saved.keys() and saved["count"] == 104  # 64 warm-up + 10 phases of 4 env steps
    for key, value in saved.items():
        same = torch.equal(resumed[key], value) if isinstance(value, torch.Tensor) else resumed[key] == value
        assert same, f"the resumed buffer's {key} differs from the saved one"


class PhaseRecorder(pl.Callback):
    """Gradient norms before each optimizer step; (global_step, env_steps) after each training batch."""

    def __init__(self) -> None:
        self.norms: list[float] = []
        self.phases: list[tuple[int, int]] = []

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        grads = torch.cat([p.grad.flatten() for p in pl_module.q_net.parameters()])
        self.norms.append(torch.linalg.vector_norm(grads).item())

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.phases.append((trainer.global_step, pl_module.rollout.env_steps))


def test_one_training_step_takes_all_gradient_steps_of_a_phase(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = run(["fit", "-c", str(CONFIGS / "dqn" / "cartpole.yaml"), "--trainer.max_steps=7", *TINY,
               "--model.gradient_steps=3", "--model.max_grad_norm=0.001", "--trainer.enable_checkpointing=false",
               "--trainer.callbacks=[]", "--trainer.callbacks+=tests.test_dqn.PhaseRecorder"])
    rec = next(c for c in cli.trainer.callbacks if type(c).__name__ == "PhaseRecorder")
    # 3 gradient steps per training_step, each phase's 4 env steps collected just before its steps;
    # the budget of 7 ends inside the third phase
    assert rec.phases == [(3, 64 + 4), (6, 64 + 8), (7, 64 + 12)]
    assert cli.trainer.global_step == 7 and len(rec.norms) == 7
    # on_before_optimizer_step sees the clipped gradients
    assert max(rec.norms) <= 0.001 * 1.0001, "model.max_grad_norm clips every step"


def test_vector_envs_with_every_flag_train(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = run(["fit", "-c", str(CONFIGS / "dqn" / "cartpole.yaml"), "--trainer.max_steps=30", *TINY,
               "--model.num_envs=4", "--model.n_step=3", "--model.double_dqn=true", "--model.tau=0.01",
               "--model.q_net.init_args.dueling=true", "--model.loss=mse", "--trainer.enable_checkpointing=false",
               "--trainer.callbacks=[]"])
    model = cli.model
    # Every stored transition was counted once (autoreset steps are neither stored nor counted).
    assert len(model.buffer) == model.rollout.env_steps >= 64 + 15 * 4
    assert model.rollout.episodes > 0 and model.rollout.history[-1][0] <= model.rollout.env_steps
    # Polyak averaging with tau = 0.01 keeps the target close to, but not equal to, the online net.
    online, target = model.q_net.head.value[0].weight, model.target_net.head.value[0].weight
    assert not torch.equal(online, target) and (online - target).abs().max() < 0.5


class _StubTrainer:
    max_steps, global_step = 100, 50


def test_prioritized_loss_weights_transitions_and_sets_their_priorities(monkeypatch):
    """With per_alpha > 0 the loss is mean(w_i * huber(Q_i - Y_i)) and each sampled transition's
    priority becomes |Q_i - Y_i| (+ eps); beta anneals from per_beta to 1 over max_steps."""
    from rlgen.experience import PrioritizedReplayBuffer
    from rlgen.experience.replay import PrioritizedBatch

    model = DQN(env_id="CartPole-v1", per_alpha=1.0, per_beta=0.2, gamma=0.5)
    model.q_net = QNetwork([]).build((2,), 2)
    with torch.no_grad():  # Q(s, .) = [s0, s1]: a linear head with identity weights, no bias
        model.q_net.head.weight.copy_(torch.eye(2)), model.q_net.head.bias.zero_()
    model.target_net = QNetwork([]).build((2,), 2)
    model.target_net.load_state_dict(model.q_net.state_dict())
    model.buffer = PrioritizedReplayBuffer(8, (2,), alpha=1.0, beta=0.2, eps=1e-6)
    monkeypatch.setattr(DQN, "trainer", _StubTrainer())
    monkeypatch.setattr(DQN, "global_step", property(lambda self: 50))
    obs = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
    next_obs = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    batch = PrioritizedBatch(obs=obs, actions=torch.tensor([0, 1]), rewards=torch.tensor([1.0, 0.5]),
                             next_obs=next_obs, discounts=torch.tensor([0.5, 0.5]),
                             weights=torch.tensor([1.0, 0.25]), indices=torch.tensor([3, 5]))
    loss, q = model._td_loss(batch)
    # Q = [2, 3]; Y = [1 + 0.5 * max(1, 0), 0.5 + 0.5 * 0] = [1.5, 0.5]; errors [0.5, 2.5]
    # huber: [0.5 * 0.5^2, 2.5 - 0.5] = [0.125, 2.0]; weighted mean (1 * 0.125 + 0.25 * 2.0) / 2
    torch.testing.assert_close(q, torch.tensor([2.0, 3.0]))
    assert loss.item() == pytest.approx((0.125 + 0.5) / 2)
    leaves = model.buffer.tree[model.buffer.leaves + np.array([3, 5])]
    # transitions 3 and 5 were never stored: update_priorities leaves retired slots at 0
    assert leaves.tolist() == [0.0, 0.0]
    assert model.buffer.max_priority == pytest.approx(2.5 + 1e-6)
    assert model.buffer.beta == pytest.approx(0.2 + (1.0 - 0.2) * 50 / 100)


@pytest.mark.atari
def test_pong_config_trains_with_prioritized_replay_on_the_vector_env(tmp_path, monkeypatch):
    """configs/dqn/pong.yaml end to end with a tiny budget: 10 C++ envs, n-step and prioritized replay (the
    config's own); the exported weights-only agent (online net alone) plays with `rlgen test`."""
    from bench._runs import export_weights

    monkeypatch.chdir(tmp_path)
    cli = run(["fit", "-c", str(CONFIGS / "dqn" / "pong.yaml"), "--trainer.max_steps=16",
               "--model.warm_start_steps=300", "--model.buffer_size=1000",
               "--trainer.val_check_interval=2", "--model.eval_episodes=1",
               "--model.env_options.max_episode_steps=40", "--trainer.enable_progress_bar=false"])
    from rlgen.experience import PrioritizedReplayBuffer

    assert isinstance(cli.model.buffer, PrioritizedReplayBuffer) and cli.trainer.global_step == 16
    # the warm-up ends on a whole vector step of 10 envs, then 4 phases of 40 env steps (4 gradient steps each)
    assert 300 <= cli.model.rollout.env_steps - 4 * 40 < 300 + 10
    tree = cli.model.buffer.tree
    assert tree[1] == pytest.approx(tree[cli.model.buffer.leaves:].sum())  # the sum tree stays consistent
    last = next((tmp_path / "runs").rglob("last.ckpt"))
    small = tmp_path / "agent.ckpt"
    # the online network alone: 3.3M float32 parameters with the NoisyNet noise scales, about 13 MB (with the
    # target network it would be twice that, with the replay buffer far more)
    assert export_weights(str(last), small, drop=("target_net.",)) < 15_000_000
    state = torch.load(small, weights_only=False)["state_dict"]
    assert not any(k.startswith("target_net.") for k in state)
    test = run(["test", "-c", str(CONFIGS / "dqn" / "pong.yaml"), f"--ckpt_path={small}", "--model.test_episodes=1",
                "--model.env_options.max_episode_steps=20", "--trainer.enable_progress_bar=false",
                "--model.video_dir=videos"])
    # the video is named by the agent's training step, so testing another checkpoint never overwrites it
    assert [p.name for p in Path("videos").iterdir()] == ["test_step00000016.mp4"]
    for k, v in test.model.q_net.state_dict().items():
        torch.testing.assert_close(v, state[f"q_net.{k}"])
        torch.testing.assert_close(test.model.target_net.state_dict()[k], v)  # rebuilt from the online net
    assert len(test.model.eval_returns) == 1
