"""Observation normalization and reward scaling whose statistics are part of the agent.

Both are ``nn.Module``\\ s that keep their statistics in registered buffers, so a system that owns them
saves them in its checkpoint's ``state_dict`` and ``rlgen test --ckpt_path`` (or a video) sees the inputs
the agent was trained on. The statistics change only through ``update`` / ``scale``, which the rollout
collector calls while training; evaluation calls ``normalize`` alone, with the statistics frozen.

* :class:`RunningMeanStd`: the running mean and variance of a stream of batches (Chan et al.'s parallel
  update), and ``normalize(x) = clip((x - mean) / sqrt(var + eps), -clip, clip)``: Gymnasium's
  ``NormalizeObservation``, as CleanRL's and Stable-Baselines3's PPO use it.
* :class:`RewardScaler`: rewards divided by the running standard deviation of the discounted return
  (SB3's ``VecNormalize``, CleanRL's ``NormalizeReward``; Engstrom et al. 2020 call it reward scaling).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from rlgen.errors import check_range


class RunningMeanStd(nn.Module):
    """Running mean and variance of the rows of the batches given to ``update``, in float64 buffers.

    Args:
        shape: shape of one sample, e.g. ``(D,)`` for observations, ``()`` for returns.
        epsilon: the prior count (the initial mean 0 and variance 1 weigh this many samples), and the
            variance floor of ``normalize``.
        clip: ``normalize`` clips its output to [-clip, clip].
    """

    def __init__(self, shape: Sequence[int] = (), epsilon: float = 1e-4, clip: float = 10.0) -> None:
        super().__init__()
        check_range("> 0", "RunningMeanStd", epsilon=epsilon, clip=clip)
        self.epsilon, self.clip = epsilon, clip
        self.register_buffer("mean", torch.zeros(tuple(shape), dtype=torch.float64))
        self.register_buffer("var", torch.ones(tuple(shape), dtype=torch.float64))
        self.register_buffer("count", torch.tensor(epsilon, dtype=torch.float64))

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        """Fold the batch ``x`` ``(B, *shape)`` into the statistics."""
        x = x.to(self.mean)
        batch_mean, batch_var, n = x.mean(dim=0), x.var(dim=0, unbiased=False), x.shape[0]
        total = self.count + n
        delta = batch_mean - self.mean
        m2 = self.var * self.count + batch_var * n + delta.pow(2) * self.count * n / total
        self.mean += delta * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``clip((x - mean) / sqrt(var + epsilon))`` in ``x``'s dtype (float32 for integer input); reads the
        statistics, never changes them."""
        dtype = x.dtype if x.is_floating_point() else torch.float32
        z = (x.to(self.mean) - self.mean) / torch.sqrt(self.var + self.epsilon)
        return z.clamp(-self.clip, self.clip).to(dtype)


class RewardScaler(nn.Module):
    """Rewards divided by the running standard deviation of the discounted return of each environment.

    The return ``G <- gamma * G + r`` (restarted after each episode's end) is kept per environment and its
    running variance in ``return_rms`` (saved in the checkpoint); the scaled reward is
    ``clip(r / sqrt(var(G) + eps), -clip, clip)``. The reward's mean is not removed: that would change which
    policy is optimal (a constant shift of every reward rewards or punishes living longer).

    Args:
        gamma: the discount of the return whose spread scales the rewards (the algorithm's gamma).
        epsilon: prior count and variance floor of ``return_rms``.
        clip: the scaled rewards are clipped to [-clip, clip].
    """

    def __init__(self, gamma: float = 0.99, epsilon: float = 1e-8, clip: float = 10.0) -> None:
        super().__init__()
        check_range("in [0, 1]", "RewardScaler", gamma=gamma)
        self.gamma, self.epsilon, self.clip = gamma, epsilon, clip
        self.return_rms = RunningMeanStd((), epsilon=1e-4)
        self.register_buffer("returns", torch.zeros(0, dtype=torch.float64), persistent=False)  # (N,) running G

    @torch.no_grad()
    def scale(self, rewards: torch.Tensor, dones: torch.Tensor, valid: torch.Tensor | None = None
              ) -> torch.Tensor:
        """Update the returns and their variance with one vector step, then scale its rewards.

        Args:
            rewards: ``(N,)`` rewards of the N environments.
            dones: ``(N,)`` bool, the episode ended (terminated or truncated): the return restarts.
            valid: ``(N,)`` bool, False for the reset step of next-step autoreset (no reward; skipped).
        """
        if self.returns.shape != rewards.shape:
            self.returns = torch.zeros(rewards.shape, dtype=torch.float64, device=rewards.device)
        valid = torch.ones_like(dones) if valid is None else valid
        r = rewards.to(self.returns)
        updated = self.returns * self.gamma + r
        self.returns = torch.where(valid, updated, self.returns)  # (N,)
        if valid.any():
            self.return_rms.update(self.returns[valid])
        self.returns = torch.where(dones & valid, torch.zeros_like(self.returns), self.returns)
        std = torch.sqrt(self.return_rms.var + self.epsilon)
        return (r / std).clamp(-self.clip, self.clip).to(rewards.dtype)
