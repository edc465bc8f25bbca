"""On-policy rollouts for actor-critic methods (PPO, A2C): fixed-length rollouts of a vector env, GAE(lambda)
advantages, and the shuffled minibatches of one update.

:class:`RolloutExperience` is an IterableDataset like the other experience sources: it steps ``num_steps``
vector steps with the system's policy, computes the advantages with :func:`gae`, then yields
``update_epochs * num_minibatches`` minibatches (each epoch a fresh permutation of the rollout), so that
Lightning's ``training_step`` sees one minibatch per step, and then collects the next rollout.

Gymnasium 1.x vector envs reset a finished sub-environment on the NEXT step (``NEXT_STEP`` autoreset): the
step that ends an episode returns the real final observation, and the following step of that sub-env only
resets it (its action is ignored, reward 0). That reset step is not a transition: it is marked invalid, left out
of the minibatches and of the counters, but the value the policy computed for its observation, the real final
observation of the episode, is exactly V(s_{t+1}) that a time-limit truncation at t must bootstrap from. So
``values`` of a rollout of T steps has T + 1 rows (the last from the observation after the rollout), and
``V(s_{t+1}) = values[t + 1]`` always holds, whether or not the episode ended at t.

With ``seen_value``, the advantages and value targets are recomputed before every pass over the rollout after the
first, with the value network as it is then (Andrychowicz et al. 2021, "What Matters in On-Policy Reinforcement
Learning?", Sec. 3.5; Tianshou's ``recompute_adv``): later passes learn from better value estimates.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import IterableDataset

from rlgen.experience.sources import RolloutStats, _VectorStepper


class PolicyStep(NamedTuple):
    """What the system's policy returns for one vector step of N environments."""

    env_actions: np.ndarray  # (N,) or (N, A): what ``envs.step`` receives
    obs: torch.Tensor  # (N, *obs_shape): the observations as the policy saw them (normalized, if the system does)
    actions: torch.Tensor  # (N,) indices or (N, A) unclipped samples: what log pi(a | s) is evaluated at
    log_probs: torch.Tensor  # (N,) log pi_old(a | s)
    values: torch.Tensor  # (N,) V_old(s)


class RolloutBatch(NamedTuple):
    """A minibatch of B transitions of one rollout (every field has B rows)."""

    obs: torch.Tensor  # (B, *obs_shape)
    actions: torch.Tensor  # (B,) long or (B, A) float
    log_probs: torch.Tensor  # (B,) log pi_old(a_t | s_t), from the policy that collected the rollout
    values: torch.Tensor  # (B,) V_old(s_t)
    advantages: torch.Tensor  # (B,) GAE(lambda) advantages A_t
    returns: torch.Tensor  # (B,) A_t + V_old(s_t): the value target


def gae(rewards: torch.Tensor, values: torch.Tensor, terminated: torch.Tensor, truncated: torch.Tensor, gamma: float,
        gae_lambda: float) -> tuple[torch.Tensor, torch.Tensor]:
    """``(advantages, returns)``, both ``(T, N)``: generalized advantage estimation (Schulman et al. 2016).

    .. math::
        \\delta_t = r_t + \\gamma (1 - \\mathrm{term}_t) V(s_{t+1}) - V(s_t), \\qquad
        A_t = \\delta_t + \\gamma \\lambda (1 - \\mathrm{done}_t) A_{t+1}, \\qquad R_t = A_t + V(s_t)

    where ``done_t = terminated_t or truncated_t``: the sum never crosses an episode's end, and only a terminal
    state has no future (a truncated episode bootstraps from the value of its real final observation).

    Args:
        rewards: ``(T, N)`` r_t.
        values: ``(T + 1, N)`` V(s_t); row t + 1 is the value of the observation that step t reached (after an
            episode's end, the real final observation: the next-step autoreset step's), row T the bootstrap.
        terminated: ``(T, N)`` bool, s_{t+1} is terminal.
        truncated: ``(T, N)`` bool, the episode was cut at s_{t+1} (a time limit).
        gamma: discount factor.
        gae_lambda: lambda: 0 gives the one-step TD error, 1 the Monte Carlo return minus V(s_t).
    """
    assert values.shape[0] == rewards.shape[0] + 1, f"values needs T + 1 = {len(rewards) + 1} rows, got {len(values)}"
    not_terminal = 1.0 - terminated.to(rewards.dtype)  # (T, N)
    not_done = 1.0 - (terminated | truncated).to(rewards.dtype)
    deltas = rewards + gamma * not_terminal * values[1:] - values[:-1]  # (T, N)
    advantages = torch.zeros_like(rewards)
    running = torch.zeros_like(rewards[0])  # (N,) A_{t+1}
    for t in range(len(rewards) - 1, -1, -1):
        running = deltas[t] + gamma * gae_lambda * not_done[t] * running
        advantages[t] = running
    return advantages, advantages + values[:-1]


class RolloutExperience(IterableDataset):
    """On-policy experience: ``num_steps`` steps of every env, then the minibatches of one update.

    Each rollout yields ``update_epochs * num_minibatches`` :class:`RolloutBatch`\\ es: per epoch, one random
    permutation of the rollout's valid transitions cut into ``num_minibatches`` near-equal parts.

    Args:
        envs: a Gymnasium vector env (next-step autoreset), e.g. from ``rlgen.envs.make_vector_env``.
        act: the system's stochastic policy: observations ``(N, *obs_shape)`` -> :class:`PolicyStep`.
        value: V(s) ``(N,)`` of raw observations ``(N, *obs_shape)`` (the bootstrap after the last step).
        num_steps: vector steps per rollout (the rollout holds ``num_steps * num_envs`` steps).
        gamma: discount factor.
        gae_lambda: GAE's lambda.
        update_epochs: passes over each rollout.
        num_minibatches: minibatches per pass.
        seed: seed of the first ``reset`` (sub-env i gets seed + i) and of the shuffling.
        stats: the counters to update (the system keeps and checkpoints them).
        reward_fn: numpy rewards ``(N,)``, dones ``(N,)``, valid ``(N,)`` -> the rewards to learn from (reward scaling);
            None: the env's rewards.
        seen_value: V(s) ``(M,)`` of observations as the policy saw them (``PolicyStep.obs``, ``(M, *obs_shape)``);
            given, every pass after the first recomputes ``values``, ``advantages`` and ``returns`` with it (and
            the bootstrap with ``value``), so a pass's ``values`` are V at that pass's start.
    """

    def __init__(self, envs: Any, act: Callable[[np.ndarray], PolicyStep], value: Callable[[np.ndarray], torch.Tensor],
                 num_steps: int, gamma: float = 0.99, gae_lambda: float = 0.95, update_epochs: int = 4,
                 num_minibatches: int = 4, seed: int = 0, stats: RolloutStats | None = None,
                 reward_fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray] | None = None,
                 seen_value: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        super().__init__()
        self.act, self.value, self.reward_fn, self.seen_value = act, value, reward_fn, seen_value
        self.num_steps, self.gamma, self.gae_lambda = num_steps, gamma, gae_lambda
        self.update_epochs, self.num_minibatches = update_epochs, num_minibatches
        self.stats = stats if stats is not None else RolloutStats()
        self.stepper = _VectorStepper(envs, seed, self.stats)
        self.generator = torch.Generator().manual_seed(seed)
        self._steps: _RolloutSteps | None = None  # the latest rollout unflattened, for recomputing its advantages

    def __iter__(self) -> Iterator[RolloutBatch]:
        while True:
            rollout = self.collect()
            n = len(rollout.advantages)
            assert n >= self.num_minibatches, f"{n} valid steps cannot fill {self.num_minibatches} minibatches"
            for epoch in range(self.update_epochs):
                if epoch > 0 and self.seen_value is not None:
                    rollout = self.recompute(rollout)
                order = torch.randperm(n, generator=self.generator).to(rollout.advantages.device)
                for idx in torch.tensor_split(order, self.num_minibatches):
                    yield RolloutBatch(*(field[idx] for field in rollout))

    @torch.no_grad()
    def collect(self) -> RolloutBatch:
        """Step every env ``num_steps`` times with ``act``; the rollout's valid transitions, flattened to
        ``(num_valid, ...)``, with their GAE advantages and returns."""
        steps: list[PolicyStep] = []
        rewards, terminated, truncated, valid = [], [], [], []

        def act(obs: np.ndarray) -> np.ndarray:
            steps.append(self.act(obs))
            return steps[-1].env_actions

        for _ in range(self.num_steps):  # the env's numpy arrays, (N,) each, become tensors once, after the loop
            _, _, reward, _, term, trunc, ok = self.stepper.step(act)
            if self.reward_fn is not None:
                reward = self.reward_fn(reward, term | trunc, ok)
            rewards.append(reward)
            terminated.append(term)
            truncated.append(trunc)
            valid.append(ok)
        device = steps[-1].values.device
        rewards_t, terminated_t, truncated_t, valid_t = (torch.as_tensor(np.stack(x), device=device)  # (T, N) each
                                                         for x in (rewards, terminated, truncated, valid))
        self._steps = _RolloutSteps(torch.stack([s.obs for s in steps]), rewards_t.float(), terminated_t, truncated_t,
                                    valid_t.flatten())  # reset steps of next-step autoreset are not transitions
        values = torch.stack([s.values for s in steps] + [self._bootstrap_value(steps[-1].values)])  # (T + 1, N)
        keep = self._steps.keep
        actions, log_probs = (torch.stack([getattr(s, name) for s in steps]).flatten(0, 1)[keep]  # (num_valid, ...)
                              for name in ("actions", "log_probs"))
        return RolloutBatch(self._steps.obs.flatten(0, 1)[keep], actions, log_probs, *self._with_advantages(values))

    @torch.no_grad()
    def recompute(self, rollout: RolloutBatch) -> RolloutBatch:
        """The latest rollout with ``values``, ``advantages`` and ``returns`` from ``seen_value`` as it is now."""
        seen = self._steps.obs  # (T, N, *obs_shape)
        values = self.seen_value(seen.flatten(0, 1)).view(seen.shape[:2])  # (T, N)
        values = torch.cat([values, self._bootstrap_value(values[-1]).unsqueeze(0)])  # (T + 1, N)
        values, advantages, returns = self._with_advantages(values)
        return rollout._replace(values=values, advantages=advantages, returns=returns)

    def _bootstrap_value(self, like: torch.Tensor) -> torch.Tensor:
        """V ``(N,)`` of the observation after the rollout (the next rollout starts from it)."""
        return self.value(self.stepper.obs).to(like)

    def _with_advantages(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(values, advantages, returns)`` of the valid steps, each ``(num_valid,)``, for values ``(T + 1, N)``."""
        steps = self._steps
        advantages, returns = gae(steps.rewards, values, steps.terminated, steps.truncated, self.gamma,
                                  self.gae_lambda)  # (T, N) each
        return tuple(x.flatten()[steps.keep] for x in (values[:-1], advantages, returns))


class _RolloutSteps(NamedTuple):
    """A rollout's steps as collected, ``(T, N, ...)``, reset steps included; ``keep`` ``(T * N,)`` marks the
    transitions."""

    obs: torch.Tensor  # (T, N, *obs_shape) as the policy saw them
    rewards: torch.Tensor  # (T, N) float, what the system learns from
    terminated: torch.Tensor  # (T, N) bool
    truncated: torch.Tensor  # (T, N) bool
    keep: torch.Tensor  # (T * N,) bool
