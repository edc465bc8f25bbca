"""ReplayBuffer: stacks rebuilt from single frames, n-step sums, discounts, memory, checkpoints."""

from __future__ import annotations

import io

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.wrappers import FrameStackObservation

from rlgen.errors import RlgenError
from rlgen.experience import ReplayBuffer
from rlgen.experience.replay import PrioritizedReplayBuffer

EPISODE_LENGTHS = (3, 1, 5, 2, 7, 4)  # cycled; odd-numbered episodes end by truncation


class CounterEnv(gym.Env):
    """Frames are 2-byte ids (unique per env), so a rebuilt stack tells exactly which frames it holds."""

    def __init__(self, base: int):
        self.observation_space = gym.spaces.Box(0, 255, shape=(2,), dtype=np.uint8)
        self.action_space = gym.spaces.Discrete(3)
        self.base, self.frame_id, self.episode, self.t = base, base, -1, 0

    def _obs(self):
        self.frame_id += 1
        return np.array([self.frame_id // 256, self.frame_id % 256], np.uint8)

    def reset(self, *, seed=None, options=None):
        self.episode, self.t = self.episode + 1, 0
        self.frame_id += 100  # ids jump between episodes, so a stack mixing two episodes shows a gap
        return self._obs(), {}

    def step(self, action):
        self.t += 1
        done = self.t >= EPISODE_LENGTHS[self.episode % len(EPISODE_LENGTHS)]
        terminated, truncated = done and self.episode % 2 == 0, done and self.episode % 2 == 1
        return self._obs(), float(self.t + 10 * int(action)), terminated, truncated, {}


def collect(buffer: ReplayBuffer, steps: int, frame_stack: int, seed: int = 0, on_step=None):
    """Step a NEXT_STEP vector env, feed every step to the buffer (then call ``on_step()``); return the
    valid transitions per env."""
    num_envs = buffer.num_envs

    def thunk(i):
        def make():
            env = CounterEnv(base=30000 * i)
            return FrameStackObservation(env, frame_stack) if frame_stack > 1 else env

        return make

    envs = gym.vector.SyncVectorEnv([thunk(i) for i in range(num_envs)])
    rng = np.random.default_rng(seed)
    obs, _ = envs.reset()
    valid = np.ones(num_envs, bool)
    streams = [[] for _ in range(num_envs)]
    for _ in range(steps):
        actions = rng.integers(3, size=num_envs)
        next_obs, rewards, term, trunc, _ = envs.step(actions)
        buffer.add(obs, actions, rewards, next_obs, term, trunc, valid=valid)
        for e in range(num_envs):
            if valid[e]:
                streams[e].append((obs[e].copy(), actions[e], rewards[e], next_obs[e].copy(), term[e], trunc[e]))
        valid = ~(term | trunc)
        obs = next_obs
        if on_step is not None:
            on_step()
    return streams


def expected_by_obs(streams, n_step: int, gamma: float):
    """Brute-force targets keyed by the obs bytes: n-step reward, discount and next_obs of each transition."""
    table = {}
    for stream in streams:
        for i, (obs, action, *_) in enumerate(stream):
            reward, k, terminal, next_obs = 0.0, 0, False, None
            for j in range(n_step):
                if i + j >= len(stream):
                    break
                _, _, r, nxt, te, tr = stream[i + j]
                reward, k, next_obs = reward + gamma**j * r, k + 1, nxt
                if te or tr:
                    terminal = bool(te)
                    break
            table[obs.tobytes()] = (action, reward, gamma**k * (not terminal), next_obs)
    return table


@pytest.mark.parametrize("frame_stack", [1, 4])
def test_sampled_transitions_match_the_env_exactly(frame_stack):
    # Small rings force wrap-around, so retired slots and the oldest stacks get exercised too.
    shape = (frame_stack, 2) if frame_stack > 1 else (2,)
    buffer = ReplayBuffer(2 * 40, shape, np.uint8, num_envs=2, frame_stack=frame_stack, gamma=0.9)
    streams = collect(buffer, steps=200, frame_stack=frame_stack)
    truth = expected_by_obs(streams, n_step=1, gamma=0.9)
    batch = buffer.sample(500)
    assert batch.obs.dtype == torch.uint8 and batch.obs.shape == (500, *shape)
    assert batch.actions.dtype == torch.long and batch.rewards.dtype == batch.discounts.dtype == torch.float32
    for i in range(500):
        action, reward, discount, next_obs = truth[batch.obs[i].numpy().tobytes()]  # KeyError: a stack no env saw
        assert batch.actions[i] == action
        assert batch.rewards[i] == pytest.approx(reward)
        assert batch.discounts[i] == pytest.approx(discount)
        np.testing.assert_array_equal(batch.next_obs[i].numpy(), next_obs)
    assert len(buffer) <= 80


def test_stacks_never_hold_frames_of_the_previous_episode():
    buffer = ReplayBuffer(400, (4, 2), np.uint8, num_envs=1, frame_stack=4)
    collect(buffer, steps=60, frame_stack=4)
    batch = buffer.sample(300)
    for stack in (batch.obs, batch.next_obs):
        ids = stack[..., 0].long() * 256 + stack[..., 1].long()  # (B, 4) frame ids, oldest first
        steps = ids.diff(dim=1)
        # Inside a stack ids grow by exactly 1, or repeat the episode's first frame (reset padding) at the front.
        assert ((steps == 1) | (steps == 0)).all()
        padded = steps == 0
        assert (padded.cummin(dim=1).values == padded).all(), "padding must come before the episode's frames"


def test_n_step_sums_stop_at_episode_ends():
    buffer = ReplayBuffer(500, (2,), np.uint8, num_envs=2, n_step=3, gamma=0.5)
    streams = collect(buffer, steps=120, frame_stack=1)
    truth = expected_by_obs(streams, n_step=3, gamma=0.5)
    batch = buffer.sample(400)
    for i in range(400):
        _, reward, discount, next_obs = truth[batch.obs[i].numpy().tobytes()]
        assert batch.rewards[i] == pytest.approx(reward)
        assert batch.discounts[i] == pytest.approx(discount)
        np.testing.assert_array_equal(batch.next_obs[i].numpy(), next_obs)
    assert set(np.round(batch.discounts.numpy(), 6)) >= {0.0, 0.125}  # terminal and full 3-step samples occur


def test_truncation_bootstraps_and_termination_does_not():
    buffer = ReplayBuffer(10, (1,), num_envs=2, gamma=0.9)
    buffer.add([[0.0], [5.0]], [0, 1], [1.0, 2.0], [[1.0], [6.0]], [True, False], [False, True])
    batch = buffer.sample(64)
    rows = zip(batch.obs, batch.rewards, batch.discounts, batch.next_obs, strict=True)
    by_obs = {float(o): (float(r), float(d), float(n)) for o, r, d, n in rows}
    assert by_obs == {0.0: (1.0, 0.0, 1.0), 5.0: (2.0, pytest.approx(0.9), 6.0)}


def test_an_obs_that_does_not_continue_starts_a_new_episode():
    # After resuming, envs are reset: the cut episode must keep its own last frame as next_obs.
    buffer = ReplayBuffer(20, (2, 1), np.uint8, frame_stack=2)
    buffer.add([[[1], [1]]], [0], [0.0], [[[1], [2]]], [False], [False])
    buffer.add([[[7], [7]]], [1], [1.0], [[[7], [8]]], [False], [False])  # a fresh episode, no done before it
    batch = buffer.sample(64)
    pairs = {
        (tuple(o.flatten().tolist()), tuple(n.flatten().tolist()))
        for o, n in zip(batch.obs, batch.next_obs, strict=True)
    }
    assert pairs == {((1, 1), (1, 2)), ((7, 7), (7, 8))}
    assert len(buffer) == 2


def test_atari_transition_costs_one_frame():
    capacity = 10_000
    buffer = ReplayBuffer(capacity, (4, 84, 84), np.uint8, frame_stack=4)
    per_transition = buffer.nbytes / capacity
    assert 84 * 84 <= per_transition <= 1.05 * 84 * 84, f"{per_transition:.0f} bytes per transition"
    assert per_transition * 1_000_000 <= 7.5e9


def test_state_dict_round_trip_through_torch_save():
    buffer = ReplayBuffer(60, (4, 2), np.uint8, num_envs=2, frame_stack=4, n_step=2, seed=3)
    collect(buffer, steps=50, frame_stack=4)
    blob = io.BytesIO()
    torch.save(buffer.state_dict(), blob)
    blob.seek(0)
    restored = ReplayBuffer(60, (4, 2), np.uint8, num_envs=2, frame_stack=4, n_step=2, seed=99)
    restored.load_state_dict(torch.load(blob, weights_only=True))
    assert len(restored) == len(buffer)
    for a, b in zip(buffer.sample(32), restored.sample(32), strict=True):  # same sampler state -> the same batch
        torch.testing.assert_close(a, b)
    other = ReplayBuffer(80, (4, 2), np.uint8, num_envs=2, frame_stack=4)
    with pytest.raises(RlgenError, match="does not match"):
        other.load_state_dict(buffer.state_dict())


def test_bad_arguments_and_empty_buffer_are_one_line_errors():
    with pytest.raises(RlgenError, match="too small"):
        ReplayBuffer(4, (2,), num_envs=2)
    with pytest.raises(RlgenError, match="frame_stack"):
        ReplayBuffer(100, (3, 84, 84), np.uint8, frame_stack=4)
    with pytest.raises(RlgenError, match="gamma"):
        ReplayBuffer(100, (2,), gamma=1.5)
    with pytest.raises(RlgenError, match="empty"):
        ReplayBuffer(100, (2,)).sample(8)


def test_prioritized_sampling_follows_the_priorities_and_weights_correct_for_it():
    buffer = PrioritizedReplayBuffer(10, (1,), alpha=1.0, beta=1.0, eps=1e-9, seed=0)
    for t in range(4):
        buffer.add([[float(t)]], [0], [0.0], [[float(t + 1)]], [False], [False])
    buffer.update_priorities(torch.tensor([0, 1, 2, 3]), torch.tensor([1.0, -1.0, 1.0, 5.0]))  # |delta|
    batch = buffer.sample(8000)
    share = (batch.obs[:, 0] == 3.0).float().mean().item()
    assert share == pytest.approx(5 / 8, abs=0.02)
    # w_i = (N P_i)^-beta / max_j w_j: P = 1/8 -> w = 2 (the max), P = 5/8 -> w = 0.4 / 2
    torch.testing.assert_close(batch.weights[batch.obs[:, 0] == 3.0], torch.full((int(share * 8000),), 0.2))
    assert (batch.weights[batch.obs[:, 0] != 3.0] == 1.0).all()
    assert set(batch.indices.tolist()) == {0, 1, 2, 3}
    buffer.add([[4.0]], [0], [0.0], [[5.0]], [False], [False])  # a new transition gets the max priority, 5
    assert buffer.tree[buffer.leaves + 4] == pytest.approx(5.0)


def test_every_slice_of_a_prioritized_draw_spreads_over_all_envs():
    """A phase draws its gradient steps' batches at once and slices them: each slice, not only their union, must
    come from the whole buffer (the tree lays the envs end to end, so draws in segment order would give the first
    step only the first env's transitions)."""
    buffer = PrioritizedReplayBuffer(4 * 50, (1,), num_envs=4, seed=0)
    for t in range(50):
        buffer.add([[float(t)]] * 4, [0] * 4, [0.0] * 4, [[t + 1.0]] * 4, [False] * 4, [False] * 4)
    envs = (buffer.sample(128).indices // buffer.slots).view(4, 32)  # 4 gradient steps of 32
    for step in envs:
        assert set(step.tolist()) == {0, 1, 2, 3}
    assert (envs.flatten().bincount() == 32).all(), "still stratified: equal priorities, 32 draws an env"


def test_prioritized_tree_holds_exactly_the_valid_transitions_after_wrapping():
    buffer = PrioritizedReplayBuffer(2 * 30, (4, 2), obs_dtype=np.uint8, num_envs=2, frame_stack=4, seed=1)
    rng = np.random.default_rng(0)

    def learn():  # priority updates interleaved with the experience, while the rings wrap
        batch = buffer.sample(16)
        buffer.update_priorities(batch.indices, torch.from_numpy(rng.normal(size=16)))

    streams = collect(buffer, steps=120, frame_stack=4, on_step=learn)
    leaves = buffer.tree[buffer.leaves : buffer.leaves + buffer.num_envs * buffer.slots]
    np.testing.assert_array_equal(leaves > 0, buffer.valid.reshape(-1))
    assert buffer.tree[1] == pytest.approx(leaves.sum())
    truth = expected_by_obs(streams, n_step=1, gamma=buffer.gamma)
    batch = buffer.sample(256)
    for o, n in zip(batch.obs, batch.next_obs, strict=True):
        np.testing.assert_array_equal(truth[o.numpy().tobytes()][3], n.numpy())
    restored = PrioritizedReplayBuffer(2 * 30, (4, 2), obs_dtype=np.uint8, num_envs=2, frame_stack=4)
    restored.load_state_dict(buffer.state_dict())
    np.testing.assert_array_equal(restored.tree, buffer.tree)


def test_continuous_actions_are_stored_as_vectors_and_survive_a_checkpoint():
    """SAC's buffer: float32 action vectors (A,), sampled with their own transition, and a torch.save round trip
    (weights_only) that keeps them; a buffer of another action shape or dtype refuses the saved state."""
    buffer = ReplayBuffer(40, (1,), num_envs=2, gamma=0.9, seed=1, action_shape=(3,), action_dtype=np.float32)
    rng = np.random.default_rng(0)
    truth = {}
    for t in range(30):  # rings of 20 slots wrap: retired slots must not come back
        obs = np.array([[float(t)], [100.0 + t]], np.float32)
        actions = rng.uniform(-1, 1, size=(2, 3)).astype(np.float32)
        buffer.add(obs, actions, [t, -t], obs + 0.5, [False, False], [t % 7 == 6, False])
        truth[float(t)], truth[100.0 + t] = actions[0], actions[1]
    batch = buffer.sample(64)
    assert batch.actions.shape == (64, 3) and batch.actions.dtype == torch.float32
    for obs, action in zip(batch.obs[:, 0].tolist(), batch.actions.numpy(), strict=True):
        np.testing.assert_array_equal(action, truth[obs])  # exact: float32 in, float32 out
    assert buffer.nbytes < 40 * (4 + 12 + 8) + 100  # an obs float, three action floats, reward and flags
    blob = io.BytesIO()
    torch.save(buffer.state_dict(), blob)
    blob.seek(0)
    restored = ReplayBuffer(40, (1,), num_envs=2, gamma=0.9, seed=7, action_shape=(3,), action_dtype=np.float32)
    restored.load_state_dict(torch.load(blob, weights_only=True))
    for a, b in zip(buffer.sample(32), restored.sample(32), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    for other in (ReplayBuffer(40, (1,), num_envs=2, action_shape=(2,), action_dtype=np.float32),
                  ReplayBuffer(40, (1,), num_envs=2)):  # DQN's int64 indices
        with pytest.raises(RlgenError, match="does not match"):
            other.load_state_dict(buffer.state_dict())


def test_a_buffer_saved_before_actions_had_a_shape_loads_as_integer_indices():
    buffer = ReplayBuffer(20, (2,), seed=3)
    buffer.add([[0.0, 1.0]], [2], [1.0], [[1.0, 2.0]], [False], [False])
    state = buffer.state_dict()
    for key in ("action_shape", "action_dtype"):
        del state["config"][key]  # what an older checkpoint holds
    restored = ReplayBuffer(20, (2,))
    restored.load_state_dict(state)
    assert restored.sample(4).actions.tolist() == [2, 2, 2, 2]


def test_a_collection_phase_stores_at_most_one_vector_step_more_than_asked():
    """A phase goes on until ``train_frequency`` transitions are stored; an autoreset step stores nothing,
    so a phase takes an extra vector step then, but stores at most ``num_envs - 1`` more than asked: the
    bound the Atari recipe's agent-step budget (configs/dqn/atari.yaml) relies on."""
    from rlgen.envs.make_env import make_vector_env
    from rlgen.experience.sources import ReplayExperience

    num_envs, frequency = 4, 6
    envs = make_vector_env("CartPole-v1", num_envs, seed=0)
    rng = np.random.default_rng(0)
    source = ReplayExperience(envs, ReplayBuffer(5_000, (4,), obs_dtype=np.float32, num_envs=num_envs),
                              lambda obs: rng.integers(0, 2, size=len(obs)), batch_size=8,
                              train_frequency=frequency)
    stored = []
    for _ in range(300):  # random CartPole episodes last ~20 steps: many phases hold an autoreset step
        before = source.stats.env_steps
        source.collect(source.act, frequency)
        stored.append(source.stats.env_steps - before)
    assert source.stats.episodes > 50
    assert min(stored) >= frequency and max(stored) <= frequency + num_envs - 1
    assert len(set(stored)) > 1  # the extra vector step happened: the bound was exercised
