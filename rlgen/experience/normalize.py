"""Observation normalization and reward scaling whose statistics are part of the agent.

Both are ``nn.Module``\\ s whose statistics are part of their ``state_dict`` (as the module's extra state,
``get_extra_state``), so a system that owns them saves them in its checkpoint and ``rlgen test --ckpt_path``
(or a video) sees the inputs the agent was trained on. The statistics are float64 numpy arrays on the host:
the rollout folds in a few rows at every env step, where numpy's arithmetic costs a fraction of a dozen
tiny torch kernels (the environments' data is numpy anyway; the result goes to the policy's device). The
statistics change only through ``update`` / ``scale``, which the rollout collector calls while training, and
``merge``, which makes the statistics of DDP ranks those of all ranks' data; evaluation calls ``normalize``
alone, with the statistics frozen.

* :class:`RunningMeanStd`: the running mean and variance of a stream of batches (Chan et al.'s parallel
  update), and ``normalize(x) = clip((x - mean) / sqrt(var + eps), -clip, clip)``: Gymnasium's
  ``NormalizeObservation``, as CleanRL's and Stable-Baselines3's PPO use it.
* :class:`RewardScaler`: rewards divided by the running standard deviation of the discounted return
  (SB3's ``VecNormalize``, CleanRL's ``NormalizeReward``; Engstrom et al. 2020 call it reward scaling).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

import numpy as np
import torch
from torch import nn

from rlgen.errors import check_range


class RunningMeanStd(nn.Module):
    """Running mean and variance of the rows of the batches given to ``update``, in float64 numpy arrays.

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
        self.mean, self.var, self.count = np.zeros(tuple(shape)), np.ones(tuple(shape)), float(epsilon)
        self._merged = _moments(self.count, self.mean, self.var)  # what every process held at the last merge

    def update(self, x: torch.Tensor | np.ndarray) -> None:
        """Fold the batch ``x`` ``(B, *shape)`` into the statistics (Chan et al.'s parallel update)."""
        x = _host(x)
        n, count = x.shape[0], self.count
        total = count + n
        batch_mean = x.sum(axis=0) / n  # sums and Python-float factors: a few rows a step, numpy's overhead is all
        delta = batch_mean - self.mean
        m2 = self.var * count + np.square(x - batch_mean).sum(axis=0) + np.square(delta) * (count * n / total)
        self.var[...] = m2 / total  # in place: assigning attributes of an nn.Module costs more than this arithmetic
        self.mean += delta * (n / total)
        self.count = total

    def merge(self, total: Callable[[np.ndarray], np.ndarray]) -> None:
        """Make the statistics those of every process's data so far (DDP ranks, each stepping its own
        environments): each process adds what it saw since the last merge to what all of them held then.

        Args:
            total: sums a float64 array over the processes (an all-reduce). Every process calls ``merge`` at the
                same point of training.
        """
        seen_here = _moments(self.count, self.mean, self.var) - self._merged  # this process's data since then
        n, first, second = np.split(self._merged + total(seen_here), [1, 1 + self.mean.size])
        mean = first / n
        self.mean[...] = mean.reshape(self.mean.shape)
        self.var[...] = np.maximum(second / n - np.square(mean), 0.0).reshape(self.var.shape)
        self.count = float(n[0])
        self._merged = _moments(self.count, self.mean, self.var)

    def normalize(self, x: torch.Tensor | np.ndarray) -> torch.Tensor:
        """``clip((x - mean) / sqrt(var + epsilon))`` as a tensor on ``x``'s device, in its dtype (float32 for
        integer or numpy input); reads the statistics, never changes them."""
        if isinstance(x, torch.Tensor):
            device, dtype = x.device, x.dtype if x.is_floating_point() else torch.float32
        else:
            device, dtype = torch.device("cpu"), torch.float32
        z = _clip((_host(x) - self.mean) / np.sqrt(self.var + self.epsilon), self.clip)
        return torch.from_numpy(z).to(device=device, dtype=dtype)

    def get_extra_state(self) -> dict[str, Any]:
        """The statistics in the ``state_dict`` (key ``<name>._extra_state``), as tensors: plain checkpoint data."""
        as_tensor = partial(torch.tensor, dtype=torch.float64)  # a copy
        return {"mean": as_tensor(self.mean), "var": as_tensor(self.var), "count": self.count}

    def set_extra_state(self, state: dict[str, Any]) -> None:
        self.mean = state["mean"].cpu().numpy().astype(np.float64)
        self.var = state["var"].cpu().numpy().astype(np.float64)
        self.count = float(state["count"])
        self._merged = _moments(self.count, self.mean, self.var)  # a resumed run: every process loads the same


def _moments(count: float, mean: np.ndarray, var: np.ndarray) -> np.ndarray:
    """``[n, n * mean, n * (var + mean^2)]`` flattened: the sums of x and x^2 of n samples, which add up across
    processes (float64 keeps ``E[x^2] - mean^2`` exact enough for observations and returns)."""
    return np.concatenate([[count], count * mean.ravel(), count * (var + np.square(mean)).ravel()])


def _host(x: torch.Tensor | np.ndarray) -> np.ndarray:
    """``x`` as a float64 numpy array (no copy if it is one)."""
    return np.asarray(x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else x, dtype=np.float64)


def _clip(x: np.ndarray, bound: float) -> np.ndarray:
    """``x`` clipped to [-bound, bound] (``np.clip`` costs a few times more on small arrays)."""
    return np.minimum(np.maximum(x, -bound), bound)


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
        self.returns = np.zeros(0)  # (N,) each env's running G (not saved: a resumed run starts new episodes)

    def scale(self, rewards: np.ndarray, dones: np.ndarray, valid: np.ndarray | None = None) -> np.ndarray:
        """Update the returns and their variance with one vector step, then scale its rewards (float64).

        Args:
            rewards: ``(N,)`` rewards of the N environments (numpy, as the env returns them; a CPU tensor works too).
            dones: ``(N,)`` bool, the episode ended (terminated or truncated): the return restarts.
            valid: ``(N,)`` bool, False for the reset step of next-step autoreset (no reward; skipped).
        """
        r, done = _host(rewards), np.asarray(dones, dtype=bool)
        valid = np.ones_like(done) if valid is None else np.asarray(valid, dtype=bool)
        if self.returns.shape != r.shape:
            self.returns = np.zeros_like(r)
        np.copyto(self.returns, self.returns * self.gamma + r, where=valid)  # in place, as in RunningMeanStd.update
        if valid.any():
            self.return_rms.update(self.returns[valid])
        self.returns[done & valid] = 0.0
        return _clip(r / np.sqrt(self.return_rms.var + self.epsilon), self.clip)

    def merge(self, total: Callable[[np.ndarray], np.ndarray]) -> None:
        """The return variance of every process's data so far (see ``RunningMeanStd.merge``); each process keeps
        its own environments' running returns."""
        self.return_rms.merge(total)
