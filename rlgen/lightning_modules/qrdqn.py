"""Quantile-regression DQN (Dabney et al., 2018): DQN that learns the distribution of the return."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F

from rlgen.errors import RlgenError, check_range
from rlgen.experience.replay import ReplayBatch
from rlgen.lightning_modules.dqn import DQN
from rlgen.nets.rl import QuantileNetwork


def quantile_td_target(rewards: torch.Tensor, discounts: torch.Tensor, next_quantiles_target: torch.Tensor,
                       next_q_online: torch.Tensor | None = None) -> torch.Tensor:
    """T theta_j = r + discount * theta'_j(s', a*), one target per quantile ``(B, N)``.

    a* = argmax_a Q_target(s', a), Q the mean of the quantiles (QR-DQN), or argmax_a Q_online(s', a) (Double DQN,
    pass ``next_q_online``). ``discount = gamma^n (1 - terminated)``, as DQN's ``td_target``.

    Args:
        rewards: ``(B,)`` (n-step discounted) rewards.
        discounts: ``(B,)`` gamma^n, or 0 where the episode terminated.
        next_quantiles_target: ``(B, A, N)`` target-network quantiles of the next observation.
        next_q_online: ``(B, A)`` online-network Q-values of the next observation (Double DQN) or None.
    """
    next_q = next_quantiles_target.mean(dim=2) if next_q_online is None else next_q_online  # (B, A)
    best = next_q.argmax(dim=1)  # (B,) a*
    next_quantiles = next_quantiles_target[torch.arange(len(best), device=best.device), best]  # (B, N)
    return rewards.unsqueeze(1) + discounts.unsqueeze(1) * next_quantiles


def quantile_huber_loss(quantiles: torch.Tensor, targets: torch.Tensor, kappa: float = 1.0) -> torch.Tensor:
    """Each transition's quantile regression loss ``(B,)``: sum_i mean_j rho^kappa_{tau_i}(T theta_j - theta_i),

    with rho^kappa_tau(u) = |tau - 1{u < 0}| L_kappa(u) / kappa, L_kappa the Huber loss, and the quantile
    fractions tau_i = (2i + 1) / 2N (Dabney et al., 2018, eq. 10).

    Args:
        quantiles: ``(B, N)`` the online quantiles theta_i(s, a) of the actions taken.
        targets: ``(B, N')`` the target quantiles T theta_j, held constant.
        kappa: the Huber threshold (0 is not allowed: 1 as in the paper).
    """
    n = quantiles.shape[1]
    taus = (2 * torch.arange(n, device=quantiles.device, dtype=quantiles.dtype) + 1) / (2 * n)  # (N,)
    u = targets.unsqueeze(1) - quantiles.unsqueeze(2)  # (B, N, N'): u_ij = T theta_j - theta_i
    huber = F.huber_loss(u, torch.zeros_like(u), reduction="none", delta=kappa)  # L_kappa(u)
    weight = (taus.view(1, -1, 1) - (u.detach() < 0).to(u.dtype)).abs()  # |tau_i - 1{u_ij < 0}|
    return (weight * huber / kappa).mean(dim=2).sum(dim=1)


class QRDQN(DQN):
    r"""Quantile-regression DQN (Dabney et al., "Distributional Reinforcement Learning with Quantile
    Regression", AAAI 2018): everything of :class:`~rlgen.lightning_modules.dqn.DQN` (replay, target network,
    epsilon-greedy acting, n-step returns, Double DQN, dueling heads, prioritized replay), but the network
    returns N quantiles :math:`\theta_i(s, a)` of the return at the fractions :math:`\hat\tau_i = \frac{2i+1}{2N}`,
    and the loss regresses them on the target distribution:

    .. math::
        \mathcal T\theta_j &= r + \gamma^n (1 - \text{terminated})\, \theta_{\bar\theta, j}(s', a^*), \quad
            a^* = \arg\max_{a'} \tfrac1N \textstyle\sum_j \theta_{\bar\theta, j}(s', a') \\
        L(\theta) &= \textstyle\sum_{i=1}^N \frac1N \sum_{j=1}^N \rho^\kappa_{\hat\tau_i}\big(\mathcal T\theta_j
            - \theta_i(s, a)\big), \quad
            \rho^\kappa_\tau(u) = |\tau - \mathbb 1\{u < 0\}|\, \frac{L_\kappa(u)}{\kappa}

    with :math:`L_\kappa` the Huber loss. Q(s, a) is the mean of the quantiles: acting, evaluation and
    ``forward`` are DQN's. With prioritized replay, a transition's priority is its loss (as the |TD error|
    is DQN's). The network is a :class:`~rlgen.nets.rl.QuantileNetwork` (N there, 200 in the paper).

    Deviations from the paper: Adam with DQN's options (the paper: Adam, lr 5e-5, eps 0.01/32); the
    prioritized replay, n-step returns, Double DQN and dueling options are Rainbow's, not the paper's.
    """

    def __init__(self, env_id: str = "CartPole-v1", q_net: QuantileNetwork | None = None, kappa: float = 1.0,
                 loss: Literal["huber"] = "huber", **kwargs: Any) -> None:
        """
        Args:
            env_id: as DQN's.
            q_net: the quantile network (None: ``QuantileNetwork()``, 200 quantiles, MLP 256-256 or Nature CNN).
            kappa: the Huber threshold of the quantile loss.
            loss: always ``huber``: the quantile Huber loss replaces DQN's TD loss (the argument stays so that
                configs and checkpoints that name it load).
            **kwargs: DQN's other arguments.
        """
        check_range("> 0", kappa=kappa)
        if q_net is not None and not isinstance(q_net, QuantileNetwork):
            raise RlgenError(f"model.q_net of QRDQN must be a rlgen.nets.rl.QuantileNetwork, "
                             f"got {type(q_net).__name__}")
        if loss != "huber":
            raise RlgenError("model.loss does not apply to QRDQN (its loss is the quantile Huber loss); remove it")
        super().__init__(env_id, q_net if q_net is not None else QuantileNetwork(), loss=loss, **kwargs)

    def _transition_losses(self, batch: ReplayBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each transition's quantile loss, its new priority (the loss itself) and Q(s, a), all ``(B,)``."""
        rows = torch.arange(len(batch.actions), device=batch.actions.device)
        quantiles = self.q_net.quantiles(batch.obs)[rows, batch.actions.long()]  # (B, N) theta_i(s, a)
        with torch.no_grad():
            next_q_online = self.q_net(batch.next_obs) if self.hparams.double_dqn else None
            target = quantile_td_target(batch.rewards.float(), batch.discounts.float(),
                                        self.target_net.quantiles(batch.next_obs), next_q_online)  # (B, N)
        losses = quantile_huber_loss(quantiles, target, self.hparams.kappa)
        return losses, losses.detach(), quantiles.mean(dim=1)
