"""SAC: the soft target, the losses and the tanh log-probability by hand, squashed actions within the bounds,
the temperature's direction, the target critics' Polyak update, a checkpoint round trip through `rlgen test`,
resuming with the replay buffer, bad input, and learning a contextual bandit in seconds."""

from __future__ import annotations

import copy
import math

import gymnasium as gym
import numpy as np
import pytest
import pytorch_lightning as pl
import torch
from torch.distributions import Independent, Normal, TransformedDistribution
from torch.distributions.transforms import TanhTransform

from rlgen.cli import run
from rlgen.errors import RlgenError
from rlgen.experience import ReplayBuffer
from rlgen.lightning_modules.rl_system import _EVAL_SEED_OFFSET
from rlgen.lightning_modules.sac import (
    SAC,
    actor_loss,
    check_continuous_actions,
    critic_loss,
    soft_q_target,
    temperature_loss,
)
from rlgen.nets.rl import mlp
from rlgen.nets.sac import QCritics, SquashedGaussianActor, TanhNormal, tanh_log_det_jacobian
from tests.conftest import CONFIGS, run_cli

PENDULUM = str(CONFIGS / "sac" / "pendulum.yaml")
TINY = ["--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false", "--trainer.logger=false",
        "--model.eval_episodes=1", "--model.warm_start_steps=64", "--model.batch_size=32",
        "--model.actor.init_args.hidden_sizes=[16]", "--model.critic.init_args.hidden_sizes=[16]"]
ONE_A_PHASE = ["--model.train_frequency=1", "--model.gradient_steps=1"]  # a Lightning batch, a gradient step


# ------------------------------------------------------------------------------------- the math by hand
def test_soft_q_target_by_hand():
    rewards, discounts = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 0.9])
    next_q = torch.tensor([[3.0, 5.0], [4.0, 1.0]])  # (J=2, B=2): min over the critics = [3, 1]
    next_log_prob = torch.tensor([-1.0, 0.5])
    # soft values: [3 - 0.2 * -1, 1 - 0.2 * 0.5] = [3.2, 0.9]; y = [1 + 0 * 3.2, 2 + 0.9 * 0.9]
    torch.testing.assert_close(soft_q_target(rewards, discounts, next_q, next_log_prob, 0.2), torch.tensor([1.0, 2.81]))


def test_soft_q_target_bootstraps_through_truncation_but_not_termination():
    buffer = ReplayBuffer(16, (1,), gamma=0.9, action_shape=(1,), action_dtype=np.float32)
    buffer.add([[0.0]], [[0.5]], [1.0], [[1.0]], terminated=[True], truncated=[False])
    buffer.add([[5.0]], [[-0.5]], [2.0], [[6.0]], terminated=[False], truncated=[True])
    batch = buffer.sample(64)
    next_q = torch.full((2, 64), 4.0)
    y = soft_q_target(batch.rewards, batch.discounts, next_q, torch.full((64,), -1.0), alpha=0.5)
    terminal = batch.obs[:, 0] == 0.0
    assert terminal.any() and (~terminal).any()
    torch.testing.assert_close(y[terminal], torch.full_like(y[terminal], 1.0))  # r alone
    torch.testing.assert_close(y[~terminal], torch.full_like(y[~terminal], 2.0 + 0.9 * (4.0 + 0.5)))  # bootstraps


def test_critic_actor_and_temperature_losses_by_hand():
    q = torch.tensor([[1.0, 2.0], [3.0, 0.0]])  # (J=2, B=2)
    # critic 1 errors [0, 1], critic 2 errors [2, -1]: 1/2 (mean [0, 1] + mean [4, 1]) = 1/2 (0.5 + 2.5)
    assert critic_loss(q, torch.tensor([1.0, 1.0])).item() == pytest.approx(1.5)
    # min_j Q = [1, 0]; alpha log pi - min Q = [0.2 * 0.5 - 1, 0.2 * -1 - 0]
    assert actor_loss(q, torch.tensor([0.5, -1.0]), 0.2).item() == pytest.approx((-0.9 - 0.2) / 2)
    log_alpha = torch.tensor(math.log(0.5), requires_grad=True)
    loss = temperature_loss(log_alpha, torch.tensor([1.0, 3.0]), target_entropy=-1.0)
    assert loss.item() == pytest.approx(-(0.5 * 0.0 + 0.5 * 2.0) / 2)  # -alpha (log pi + H), averaged
    loss.backward()
    assert log_alpha.grad.item() == pytest.approx(-0.5)  # d/dlog_alpha = the loss itself


@pytest.mark.parametrize(("log_prob", "grows"), [(3.0, True), (-0.5, False)])
def test_the_temperature_grows_when_the_entropy_is_below_its_target(log_prob, grows):
    """Entropy -log pi = -3 is below the target -1: alpha grows; entropy 0.5 is above it: alpha shrinks."""
    log_alpha = torch.nn.Parameter(torch.tensor(0.0))
    opt = torch.optim.Adam([log_alpha], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        temperature_loss(log_alpha, torch.full((8,), log_prob), target_entropy=-1.0).backward()
        opt.step()
    assert (log_alpha.item() > 0.2) if grows else (log_alpha.item() < -0.2)


def test_one_step_on_the_summed_policy_losses_is_the_papers_actor_and_temperature_steps():
    """SAC steps the actor and the temperature with one Adam (a parameter group each) on J_pi + J(alpha): the
    same weights as separate Adams on each loss, because each loss holds the other's parameter constant."""
    model = SAC(env_id="Pendulum-v1", actor=SquashedGaussianActor([16]), critic=QCritics([16]), actor_lr=0.01,
                alpha_lr=0.05, init_alpha=0.5)
    model.setup("fit")
    _, policy_opt = model.configure_optimizers()
    assert [group["lr"] for group in policy_opt.param_groups] == [0.01, 0.05]
    separate = copy.deepcopy(model)
    actor_opt = torch.optim.Adam(separate.actor.parameters(), lr=0.01, fused=True)
    alpha_opt = torch.optim.Adam([separate.log_alpha], lr=0.05, fused=True)
    obs = torch.randn(32, 3)
    for step in range(3):
        torch.manual_seed(step)  # the same reparameterization noise for both
        alpha = model.log_alpha.detach().exp()
        a_new, log_prob = model.actor(obs).rsample_with_log_prob()
        summed = (actor_loss(model.critic(obs, a_new), log_prob, alpha)
                  + temperature_loss(model.log_alpha, log_prob, model.target_entropy))
        policy_opt.zero_grad()
        summed.backward()
        policy_opt.step()

        torch.manual_seed(step)
        alpha = separate.log_alpha.detach().exp()
        a_new, log_prob = separate.actor(obs).rsample_with_log_prob()
        actor_opt.zero_grad()
        actor_loss(separate.critic(obs, a_new), log_prob, alpha).backward()
        actor_opt.step()
        alpha_opt.zero_grad()
        temperature_loss(separate.log_alpha, log_prob, separate.target_entropy).backward()
        alpha_opt.step()
    for name, value in separate.named_parameters():
        if not name.startswith("critic"):
            torch.testing.assert_close(model.get_parameter(name), value, rtol=0, atol=1e-6)
    assert model.log_alpha.item() != math.log(0.5)  # it moved


def test_alpha_lr_zero_keeps_the_temperature_fixed_while_the_actor_learns():
    model = SAC(env_id="Pendulum-v1", actor=SquashedGaussianActor([16]), critic=QCritics([16]), actor_lr=0.01,
                alpha_lr=0.0, init_alpha=0.2)
    model.setup("fit")
    _, policy_opt = model.configure_optimizers()
    actor_before, log_alpha_before = copy.deepcopy(model.actor.state_dict()), model.log_alpha.item()
    obs = torch.randn(32, 3)
    for _ in range(3):
        a_new, log_prob = model.actor(obs).rsample_with_log_prob()
        loss = (actor_loss(model.critic(obs, a_new), log_prob, model.log_alpha.detach().exp())
                + temperature_loss(model.log_alpha, log_prob, model.target_entropy))
        policy_opt.zero_grad()
        loss.backward()
        assert model.log_alpha.grad.item() != 0.0  # the temperature's loss has a gradient, but a zero step
        policy_opt.step()
    assert model.log_alpha.item() == log_alpha_before == pytest.approx(math.log(0.2))
    assert any(not torch.equal(v, actor_before[k]) for k, v in model.actor.state_dict().items())


def test_tanh_log_det_jacobian_by_hand_and_where_tanh_saturates():
    u = torch.tensor([0.0, 1.0, -1.0, 20.0])
    # log(1 - tanh(u)^2) = -2 log cosh(u): 0, -2 * 0.4337808; at u = 20, log 4 - 40 (tanh(20) is 1.0 in float32)
    expected = torch.tensor([0.0, -0.8675616, -0.8675616, math.log(4.0) - 40.0])
    torch.testing.assert_close(tanh_log_det_jacobian(u), expected)
    assert torch.log(1 - torch.tanh(u[3]) ** 2).item() == -math.inf  # what the naive form gives there


def test_tanh_normal_log_prob_by_hand_and_against_torch():
    dist = TanhNormal(torch.zeros(1, 1), torch.ones(1, 1))
    a = torch.tanh(torch.tensor([[0.5]]))
    # log N(0.5; 0, 1) - log(1 - tanh(0.5)^2) = (-0.125 - 0.9189385) + 2 * 0.1201145
    assert dist.log_prob(a).item() == pytest.approx(-1.0439385 + 0.2402290, abs=1e-5)
    loc, scale = torch.randn(5, 3), torch.rand(5, 3) + 0.1
    ours = TanhNormal(loc, scale)
    theirs = TransformedDistribution(Independent(Normal(loc, scale), 1), [TanhTransform()])
    a = ours.sample()
    assert a.shape == (5, 3) and ours.log_prob(a).shape == (5,)
    torch.testing.assert_close(ours.log_prob(a.clone()), theirs.log_prob(a.clone()), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(ours.mode, torch.tanh(loc))


def test_log_prob_of_a_saturated_sample_comes_from_its_u():
    """A sample deep in tanh's saturation (u = 12: a rounds to 1.0) keeps its exact log-probability and
    gradient, where atanh(a) would have lost u."""
    loc = torch.full((1, 2), 12.0, requires_grad=True)
    dist = TanhNormal(loc, torch.full((1, 2), 1e-3))
    a, log_prob = dist.rsample_with_log_prob()
    assert (a == 1.0).all()
    u = dist._last[1]
    expected = (Normal(loc, 1e-3).log_prob(u) - 2 * (math.log(2.0) - u - torch.nn.functional.softplus(-2 * u))).sum()
    torch.testing.assert_close(log_prob, expected.reshape(1))
    log_prob.sum().backward()
    assert torch.isfinite(loc.grad).all()


def test_network_shapes_and_independent_twin_critics():
    torch.manual_seed(0)
    actor = SquashedGaussianActor([32]).build((3,), 2)
    critic = QCritics([32]).build((3,), 2)
    obs = torch.randn(7, 3, dtype=torch.float64)  # MuJoCo observations are float64
    a, log_prob = actor(obs).rsample_with_log_prob()
    assert a.shape == (7, 2) and log_prob.shape == (7,) and a.abs().max() < 1
    assert critic(obs, a).shape == (2, 7)
    first = critic.weights[0]  # (J, D + A, H): layer 0 of each critic
    assert first.shape == (2, 5, 32) and not torch.equal(first[0], first[1])  # twins start apart
    for weight, bias in zip(critic.weights, critic.biases, strict=True):  # nn.Linear's initialization
        bound = 1 / math.sqrt(weight.shape[1])
        assert weight.abs().max() <= bound and bias.abs().max() <= bound and weight.std() > bound / 3
    with pytest.raises(RlgenError, match="log_std_min"):
        SquashedGaussianActor(log_std_min=2.0, log_std_max=-2.0)
    with pytest.raises(RlgenError, match="log_std_bound must be 'clip' or 'tanh'"):
        SquashedGaussianActor(log_std_bound="softplus")


@pytest.mark.parametrize("bound", ["clip", "tanh"])
def test_actor_log_std_stays_within_its_bounds(bound):
    """clip: log sigma = clip(x, min, max), no gradient beyond a bound; tanh: min + (max - min) (tanh(x) + 1) / 2,
    the middle of the range at x = 0 and a gradient everywhere."""
    actor = SquashedGaussianActor([8], log_std_min=-5.0, log_std_max=2.0, log_std_bound=bound).build((3,), 4)
    with torch.no_grad():
        actor.log_std.weight.zero_()
        actor.log_std.bias.copy_(torch.tensor([-6.0, 0.0, 0.5, 3.0]))  # x for every state: beyond, inside, beyond
    log_std = actor(torch.randn(5, 3)).scale.log()  # (5, 4)
    if bound == "clip":
        expected = torch.tensor([-5.0, 0.0, 0.5, 2.0])
    else:
        # -5 + 7 (tanh(x) + 1) / 2 by hand: tanh(-6) = -0.9999877, tanh(0.5) = 0.4621172, tanh(3) = 0.9950548
        expected = torch.tensor([-4.9999570, -1.5, 0.1174101, 1.9826916])
    torch.testing.assert_close(log_std, expected.expand(5, 4))
    log_std.sum().backward()
    grad = actor.log_std.bias.grad  # d log sigma / dx, summed over the 5 states
    if bound == "clip":
        torch.testing.assert_close(grad, torch.tensor([0.0, 5.0, 5.0, 0.0]))
    else:
        assert (grad > 0).all()


def separate_critics(critic: QCritics) -> list[torch.nn.Sequential]:
    """The stacked critics as J separate MLPs (Linear, ReLU, ..., Linear) with the same weights."""
    nets = [mlp(critic.weights[0].shape[1], critic.hidden_sizes, 1) for _ in range(critic.num_critics)]
    with torch.no_grad():
        for j, net in enumerate(nets):
            linears = [layer for layer in net if isinstance(layer, torch.nn.Linear)]
            for linear, weight, bias in zip(linears, critic.weights, critic.biases, strict=True):
                linear.weight.copy_(weight[j].T)
                linear.bias.copy_(bias[j, 0])
    return nets


def test_stacked_critics_compute_each_mlp_and_load_checkpoints_of_separate_ones():
    torch.manual_seed(0)
    critic = QCritics([32, 16], num_critics=3).build((4,), 2)
    obs, action = torch.randn(9, 4), torch.rand(9, 2) * 2 - 1
    nets = separate_critics(critic)
    expected = torch.stack([net(torch.cat([obs, action], dim=-1)).squeeze(-1) for net in nets])  # (3, 9)
    torch.testing.assert_close(critic(obs, action), expected)
    # a checkpoint written when each critic was its own nn.Sequential (keys q.<j>.<layer>.weight) loads
    old = {f"critic.q.{j}.{name}": value for j, net in enumerate(nets) for name, value in net.state_dict().items()}
    fresh = torch.nn.ModuleDict({"critic": QCritics([32, 16], num_critics=3).build((4,), 2)})
    fresh.load_state_dict(old)
    torch.testing.assert_close(fresh["critic"](obs, action), expected)


def test_actions_stay_within_the_box_bounds_even_when_tanh_saturates():
    model = SAC(env_id="Pendulum-v1", actor=SquashedGaussianActor([16]), critic=QCritics([16]))
    model.setup("fit")
    torch.testing.assert_close(model.action_low, torch.tensor([-2.0]))  # Pendulum's torque in [-2, 2]
    obs = torch.randn(64, 3) * 10
    for bias in (0.0, 50.0, -50.0):
        with torch.no_grad():
            model.actor.mean.bias.fill_(bias)
        greedy = model(obs)  # (B, 1), env units
        assert greedy.shape == (64, 1) and (greedy >= -2.0).all() and (greedy <= 2.0).all()
        explore = model._act(obs.numpy())  # (B, 1), the policy's [-1, 1] that RescaleAction maps onto the Box
        assert explore.shape == (64, 1) and np.abs(explore).max() <= 1.0
    torch.testing.assert_close(greedy, torch.full((64, 1), -2.0))  # saturated: exactly the bound
    env = model._make_eval_env()
    env.reset(seed=0)
    env.step(model._eval_action(obs[0].numpy()))  # -1 in the policy's units is -2 for the env
    assert env.unwrapped.last_u == pytest.approx(-2.0)
    assert model.target_entropy == -1.0 and model.critic_target is not None


@pytest.mark.parametrize("bad", [{"actor_lr": 0.0}, {"batch_size": 0}, {"tau": 0.0}, {"gamma": 1.5},
                                 {"init_alpha": -1.0}, {"alpha_lr": -1e-3},
                                 {"warm_start_steps": 8, "batch_size": 32}])
def test_bad_hyperparameters_raise_one_line_errors(bad):
    with pytest.raises(RlgenError):
        SAC(**bad)


def test_unbounded_or_image_spaces_are_refused_in_one_line():
    flat = gym.spaces.Box(-1.0, 1.0, shape=(3,))
    with pytest.raises(RlgenError, match="bounded Box") as info:
        check_continuous_actions(gym.spaces.Box(-np.inf, np.inf, shape=(2,)), flat, "Custom-v0")
    assert "\n" not in str(info.value)
    with pytest.raises(RlgenError, match="bounded Box"):
        check_continuous_actions(gym.spaces.Box(-1.0, 1.0, shape=(2, 2)), flat, "Custom-v0")
    with pytest.raises(RlgenError, match="flat observations"):
        check_continuous_actions(gym.spaces.Box(-1.0, 1.0, shape=(2,)), gym.spaces.Box(0, 255, (3, 8, 8)), "Custom-v0")
    assert check_continuous_actions(gym.spaces.Box(-1.0, 1.0, shape=(2,)), flat, "Custom-v0") == 2


def test_a_discrete_env_is_refused_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        run_cli("fit", "-c", PENDULUM, "--trainer.fast_dev_run=true", "--model.env_id=CartPole-v1")
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rlgen: error: SAC needs a continuous (Box) action space"), err


# ------------------------------------------------------------------------------------ training runs
class Snapshots(pl.Callback):
    """The critics and the target critics after every training batch (one gradient step each here)."""

    def __init__(self) -> None:
        self.states: list[tuple[dict, dict]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        self.states.append((copy.deepcopy(pl_module.critic.state_dict()),
                            copy.deepcopy(pl_module.critic_target.state_dict())))


def test_target_critics_follow_the_critics_by_polyak_averaging(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cli = run(["fit", "-c", PENDULUM, "--trainer.max_steps=12", *TINY, *ONE_A_PHASE, "--model.tau=0.1",
               "--trainer.log_every_n_steps=1", "--trainer.enable_checkpointing=false", "--trainer.callbacks=[]",
               "--trainer.callbacks+=tests.test_sac.Snapshots"])
    states = next(c for c in cli.trainer.callbacks if isinstance(c, Snapshots)).states
    assert cli.trainer.global_step == 12 and len(states) == 6  # 2 optimizer steps per gradient step
    for (_, before), (critic, after) in zip(states, states[1:], strict=False):
        for name, value in after.items():  # theta' <- 0.9 theta' + 0.1 theta, with the critic just updated
            torch.testing.assert_close(value, 0.9 * before[name] + 0.1 * critic[name])
            assert not torch.equal(value, before[name])
    metrics = cli.trainer.callback_metrics
    for name in ("train/critic_loss", "train/actor_loss", "train/alpha", "train/alpha_loss", "train/entropy",
                 "rollout/env_steps"):
        assert math.isfinite(metrics[name].item()), name
    assert metrics["train/alpha"].item() != 1.0  # the temperature moved from init_alpha


class PoisonCritic(pl.Callback):
    """Sets a critic weight to NaN before the third gradient step (after 4 optimizer steps)."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == 4:
            with torch.no_grad():
                pl_module.critic.weights[0][0].fill_(float("nan"))


def test_a_nan_loss_stops_the_run_at_its_own_step_not_at_the_next_log(tmp_path, monkeypatch, capsys):
    """Manual optimization returns no loss to Lightning; SAC returns its losses' sum, so FaultGuard stops the run
    at the gradient step where they turn NaN, though nothing is logged until step 1,000."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit):
        run_cli("fit", "-c", PENDULUM, "--trainer.max_steps=30", *TINY, *ONE_A_PHASE,
                "--trainer.log_every_n_steps=1000", "--trainer.callbacks+=tests.test_sac.PoisonCritic")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("rlgen: error: loss became nan at step 6 "), line  # 2 optimizer steps a gradient step


def test_rlgen_test_of_last_ckpt_rebuilds_the_agent_and_replays_its_greedy_returns(tmp_path, monkeypatch):
    """Trained with 16-unit networks, tested with the family config (256-256): the checkpoint rebuilds the
    trained sizes, and `rlgen test` scores the very returns the trained agent gets on the evaluation episodes."""
    monkeypatch.chdir(tmp_path)
    first = run(["fit", "-c", PENDULUM, "--trainer.max_steps=30", "--trainer.val_check_interval=10", *TINY])
    (last,) = tmp_path.rglob("last.ckpt")
    saved = torch.load(last, weights_only=True)  # plain data only: RNG states, counters
    assert {"rng", "torch_rng", "rollout"} <= saved["rl_state"].keys()
    test = run(["test", "-c", PENDULUM, f"--ckpt_path={last}", "--model.test_episodes=2",
                "--trainer.enable_progress_bar=false", "--trainer.logger=false"])
    assert test.model.actor.hidden_sizes == [16]
    for key, value in first.model.state_dict().items():
        torch.testing.assert_close(test.model.state_dict()[key], value)
    env = first.model._make_eval_env()  # what `rlgen test` does: a fresh evaluation env, seeded, then 2 episodes
    env.reset(seed=first.model.env_seed + _EVAL_SEED_OFFSET)
    expected = [first.model._play_episode(env, record=False)[0] for _ in range(2)]
    assert test.model.eval_returns == pytest.approx(expected, abs=1e-6)
    assert len(set(expected)) == 2  # two different episodes


class BufferAtTrainStart(pl.Callback):
    def on_train_start(self, trainer, pl_module) -> None:
        self.state = copy.deepcopy(pl_module.buffer.state_dict())


def test_resume_starts_from_the_saved_replay_buffer_and_counters(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    common = [*TINY, "--model.save_buffer=true", "--trainer.val_check_interval=10"]
    first = run(["fit", "-c", PENDULUM, "--trainer.max_steps=20", *common])  # 10 phases
    saved = first.model.buffer.state_dict()
    assert saved["count"] == 64 + 10 and first.model.buffer.actions.dtype == np.float32
    (last,) = tmp_path.rglob("last.ckpt")
    second = run(["fit", "-c", PENDULUM, "--trainer.max_steps=24", f"--ckpt_path={last}", *common,
                  "--trainer.callbacks+=tests.test_sac.BufferAtTrainStart"])
    resumed = next(c for c in second.trainer.callbacks if isinstance(c, BufferAtTrainStart)).state
    for key, value in saved.items():
        same = torch.equal(resumed[key], value) if isinstance(value, torch.Tensor) else resumed[key] == value
        assert same, f"the resumed buffer's {key} differs from the saved one"
    assert second.model.rollout.env_steps == 74 + 2  # no warm-up again: 2 more phases of one env step


def test_a_checkpoint_of_the_three_optimizer_sac_is_refused_by_fit_in_one_line_and_still_tests(
        tmp_path, monkeypatch, capsys):
    """Before the actor and the temperature shared one Adam, SAC saved three optimizer states and max_steps counted
    three optimizer steps a gradient step: resuming one is refused before Lightning fails on the states."""
    monkeypatch.chdir(tmp_path)
    run(["fit", "-c", PENDULUM, "--trainer.max_steps=4", *TINY])
    (last,) = tmp_path.rglob("last.ckpt")
    saved = torch.load(last, weights_only=True)
    critic, policy = saved["optimizer_states"]
    saved["optimizer_states"] = [critic, policy, policy]  # the count is what tells the old format
    old = tmp_path / "old.ckpt"
    torch.save(saved, old)
    with pytest.raises(SystemExit):
        run_cli("fit", "-c", PENDULUM, "--trainer.max_steps=8", f"--ckpt_path={old}", *TINY)
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("rlgen: error: this SAC checkpoint holds 3 optimizers"), line
    test = run(["test", "-c", PENDULUM, f"--ckpt_path={old}", "--model.test_episodes=1",
                "--trainer.enable_progress_bar=false", "--trainer.logger=false"])
    assert len(test.model.eval_returns) == 1


# ------------------------------------------------------------------------------------------- learning
class TargetAction(gym.Env):
    """A contextual bandit: observe x in [-1.5, 1.5], act a in [-2, 2], reward -(a - x)^2, one step."""

    observation_space = gym.spaces.Box(-1.5, 1.5, shape=(1,), dtype=np.float32)
    action_space = gym.spaces.Box(-2.0, 2.0, shape=(1,), dtype=np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.x = self.np_random.uniform(-1.5, 1.5, size=1).astype(np.float32)
        return self.x, {}

    def step(self, action):
        return self.x, -float((action[0] - self.x[0]) ** 2), True, False, {}


gym.register("rlgen_test/TargetAction-v0", entry_point=TargetAction)


def test_sac_learns_to_hit_the_target_action_in_1000_steps():
    """The greedy policy tanh(mu(x)), rescaled onto [-2, 2], learns a = x: the critic, the actor's
    reparameterized gradient, the squashing and the rescaling all have to be right."""
    pl.seed_everything(0)
    model = SAC(env_id="rlgen_test/TargetAction-v0", actor=SquashedGaussianActor([64]), critic=QCritics([64]),
                actor_lr=3e-3, critic_lr=3e-3, alpha_lr=3e-3, batch_size=64, warm_start_steps=200, init_alpha=0.1,
                eval_episodes=50, seed=0)
    trainer = pl.Trainer(max_steps=SAC.OPTIMIZER_STEPS_PER_GRADIENT_STEP * 1000, val_check_interval=1000,
                         check_val_every_n_epoch=None, num_sanity_val_steps=0, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(model)
    assert trainer.callback_metrics["val/episodic_return"].item() > -0.01  # mean (a - x)^2 over 50 episodes
    x = torch.linspace(-1.4, 1.4, 8).unsqueeze(1)
    torch.testing.assert_close(model(x), x, atol=0.1, rtol=0)


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_pendulum_config_learns_to_swing_up_within_10k_env_steps(tmp_path, monkeypatch):
    """The config as shipped, cut to 10,000 env steps (about 2-4 minutes on 2 cores)."""
    monkeypatch.chdir(tmp_path)
    cli = run(["fit", "-c", PENDULUM, "--trainer.max_steps=18000", "--trainer.enable_progress_bar=false",
               "--trainer.logger=false"])
    assert cli.model.rollout.env_steps == 10_000
    assert cli.trainer.callback_metrics["val/episodic_return"].item() > -400  # random: about -1200
