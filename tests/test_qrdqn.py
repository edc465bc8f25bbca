"""QR-DQN: the quantile Huber loss and the quantile target against hand-computed values, the quantile
network's shapes and dueling head, prioritized replay, bad input, and a CLI run that `rlgen test` replays."""

from __future__ import annotations

import shlex

import numpy as np
import pytest
import torch

from rlgen.cli import run
from rlgen.errors import RlgenError
from rlgen.lightning_modules.qrdqn import QRDQN, quantile_huber_loss, quantile_td_target
from rlgen.nets.rl import DuelingHead, QNetwork, QuantileNetwork
from tests.conftest import CONFIGS

QR = ["--model=rlgen.lightning_modules.qrdqn.QRDQN", "--model.q_net=rlgen.nets.rl.QuantileNetwork",
      "--model.q_net.n_quantiles=5", "--model.q_net.hidden_sizes=[16]", "--model.q_net.dueling=true"]
TINY = ["--model.warm_start_steps=64", "--model.batch_size=16", "--model.train_frequency=4",
        "--model.gradient_steps=2", "--model.eval_episodes=1", "--trainer.enable_progress_bar=false"]


def test_quantile_huber_loss_matches_a_hand_computed_pair_of_quantiles():
    # theta = [0, 1] at tau = [1/4, 3/4]; targets T theta = [0.5, 3]; u_ij = T theta_j - theta_i:
    # i=0: u = [0.5, 3], Huber [0.125, 2.5], weights |1/4 - 0| = [1/4, 1/4]      -> mean_j 0.328125
    # i=1: u = [-0.5, 2], Huber [0.125, 1.5], weights [|3/4 - 1|, 3/4] = [1/4, 3/4] -> mean_j 0.578125
    loss = quantile_huber_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 3.0]]))
    assert loss.shape == (1,) and loss.item() == pytest.approx(0.328125 + 0.578125)
    # kappa = 2: both |u| < 2 but 3 (Huber 2 * (3 - 1) = 4), each divided by kappa
    loss2 = quantile_huber_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 3.0]]), kappa=2.0)
    i0 = (0.25 * 0.125 + 0.25 * 4.0) / 2 / 2
    i1 = (0.25 * 0.125 + 0.75 * 2.0) / 2 / 2
    assert loss2.item() == pytest.approx(i0 + i1)


def test_quantile_loss_is_smallest_at_the_targets_quantiles():
    """The loss's minimiser over theta is the targets' tau-quantiles: the regression QR-DQN is named after.
    The loss is a sum over i of terms in theta_i alone, so each theta_i is minimised over a grid on its own."""
    targets = torch.arange(100.0)  # a uniform sample of 0..99
    grid = torch.arange(0.0, 100.0, 0.25)  # (G,) candidate values
    n = 4  # tau = 1/8, 3/8, 5/8, 7/8
    rows = torch.zeros(n, len(grid), n)  # row (i, g): theta_i = grid[g], the other quantiles 0
    rows[torch.arange(n), :, torch.arange(n)] = grid
    losses = quantile_huber_loss(rows.view(-1, n), targets.expand(n * len(grid), -1)).view(n, len(grid))
    best = grid[losses.argmin(dim=1)]
    expected = torch.from_numpy(np.quantile(targets.numpy(), [1 / 8, 3 / 8, 5 / 8, 7 / 8])).float()
    torch.testing.assert_close(best, expected, atol=1.0, rtol=0)


def test_quantile_target_picks_by_the_mean_and_bootstraps_only_where_not_terminated():
    # two actions, two quantiles: action 0 has mean 1 (a wide [-3, 5]), action 1 mean 2 ([2, 2])
    next_quantiles = torch.tensor([[[-3.0, 5.0], [2.0, 2.0]]] * 2)  # (B=2, A=2, N=2)
    rewards, discounts = torch.tensor([1.0, 1.0]), torch.tensor([0.5, 0.0])  # the second terminated
    target = quantile_td_target(rewards, discounts, next_quantiles)
    torch.testing.assert_close(target, torch.tensor([[2.0, 2.0], [1.0, 1.0]]))
    # Double DQN: the online values pick action 0, the target network's quantiles evaluate it
    double = quantile_td_target(rewards, discounts, next_quantiles, next_q_online=torch.tensor([[9.0, 0.0]] * 2))
    torch.testing.assert_close(double, torch.tensor([[-0.5, 3.5], [1.0, 1.0]]))


@pytest.mark.parametrize("dueling", [False, True])
def test_quantile_network_returns_quantiles_and_their_mean_as_q(dueling):
    net = QuantileNetwork(n_quantiles=3, hidden_sizes=[8], dueling=dueling).build((4,), 2)
    obs = torch.randn(5, 4)
    quantiles = net.quantiles(obs)
    assert quantiles.shape == (5, 2, 3)
    torch.testing.assert_close(net(obs), quantiles.mean(dim=2))
    pixels = QuantileNetwork(n_quantiles=3).build((4, 84, 84), 6)
    assert pixels.quantiles(torch.zeros(2, 4, 84, 84, dtype=torch.uint8)).shape == (2, 6, 3)
    with pytest.raises(RlgenError, match="QuantileNetwork.n_quantiles must be >= 1"):
        QuantileNetwork(n_quantiles=0)


def test_dueling_head_combines_each_quantile_on_its_own_and_one_atom_is_the_plain_head():
    head = DuelingHead(4, n_actions=3, atoms=2)
    features = torch.randn(5, 4)
    q = head(features).view(5, 3, 2)
    value = head.value(features).unsqueeze(1)  # (5, 1, 2)
    # per quantile, the mean over actions is the value stream's
    torch.testing.assert_close(q.mean(dim=1, keepdim=True), value)
    plain = DuelingHead(4, n_actions=3)
    adv = plain.advantage(features)
    torch.testing.assert_close(plain(features), plain.value(features) + adv - adv.mean(dim=1, keepdim=True))
    assert QNetwork([8]).build((4,), 3).atoms == 1


def test_prioritized_qrdqn_weights_each_loss_and_makes_it_the_priority(monkeypatch):
    from rlgen.experience import PrioritizedReplayBuffer
    from rlgen.experience.replay import PrioritizedBatch

    model = QRDQN(q_net=QuantileNetwork(n_quantiles=2, hidden_sizes=[]), per_alpha=1.0, per_beta=0.2)
    model.q_net.build((1,), 1)
    with torch.no_grad():  # quantiles of the one action: [0, 1] whatever the observation
        model.q_net.head.weight.zero_(), model.q_net.head.bias.copy_(torch.tensor([0.0, 1.0]))
    model.target_net = QuantileNetwork(n_quantiles=2, hidden_sizes=[]).build((1,), 1)
    with torch.no_grad():  # target quantiles [1, 5]: with r = 0.5, discount 0.5 -> T theta = [1, 3]
        model.target_net.head.weight.zero_(), model.target_net.head.bias.copy_(torch.tensor([1.0, 5.0]))
    model.buffer = PrioritizedReplayBuffer(8, (1,), alpha=1.0, beta=0.2, eps=1e-6)
    for _ in range(8):  # fill it so that the sampled slots hold transitions
        model.buffer.add(np.zeros((1, 1), np.float32), np.zeros(1, np.int64), np.zeros(1), np.zeros((1, 1), np.float32),
                         np.zeros(1, bool), np.zeros(1, bool))

    class Trainer:
        max_steps, global_step = 100, 0

    monkeypatch.setattr(QRDQN, "trainer", Trainer())
    batch = PrioritizedBatch(obs=torch.zeros(2, 1), actions=torch.zeros(2, dtype=torch.long),
                             rewards=torch.tensor([0.5, 0.5]), next_obs=torch.zeros(2, 1),
                             discounts=torch.tensor([0.5, 0.0]), weights=torch.tensor([1.0, 0.5]),
                             indices=torch.tensor([2, 3]))
    loss, q = model._td_loss(batch)
    # transition 0: targets [1, 3] against [0, 1]; transition 1 (terminated): targets [0.5, 0.5]
    first = quantile_huber_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[1.0, 3.0]])).item()
    second = quantile_huber_loss(torch.tensor([[0.0, 1.0]]), torch.tensor([[0.5, 0.5]])).item()
    torch.testing.assert_close(q, torch.tensor([0.5, 0.5]))
    assert loss.item() == pytest.approx((first + 0.5 * second) / 2)
    leaves = model.buffer.tree[model.buffer.leaves + np.array([2, 3])]
    np.testing.assert_allclose(leaves, [first + 1e-6, second + 1e-6], rtol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"q_net": QNetwork()}, "must be a rlgen.nets.rl.QuantileNetwork"),
    ({"loss": "mse"}, "model.loss does not apply to QRDQN"),
    ({"kappa": 0.0}, "model.kappa must be > 0"),
])
def test_bad_qrdqn_arguments_raise_one_line_errors(kwargs, message):
    with pytest.raises(RlgenError, match=message):
        QRDQN(**kwargs)


def test_qrdqn_fits_from_the_cli_and_the_summarys_next_command_rebuilds_its_network(tmp_path, monkeypatch, capsys):
    """The DQN CartPole config with QR-DQN and a non-default quantile network, in another root folder: fit, then
    the closing summary's `rlgen test ... --ckpt_path last` (which repeats the model's class and the root folder;
    the checkpoint restores the network's arguments) rebuilds 5 quantiles and a dueling head and plays with the
    trained weights."""
    monkeypatch.chdir(tmp_path)
    config = str(CONFIGS / "dqn" / "cartpole.yaml")
    cli = run(["fit", "-c", config, *QR, *TINY, "--trainer.max_steps=12", "--model.per_alpha=0.5",
               "--model.n_step=3", "--model.double_dqn=true", "--trainer.val_check_interval=3",
               "--trainer.default_root_dir", "my runs"])
    assert isinstance(cli.model, QRDQN) and cli.trainer.global_step == 12
    tree = cli.model.buffer.tree
    assert tree[1] == pytest.approx(tree[cli.model.buffer.leaves:].sum())  # priorities were set from losses
    out = capsys.readouterr().out
    command = next(line.split("next", 1)[1].strip() for line in out.splitlines() if line.startswith("  next "))
    assert command == (f"rlgen test -c {config} --model=rlgen.lightning_modules.qrdqn.QRDQN "
                       "--trainer.default_root_dir='my runs' --ckpt_path last")
    test = run([*shlex.split(command)[1:], "--model.test_episodes=1", "--trainer.enable_progress_bar=false"])
    assert test.model.q_net.n_quantiles == 5 and isinstance(test.model.q_net.head, DuelingHead)
    for k, v in cli.model.q_net.state_dict().items():
        torch.testing.assert_close(test.model.q_net.state_dict()[k], v)
    assert len(test.model.eval_returns) == 1
