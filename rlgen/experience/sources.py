"""Experience sources for the RL systems: IterableDatasets that step Gymnasium environments in the
main process and yield training batches.

* ``ReplayExperience`` (off-policy, DQN): ``train_frequency`` environment steps with the system's
  acting function, stored in a replay buffer, then ``gradient_steps`` sampled batches.
* ``EpisodeExperience`` (on-policy, REINFORCE): plays whole episodes and yields them as one batch.

Both share ``RolloutStats`` (environment steps, episodes, returns, steps per second), which the
system logs as ``rollout/*`` and saves in its checkpoints. The system owns the source: it builds it
in ``on_fit_start`` and returns it from ``train_dataloader`` with ``num_workers=0`` (the buffer must
be filled by the process that trains). Under DDP every rank has its own environments (seeds offset
by the rank) and its own buffer; the stream is infinite, so every rank runs ``max_steps`` batches.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import numpy as np
import torch
from torch.utils.data import IterableDataset

ActFn = Callable[[np.ndarray], np.ndarray]  # observations (N, *obs_shape) -> actions (N,) or (N, A) continuous


@dataclass
class RolloutStats:
    """Counters of the data collection: saved in checkpoints so that a resumed run continues them."""

    env_steps: int = 0
    episodes: int = 0
    returns: list[float] = field(default_factory=list)  # episodes finished since the last ``pop``
    lengths: list[int] = field(default_factory=list)
    history: list[tuple[int, float]] = field(default_factory=list)  # (env_steps, return) of every episode
    recent: deque = field(default_factory=lambda: deque(maxlen=100))  # the last 100 returns (checkpointed)
    _clock: tuple[float, int] | None = None  # (time, env_steps) of the first ``pop`` of this process

    def add_episode(self, episodic_return: float, length: int) -> None:
        self.episodes += 1
        self.returns.append(float(episodic_return))
        self.lengths.append(int(length))
        self.history.append((self.env_steps, float(episodic_return)))
        self.recent.append(float(episodic_return))

    def start_clock(self) -> None:
        """Start measuring ``rollout/sps`` (call when training starts, after any warm-up)."""
        self._clock = (time.perf_counter(), self.env_steps)

    def pop(self) -> dict[str, float]:
        """Mean return/length of the episodes finished since the last call (if any), the running mean
        return of the last 100 episodes, the counters, and ``rollout/sps``: env steps per second since
        ``start_clock``, gradient steps included."""
        out = {"rollout/env_steps": float(self.env_steps), "rollout/episodes": float(self.episodes)}
        if self.returns:
            out["rollout/episodic_return"] = float(np.mean(self.returns))
            out["rollout/episode_length"] = float(np.mean(self.lengths))
            out["rollout/return_last100"] = float(np.mean(self.recent))
        if self._clock is not None and time.perf_counter() > self._clock[0]:
            out["rollout/sps"] = (self.env_steps - self._clock[1]) / (time.perf_counter() - self._clock[0])
        self.returns, self.lengths = [], []
        return out

    def state_dict(self) -> dict[str, Any]:
        return {"env_steps": self.env_steps, "episodes": self.episodes, "recent": list(self.recent)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.env_steps, self.episodes = int(state["env_steps"]), int(state["episodes"])
        self.recent = deque(state.get("recent", []), maxlen=100)


class _VectorStepper:
    """Steps a Gymnasium vector env (next-step autoreset) and records finished episodes in ``stats``.

    The step after an episode's end only resets that sub-environment; its transition is marked
    invalid (``valid`` is False) and is neither counted nor stored.
    """

    def __init__(self, envs: Any, seed: int, stats: RolloutStats) -> None:
        self.envs, self.seed, self.stats = envs, seed, stats
        self.obs: np.ndarray | None = None
        self.num_envs = envs.num_envs
        self._done = np.zeros(self.num_envs, dtype=bool)  # sub-envs that autoreset on the next step

    def step(self, act: ActFn) -> tuple[np.ndarray, ...]:
        """One vector step: ``(obs, actions, rewards, next_obs, terminated, truncated, valid)``."""
        if self.obs is None:
            self.obs, _ = self.envs.reset(seed=self.seed)
        obs, valid = self.obs, ~self._done
        actions = act(obs)
        next_obs, rewards, terminated, truncated, infos = self.envs.step(actions)
        self._track(terminated, truncated, infos, valid)
        self.obs, self._done = next_obs, terminated | truncated
        return obs, actions, rewards, next_obs, terminated, truncated, valid

    def _track(self, terminated: np.ndarray, truncated: np.ndarray, infos: dict, valid: np.ndarray) -> None:
        self.stats.env_steps += int(valid.sum())
        done = (terminated | truncated) & valid
        if not done.any():
            return
        # RecordEpisodeStatistics (added by make_env) reports the real score: unclipped, whole Atari
        # games. A lost life that ends the learner's episode (terminal_on_life_loss) reports nothing.
        if "_episode" not in infos:
            return
        for i in np.flatnonzero(done & infos["_episode"]):
            self.stats.add_episode(infos["episode"]["r"][i], infos["episode"]["l"][i])


class ReplayExperience(IterableDataset):
    """Off-policy experience: collect ``train_frequency`` env steps, then yield ``gradient_steps`` batches
    (or, with ``per_phase``, all of them as one batch with a leading ``gradient_steps`` axis).

    Args:
        envs: a Gymnasium vector env (next-step autoreset), e.g. from ``rlgen.envs.make_vector_env``.
        buffer: a ``rlgen.experience.ReplayBuffer`` with ``num_envs`` matching ``envs``.
        act: the system's behaviour policy, observations ``(N, *obs_shape)`` -> actions ``(N,)``.
        batch_size: transitions per sampled batch.
        train_frequency: environment steps (summed over the vector env) per collection phase.
        gradient_steps: batches yielded after each collection phase.
        seed: seed of the first ``reset`` (sub-env i gets seed + i).
        stats: the counters to update (the system keeps and checkpoints them).
        per_phase: yield one batch per phase, every field shaped ``(gradient_steps, batch_size, ...)``,
            for systems that take all of a phase's gradient steps in one ``training_step`` (DQN).
    """

    def __init__(self, envs: Any, buffer: Any, act: ActFn, batch_size: int, train_frequency: int = 1,
                 gradient_steps: int = 1, seed: int = 0, stats: RolloutStats | None = None,
                 per_phase: bool = False) -> None:
        super().__init__()
        self.buffer, self.act, self.batch_size = buffer, act, batch_size
        self.train_frequency, self.gradient_steps, self.per_phase = train_frequency, gradient_steps, per_phase
        self.stats = stats if stats is not None else RolloutStats()
        self.stepper = _VectorStepper(envs, seed, self.stats)

    def collect(self, act: ActFn, env_steps: int) -> None:
        """Step the envs with ``act`` until ``env_steps`` more transitions are stored (autoreset steps
        store nothing and do not count; with several envs the last vector step may overshoot)."""
        target = self.stats.env_steps + env_steps
        while self.stats.env_steps < target:
            obs, actions, rewards, next_obs, terminated, truncated, valid = self.stepper.step(act)
            self.buffer.add(obs, actions, rewards, next_obs, terminated, truncated, valid=valid)

    def __iter__(self) -> Iterator[Any]:
        while True:
            self.collect(self.act, self.train_frequency)
            # The buffer does not change during a training phase: draw all of its batches at once.
            batches = self.buffer.sample(self.batch_size * self.gradient_steps)
            if self.per_phase:
                yield type(batches)(*(f.view(self.gradient_steps, self.batch_size, *f.shape[1:]) for f in batches))
                continue
            for i in range(self.gradient_steps):
                part = slice(i * self.batch_size, (i + 1) * self.batch_size)
                yield type(batches)(*(field[part] for field in batches))


class EpisodeBatch(NamedTuple):
    """Whole episodes laid end to end: ``obs (T, *obs_shape)``, ``actions`` (discrete: ``(T,)`` long;
    continuous: ``(T, A)`` float32), ``rewards (T,)``, ``lengths (E,)`` with ``lengths.sum() == T``."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    lengths: torch.Tensor


class EpisodeExperience(IterableDataset):
    """On-policy experience: play ``episodes_per_batch`` whole episodes with ``act``, yield them as one batch.

    With several envs, the episodes still running when a batch is full continue into the next batch
    (their first steps came from the previous policy; with one env every episode is on-policy).

    Args:
        envs: a Gymnasium vector env (next-step autoreset).
        act: the system's stochastic policy, observations ``(N, *obs_shape)`` -> actions ``(N,)`` (integers) or
            ``(N, A)`` (continuous, kept as float32 in the batch).
        episodes_per_batch: finished episodes per yielded batch.
        seed: seed of the first ``reset``.
        stats: the counters to update (the system keeps and checkpoints them).
        obs_dtype: dtype in which observations are kept until the batch is built (e.g. int8 for Pong
            frame differences in {-1, 0, 1}, 4x smaller than float32).
    """

    def __init__(self, envs: Any, act: ActFn, episodes_per_batch: int = 1, seed: int = 0,
                 stats: RolloutStats | None = None, obs_dtype: np.dtype | type | None = None) -> None:
        super().__init__()
        self.act, self.episodes_per_batch, self.obs_dtype = act, episodes_per_batch, obs_dtype
        self.stats = stats if stats is not None else RolloutStats()
        self.stepper = _VectorStepper(envs, seed, self.stats)
        self._running: list[list[tuple]] = [[] for _ in range(envs.num_envs)]

    def __iter__(self) -> Iterator[EpisodeBatch]:
        while True:
            finished: list[list[tuple]] = []
            while len(finished) < self.episodes_per_batch:
                obs, actions, rewards, _, terminated, truncated, valid = self.stepper.step(self.act)
                for i in np.flatnonzero(valid):
                    o = obs[i] if self.obs_dtype is None else obs[i].astype(self.obs_dtype)
                    self._running[i].append((o, actions[i], rewards[i]))
                    if terminated[i] or truncated[i]:
                        finished.append(self._running[i])
                        self._running[i] = []
            yield self._batch(finished)

    @staticmethod
    def _batch(episodes: list[list[tuple]]) -> EpisodeBatch:
        steps = [step for episode in episodes for step in episode]
        obs, actions, rewards = zip(*steps, strict=True)
        actions = np.array(actions)  # (T,) indices or (T, A) continuous actions
        continuous = np.issubdtype(actions.dtype, np.floating)
        return EpisodeBatch(
            obs=torch.from_numpy(np.stack(obs)),  # (T, *obs_shape)
            actions=torch.as_tensor(actions, dtype=torch.float32 if continuous else torch.long),
            rewards=torch.as_tensor(np.array(rewards), dtype=torch.float32),  # (T,)
            lengths=torch.tensor([len(e) for e in episodes]),  # (E,)
        )
