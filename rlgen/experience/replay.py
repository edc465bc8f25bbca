"""A preallocated experience-replay buffer that stores each frame once (DQN, Mnih et al. 2015), for
discrete action indices (DQN) or continuous action vectors (SAC: ``action_shape=(A,)``, ``np.float32``).

Layout: one ring of ``capacity // num_envs`` *slots* per environment. A slot holds the newest frame
of an observation (the whole observation when ``frame_stack == 1``) and, once the next step is
known, the transition that starts there: action, reward, ``terminated`` and ``truncated``::

    slot:     s         s+1        s+2  ...
    frame:    o_t[-1]   o_t+1[-1]  o_t+2[-1]
    data:     a_t r_t   a_t+1 ...

So ``next_obs`` of slot ``s`` is the stack that ends at slot ``s + 1``, and an Atari transition costs
one 84x84 frame (7,056 bytes) plus 14 bytes of data. An episode end costs one extra slot (the
final frame, needed to bootstrap from a truncated episode); that slot starts no transition.
Stacks are rebuilt at sampling time from the slot's ``history`` (how many earlier frames of the
same episode exist, at most ``frame_stack - 1``); the oldest frame repeats before it, exactly as
``FrameStackObservation`` pads after a reset, so no stack mixes two episodes.

``add`` takes a vector-env step as it comes. Each environment's steps must arrive in order; a
step whose ``obs`` does not continue the previous ``next_obs`` (a skipped autoreset step, envs
reset after resuming from a checkpoint) starts a new episode and leaves the cut one bootstrapping
from its last frame.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch

from rlgen.errors import RlgenError, check_range, gib, physical_memory


class ReplayBatch(NamedTuple):
    """A sampled batch; ``discounts = gamma**k * (1 - terminated)`` after the ``k`` rewards summed."""

    obs: torch.Tensor  # (B, *obs_shape), stored dtype (uint8 for pixels)
    actions: torch.Tensor  # (B, *action_shape), stored dtype: (B,) long for DQN, (B, A) float32 for SAC
    rewards: torch.Tensor  # (B,) float32, n-step discounted sum
    next_obs: torch.Tensor  # (B, *obs_shape)
    discounts: torch.Tensor  # (B,) float32, 0 after a terminal step; truncation still bootstraps


class ReplayBuffer:
    """Uniform experience replay with n-step returns and frame stacks rebuilt from single frames.

    Args:
        capacity: number of slots in all (split evenly over ``num_envs`` rings); each slot holds one
            transition, an episode end uses one extra slot.
        obs_shape: shape of one observation, e.g. ``(4,)`` for CartPole or ``(4, 84, 84)`` for Atari.
        obs_dtype: storage dtype; ``np.uint8`` for pixels.
        num_envs: number of environments whose steps ``add`` receives together.
        frame_stack: ``obs_shape[0]`` when observations are stacks of frames (store each frame once);
            1 stores whole observations.
        n_step: rewards summed per sample (stopping at episode ends).
        gamma: discount of the n-step sum and of ``discounts``.
        seed: seed of the sampling generator.
        action_shape: shape of one action: ``()`` for a discrete action index (DQN), ``(A,)`` for a
            continuous action vector (SAC).
        action_dtype: storage dtype of the actions: ``np.int64`` indices, ``np.float32`` continuous actions.
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        obs_dtype=np.float32,
        num_envs: int = 1,
        frame_stack: int = 1,
        n_step: int = 1,
        gamma: float = 0.99,
        seed: int = 0,
        action_shape: tuple[int, ...] = (),
        action_dtype=np.int64,
    ):
        obs_shape = tuple(int(d) for d in obs_shape)
        action_shape = tuple(int(d) for d in action_shape)
        check_range(">= 1", "ReplayBuffer", num_envs=num_envs, frame_stack=frame_stack, n_step=n_step)
        check_range("in [0, 1]", "ReplayBuffer", gamma=gamma)
        if frame_stack > 1 and (not obs_shape or obs_shape[0] != frame_stack):
            raise RlgenError(f"obs_shape {obs_shape} must start with frame_stack={frame_stack}")
        slots = capacity // num_envs
        if slots < n_step + frame_stack + 2:
            raise RlgenError(
                f"replay capacity {capacity} is too small for {num_envs} envs: give at least "
                f"{(n_step + frame_stack + 2) * num_envs}"
            )
        self.capacity, self.num_envs, self.slots = capacity, num_envs, slots
        self.obs_shape, self.obs_dtype = obs_shape, np.dtype(obs_dtype)
        self.action_shape, self.action_dtype = action_shape, np.dtype(action_dtype)
        self.frame_stack, self.n_step, self.gamma = frame_stack, n_step, gamma
        frame_shape = obs_shape[1:] if frame_stack > 1 else obs_shape
        # a size no machine holds fails here, in one line, not in np.zeros (or, with lazy pages, hours later)
        action_bytes = int(np.prod(action_shape)) * self.action_dtype.itemsize
        per_transition = int(np.prod(frame_shape)) * self.obs_dtype.itemsize + action_bytes + 8  # + reward, flags
        memory = physical_memory()
        if memory and capacity * per_transition > memory:
            raise RlgenError(f"a replay buffer of {capacity:,} transitions needs {gib(capacity * per_transition)} of "
                             f"memory, more than this machine's {gib(memory)}: choose a buffer_size of at most "
                             f"{memory // 2 // per_transition:,} (half of the memory)")
        E, N = num_envs, slots
        # np.zeros reserves the memory; pages are touched as the rings fill.
        self.frames = np.zeros((E, N, *frame_shape), self.obs_dtype)  # (E, N, 84, 84) for Atari
        self.actions = np.zeros((E, N, *action_shape), self.action_dtype)  # (E, N) indices or (E, N, A)
        self.rewards = np.zeros((E, N), np.float32)
        self.terminated = np.zeros((E, N), bool)
        self.truncated = np.zeros((E, N), bool)
        self.valid = np.zeros((E, N), bool)  # a sampleable transition starts in this slot
        self.history = np.zeros((E, N), np.uint8)  # earlier frames of the same episode, <= frame_stack - 1
        self.head = np.zeros(E, np.int64)  # slot of the newest frame (the next transition's obs)
        self.filled = np.zeros(E, np.int64)  # slots written so far
        self.started = np.zeros(E, bool)
        self.episode_over = np.zeros(E, bool)
        self.count = 0
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        """Number of transitions that ``sample`` can return."""
        return self.count

    @property
    def nbytes(self) -> int:
        """Bytes of the preallocated storage."""
        arrays = (self.frames, self.actions, self.rewards, self.terminated, self.truncated, self.valid, self.history)
        return sum(a.nbytes for a in arrays)

    def add(self, obs, actions, rewards, next_obs, terminated, truncated, valid=None) -> None:
        """Store one vector-env step; every argument has a leading dimension ``num_envs``.

        Args:
            obs: observations before the step, ``(num_envs, *obs_shape)``.
            actions: actions taken, ``(num_envs, *action_shape)``.
            rewards: rewards received, ``(num_envs,)``.
            next_obs: observations after the step.
            terminated: the episode ended in a terminal state (no bootstrapping).
            truncated: the episode was cut by a time limit (bootstrapping goes on).
            valid: ``False`` marks the autoreset step of NEXT_STEP vector envs (``obs`` is the last
                observation of an episode, ``next_obs`` the first of the next); default all ``True``.
        """
        E = self.num_envs
        obs, next_obs = np.asarray(obs), np.asarray(next_obs)
        assert obs.shape == next_obs.shape == (E, *self.obs_shape), (
            f"ReplayBuffer.add expects obs of shape {(E, *self.obs_shape)}, got {obs.shape} and {next_obs.shape}"
        )
        actions, rewards = np.asarray(actions).reshape(E, *self.action_shape), np.asarray(rewards).reshape(E)
        terminated, truncated = np.asarray(terminated).reshape(E), np.asarray(truncated).reshape(E)
        valid = np.ones(E, bool) if valid is None else np.asarray(valid, bool).reshape(E)
        for e in range(E):
            if not valid[e]:  # autoreset step: next_obs is the first observation of a new episode
                self._start_episode(e, next_obs[e])
                continue
            continues = (
                self.started[e]
                and not self.episode_over[e]
                and np.array_equal(self._newest(obs[e]), self.frames[e, self.head[e]])
            )
            if not continues:
                self._start_episode(e, obs[e])
            h = self.head[e]
            self.actions[e, h], self.rewards[e, h] = actions[e], rewards[e]
            self.terminated[e, h], self.truncated[e, h] = terminated[e], truncated[e]
            self._admit(e, h)
            history = min(int(self.history[e, h]) + 1, self.frame_stack - 1)
            self._advance(e)
            self._write_frame(e, next_obs[e], history)
            self.episode_over[e] = bool(terminated[e] or truncated[e])

    def sample(self, batch_size: int) -> ReplayBatch:
        """``batch_size`` transitions drawn uniformly (with replacement) from the stored ones."""
        self._check_sample(batch_size)
        return self._batch(*self._draw(batch_size))

    def _batch(self, env_idx: np.ndarray, slot_idx: np.ndarray) -> ReplayBatch:
        """The transitions starting at ``(env_idx, slot_idx)`` (B,), with n-step rewards and discounts."""
        batch_size = len(env_idx)
        rewards = np.zeros(batch_size, np.float64)
        steps = np.zeros(batch_size, np.int64)
        stopped = np.zeros(batch_size, bool)
        terminal = np.zeros(batch_size, bool)
        for j in range(self.n_step):  # sum rewards until n steps, an episode end or the newest slot
            t = (slot_idx + j) % self.slots
            take = ~stopped & self.valid[env_idx, t]
            rewards += np.where(take, self.gamma**j * self.rewards[env_idx, t], 0.0)
            steps += take
            ended = self.terminated[env_idx, t] | self.truncated[env_idx, t]
            terminal |= take & self.terminated[env_idx, t]
            stopped |= ~take | ended
        discounts = self.gamma**steps * (~terminal)
        next_slot = (slot_idx + steps) % self.slots
        return ReplayBatch(
            obs=torch.from_numpy(self._stack(env_idx, slot_idx)),
            actions=torch.from_numpy(self.actions[env_idx, slot_idx]),
            rewards=torch.from_numpy(rewards.astype(np.float32)),
            next_obs=torch.from_numpy(self._stack(env_idx, next_slot)),
            discounts=torch.from_numpy(discounts.astype(np.float32)),
        )

    def state_dict(self) -> dict:
        """Storage, positions and sampler state as tensors and plain values (``torch.save``-able)."""
        state = {name: torch.from_numpy(getattr(self, name)) for name in self._ARRAYS}
        state.update(count=self.count, rng=self.rng.bit_generator.state, config=self._config())
        return state

    def load_state_dict(self, state: dict) -> None:
        """Restore a buffer saved by :meth:`state_dict` into this (identically configured) buffer."""
        # buffers saved before actions had a shape and dtype held DQN's: int64 indices
        saved = {"action_shape": [], "action_dtype": "int64", **state["config"]}
        if saved != self._config():
            raise RlgenError(
                f"the checkpoint's replay buffer {saved} does not match this run's {self._config()}; "
                "use the same buffer settings or do not load the buffer"
            )
        for name in self._ARRAYS:
            np.copyto(getattr(self, name), state[name].numpy())
        self.count = int(state["count"])
        self.rng.bit_generator.state = state["rng"]

    _ARRAYS = (
        "frames", "actions", "rewards", "terminated", "truncated", "valid", "history",
        "head", "filled", "started", "episode_over",
    )  # fmt: skip

    def _config(self) -> dict:
        return {
            "capacity": self.capacity, "obs_shape": list(self.obs_shape), "obs_dtype": str(self.obs_dtype),
            "num_envs": self.num_envs, "frame_stack": self.frame_stack,
            "action_shape": list(self.action_shape), "action_dtype": str(self.action_dtype),
        }  # fmt: skip

    def _newest(self, obs: np.ndarray) -> np.ndarray:
        newest = obs[-1] if self.frame_stack > 1 else obs
        return newest.astype(self.obs_dtype, copy=False)

    def _start_episode(self, e: int, obs: np.ndarray) -> None:
        """Put the first frame of an episode in a fresh slot; the previous head keeps the last frame."""
        if self.started[e]:
            self._advance(e)
        self._write_frame(e, obs, history=0)
        self.started[e], self.episode_over[e] = True, False

    def _advance(self, e: int) -> None:
        """Move env ``e``'s head one slot on, retiring the oldest transitions that it overwrites."""
        h = (self.head[e] + 1) % self.slots
        self.head[e] = h
        self._retire(e, h)
        for j in range(1, self.frame_stack):  # stacks whose earlier frames lived in slot h
            u = (h + j) % self.slots
            if self.history[e, u] >= j:
                self._retire(e, u)

    def _check_sample(self, batch_size: int) -> None:
        check_range(">= 1", "ReplayBuffer", batch_size=batch_size)
        if self.count == 0:
            raise RlgenError("sample() from an empty ReplayBuffer: add transitions first (raise learning_starts)")

    def _admit(self, e: int, slot: int) -> None:
        self.valid[e, slot] = True
        self.count += 1

    def _retire(self, e: int, slot: int) -> None:
        if self.valid[e, slot]:
            self.valid[e, slot] = False
            self.count -= 1

    def _write_frame(self, e: int, obs: np.ndarray, history: int) -> None:
        h = self.head[e]
        self.frames[e, h] = self._newest(obs)
        self.history[e, h] = history
        self._retire(e, h)
        self.filled[e] = max(self.filled[e], h + 1)

    def _draw(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """Uniform (env, slot) pairs among valid slots, by rejection (most written slots are valid)."""
        envs, slots = [], []
        need = batch_size
        while need > 0:
            e = self.rng.integers(self.num_envs, size=2 * need + 8)
            s = (self.rng.random(e.shape) * self.filled[e]).astype(np.int64)
            ok = self.valid[e, s]
            envs.append(e[ok][:need])
            slots.append(s[ok][:need])
            need -= len(envs[-1])
        return np.concatenate(envs), np.concatenate(slots)

    def _stack(self, env_idx: np.ndarray, slot_idx: np.ndarray) -> np.ndarray:
        """Observations ending at the given slots: (B, *obs_shape); earlier frames stop at episode starts."""
        if self.frame_stack == 1:
            return self.frames[env_idx, slot_idx]
        back = np.arange(self.frame_stack - 1, -1, -1)  # (k,): k-1 frames back ... 0
        back = np.minimum(back[None, :], self.history[env_idx, slot_idx][:, None])  # (B, k)
        idx = (slot_idx[:, None] - back) % self.slots
        return self.frames[env_idx[:, None], idx]  # (B, k, 84, 84)


class PrioritizedBatch(NamedTuple):
    """A :class:`ReplayBatch` plus importance weights and the indices for ``update_priorities``."""

    obs: torch.Tensor
    actions: torch.Tensor
    rewards: torch.Tensor
    next_obs: torch.Tensor
    discounts: torch.Tensor
    weights: torch.Tensor  # (B,) float32, (N P(i))^-beta / max over the batch
    indices: torch.Tensor  # (B,) long, pass back to update_priorities with the new TD errors


class PrioritizedReplayBuffer(ReplayBuffer):
    """Proportional prioritized replay (Schaul et al., "Prioritized Experience Replay", 2016).

    Transition ``i`` is drawn with probability ``P(i) = p_i^alpha / sum_k p_k^alpha``; new transitions
    get the largest priority seen so far, ``update_priorities`` sets ``p_i = |delta_i| + eps``.
    Sampling is stratified over a sum tree (one segment of the total per batch element), the draws returned
    in random order so that any slice of a batch is itself spread over the buffer. Importance
    weights ``(N P(i))^-beta`` are normalized by the batch maximum (as Dopamine does; the paper uses
    the maximum over the whole buffer). Anneal ``beta`` to 1 by setting the attribute.
    The tree costs 16 bytes per slot (7,088 bytes per Atari transition in all).

    Args:
        capacity: as :class:`ReplayBuffer`.
        obs_shape: as :class:`ReplayBuffer`.
        alpha: how much prioritization is used (0 = uniform).
        beta: importance-sampling exponent (1 = full correction).
        eps: added to ``|delta|`` so that no transition gets priority 0.
        **buffer_kwargs: the other :class:`ReplayBuffer` arguments (``obs_dtype``, ``num_envs``,
            ``frame_stack``, ``n_step``, ``gamma``, ``seed``, ``action_shape``, ``action_dtype``).
    """

    def __init__(
        self,
        capacity: int,
        obs_shape: tuple[int, ...],
        *,
        alpha: float = 0.6,
        beta: float = 0.4,
        eps: float = 1e-6,
        **buffer_kwargs,
    ):
        super().__init__(capacity, obs_shape, **buffer_kwargs)
        check_range(">= 0", "PrioritizedReplayBuffer", alpha=alpha, beta=beta)
        check_range("> 0", "PrioritizedReplayBuffer", eps=eps)
        self.alpha, self.beta, self.eps = alpha, beta, eps
        self.leaves = 1 << int(np.ceil(np.log2(self.num_envs * self.slots)))
        self.tree = np.zeros(2 * self.leaves, np.float64)  # tree[1] = total; leaf of (e, s) = leaves + e * N + s
        self.max_priority = 1.0

    @property
    def nbytes(self) -> int:
        return super().nbytes + self.tree.nbytes

    def sample(self, batch_size: int) -> PrioritizedBatch:
        """``batch_size`` transitions drawn in proportion to ``priority**alpha``, with importance weights.

        One draw from each of ``batch_size`` equal segments of the total priority (stratified, as in the PER
        paper), returned in random order: the tree lays the envs end to end, so in segment order a phase's
        first gradient step would see only the first envs' transitions; shuffled, any slice is spread over all.
        """
        self._check_sample(batch_size)
        total = self.tree[1]
        u = self.rng.permutation((np.arange(batch_size) + self.rng.random(batch_size)) * (total / batch_size))
        node = np.ones(batch_size, np.int64)
        while node[0] < self.leaves:  # descend: go right when u exceeds the left subtree's sum
            left = self.tree[2 * node]
            right = u >= left
            u = np.where(right, u - left, u)
            node = 2 * node + right
        flat = node - self.leaves
        env_idx, slot_idx = flat // self.slots, flat % self.slots
        bad = ~self.valid[np.minimum(env_idx, self.num_envs - 1), slot_idx] | (env_idx >= self.num_envs)
        if bad.any():  # float round-off at a segment edge: redraw those uniformly
            env_idx[bad], slot_idx[bad] = self._draw(int(bad.sum()))
            flat = env_idx * self.slots + slot_idx
        probs = self.tree[self.leaves + flat] / total
        weights = (self.count * probs) ** -self.beta
        batch = self._batch(env_idx, slot_idx)
        return PrioritizedBatch(
            *batch,
            weights=torch.from_numpy((weights / weights.max()).astype(np.float32)),
            indices=torch.from_numpy(flat),
        )

    def update_priorities(self, indices, td_errors) -> None:
        """Set the priorities of sampled transitions from their new TD errors (any shape ``(B,)``)."""
        indices = np.asarray(indices.cpu() if torch.is_tensor(indices) else indices, np.int64)
        errors = np.abs(np.asarray(td_errors.detach().cpu() if torch.is_tensor(td_errors) else td_errors, np.float64))
        priorities = errors + self.eps
        self.max_priority = max(self.max_priority, float(priorities.max(initial=0.0)))
        alive = self.valid.reshape(-1)[indices]  # a transition retired since it was sampled stays at 0
        self._set(indices[alive], priorities[alive] ** self.alpha)

    def state_dict(self) -> dict:
        state = super().state_dict()
        state.update(tree=torch.from_numpy(self.tree), max_priority=self.max_priority)
        return state

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        np.copyto(self.tree, state["tree"].numpy())
        self.max_priority = float(state["max_priority"])

    def _admit(self, e: int, slot: int) -> None:
        super()._admit(e, slot)
        self._set(np.array([e * self.slots + slot]), np.array([self.max_priority**self.alpha]))

    def _retire(self, e: int, slot: int) -> None:
        if self.valid[e, slot]:
            self._set(np.array([e * self.slots + slot]), np.zeros(1))
        super()._retire(e, slot)

    def _set(self, flat: np.ndarray, values: np.ndarray) -> None:
        """Set leaves and recompute their ancestors' sums."""
        if len(flat) == 0:
            return
        if len(flat) == 1:  # the add path: plain scalar loop, no array overhead
            node = int(flat[0]) + self.leaves
            self.tree[node] = values[0]
            tree = self.tree
            node //= 2
            while node >= 1:
                tree[node] = tree[2 * node] + tree[2 * node + 1]
                node //= 2
            return
        node = flat + self.leaves
        self.tree[node] = values
        node = np.unique(node // 2)
        while node[0] >= 1:
            self.tree[node] = self.tree[2 * node] + self.tree[2 * node + 1]
            if node[0] == 1:
                break
            node = np.unique(node // 2)
