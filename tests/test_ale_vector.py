"""ale-py's C++ vector env against the Python wrapper stack: same observations, bookkeeping and seeding."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from rlgen.envs import EnvOptions, make_env, make_eval_env, make_vector_env

pytestmark = pytest.mark.atari


def python_stack(env_id: str, num_envs: int, options: EnvOptions = EnvOptions(), *,
                 seed: int) -> gym.vector.VectorEnv:
    """The reference: a SyncVectorEnv of ``make_env`` thunks (what make_vector_env did before)."""
    return gym.vector.SyncVectorEnv([make_env(env_id, options, seed=seed, idx=i) for i in range(num_envs)])


def play(envs: gym.vector.VectorEnv, actions: np.ndarray) -> dict[str, list]:
    """Step ``envs`` with the rows of ``actions``; collect everything a learner and its logger read."""
    out: dict[str, list] = {"obs": [envs.reset()[0]], "rewards": [], "terminated": [], "truncated": [],
                            "episodes": []}
    for t, a in enumerate(actions):
        obs, rewards, terminated, truncated, info = envs.step(a)
        out["obs"].append(obs)
        out["rewards"].append(rewards)
        out["terminated"].append(terminated)
        out["truncated"].append(truncated)
        if "_episode" in info:
            for i in np.flatnonzero(info["_episode"]):
                out["episodes"].append((t, int(i), float(info["episode"]["r"][i]), int(info["episode"]["l"][i])))
    return out


def test_make_vector_env_uses_the_cpp_env_for_ale_ids_only():
    assert not isinstance(make_vector_env("ALE/Pong-v5", 2, seed=0), gym.vector.SyncVectorEnv)
    assert not isinstance(make_vector_env("ALE/Pong-v5", 2, EnvOptions(pong_from_pixels=True), seed=0),
                          gym.vector.SyncVectorEnv)
    assert not isinstance(make_vector_env("ALE/Breakout-v5", 2, EnvOptions(terminal_on_life_loss=True), seed=0),
                          gym.vector.SyncVectorEnv)
    # What the vector env cannot express keeps the Python stack.
    assert isinstance(make_vector_env("ALE/Pong-v5", 1, EnvOptions(env_kwargs={"mode": 1}), seed=0),
                      gym.vector.SyncVectorEnv)
    assert isinstance(make_vector_env("CartPole-v1", 2, seed=0), gym.vector.SyncVectorEnv)


def test_pong_from_pixels_is_identical_on_both_paths():
    """No sticky actions (NoFrameskip-v4): the same actions give the very same frame differences,
    rewards, episode ends (truncation after 150 agent steps) and episode statistics.

    One known difference: at the step that truncates an episode, the C++ env returns the previous
    frame again (its frame difference is zero). That observation is the bootstrap state of a
    time-limit end only; it is compared apart."""
    rng = np.random.default_rng(0)
    actions = rng.integers(0, 6, size=(400, 2))
    options = EnvOptions(pong_from_pixels=True, max_episode_steps=150)
    cpp = play(make_vector_env("PongNoFrameskip-v4", 2, options, seed=3), actions)
    ref = play(python_stack("PongNoFrameskip-v4", 2, options, seed=3), actions)
    assert cpp["obs"][0].shape == (2, 6400) and cpp["obs"][0].dtype == np.float32
    for key in ("rewards", "terminated", "truncated"):
        np.testing.assert_array_equal(np.stack(cpp[key]), np.stack(ref[key]), err_msg=key)
    truncated = np.concatenate([[[False, False]], np.stack(cpp["truncated"])])  # (401, 2), aligned with obs
    a, b = np.stack(cpp["obs"]), np.stack(ref["obs"])  # (401, 2, 6400)
    np.testing.assert_array_equal(a[~truncated], b[~truncated])
    assert not a[truncated].any()  # the repeated frame
    assert cpp["episodes"] == ref["episodes"]
    assert [length for *_, length in cpp["episodes"]] == [150, 150, 150, 150]  # truncated, then autoreset
    assert not cpp["obs"][151].any(), "the autoreset step starts a new difference from zeros"
    assert set(np.unique(np.stack(cpp["obs"]))) == {-1.0, 0.0, 1.0}


def test_dqn_stack_shapes_and_preprocessing_match():
    cpp_env = make_vector_env("ALE/Pong-v5", 3, seed=0)
    ref_env = python_stack("ALE/Pong-v5", 3, seed=0)
    assert cpp_env.single_observation_space == ref_env.single_observation_space  # Box(0, 255, (4, 84, 84), uint8)
    assert cpp_env.single_action_space == ref_env.single_action_space == gym.spaces.Discrete(6)
    actions = np.random.default_rng(1).integers(0, 6, size=(60, 3))
    cpp, ref = play(cpp_env, actions), play(ref_env, actions)
    for out in (cpp, ref):  # a new game's stack repeats its first frame, then fills up frame by frame
        np.testing.assert_array_equal(out["obs"][0][:, :3], np.repeat(out["obs"][0][:, 3:], 3, axis=1))
        np.testing.assert_array_equal(out["obs"][2][:, :2], np.repeat(out["obs"][0][:, 3:], 2, axis=1))
        np.testing.assert_array_equal(out["obs"][2][:, 2:], out["obs"][3][:, 1:3])
    a, b = np.stack(cpp["obs"][10:]), np.stack(ref["obs"][10:])  # (51, 3, 4, 84, 84) uint8
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    # Same crop, resize and grey levels: the frames differ only where the ball and the paddles are
    # (sticky actions and noop resets draw from different generators), not in the background.
    assert np.mean(a == b) > 0.97
    np.testing.assert_array_equal(np.unique(a[:, :, :, :10]), np.unique(b[:, :, :, :10]))  # score rows


def test_episode_scores_are_unclipped_and_rewards_clipped():
    """SpaceInvaders scores 5-30 points an alien: the learner sees rewards in [-1, 1], the episode
    statistics (``rollout/episodic_return``) the real score, on both paths."""
    actions = np.random.default_rng(2).integers(0, 6, size=(200, 2))
    options = EnvOptions(max_episode_steps=120)
    for envs in (make_vector_env("ALE/SpaceInvaders-v5", 2, options, seed=0),
                 python_stack("ALE/SpaceInvaders-v5", 2, options, seed=0)):
        out = play(envs, actions)
        rewards = np.stack(out["rewards"])
        assert rewards.max() == 1.0 and rewards.min() >= -1.0
        assert out["episodes"], "truncation after 120 agent steps ends an episode"
        t, i, score, length = out["episodes"][0]
        assert score > rewards[: t + 1, i].sum() > 0  # unclipped > clipped
        assert score % 5 == 0 and length <= 120


def test_seeded_vector_envs_repeat_and_differ():
    actions = np.random.default_rng(3).integers(0, 6, size=(100, 2))

    def frames(seed: int) -> np.ndarray:
        return np.stack(play(make_vector_env("ALE/Pong-v5", 2, seed=seed), actions)["obs"])

    first = frames(5)
    np.testing.assert_array_equal(first, frames(5))
    assert not np.array_equal(first, frames(6))


@pytest.mark.parametrize("cpp", [True, False], ids=["cpp", "python"])
def test_life_loss_ends_the_learners_episode_but_not_the_game(cpp):
    """Breakout with terminal_on_life_loss: 5 learner episodes (one per life) per game, and the
    statistics report the whole game once, on both paths."""
    make = make_vector_env if cpp else python_stack
    envs = make("ALE/Breakout-v5", 1, EnvOptions(terminal_on_life_loss=True, clip_rewards=False), seed=0)
    assert isinstance(envs, gym.vector.SyncVectorEnv) != cpp
    actions = np.random.default_rng(4).integers(0, 4, size=(3000, 1))
    out = play(envs, actions)
    (t, _, score, _), *_ = out["episodes"]
    terminated = np.stack(out["terminated"])[: t + 1, 0]
    assert terminated.sum() == 5 and terminated[t], "4 lost lives and the game over"
    assert score == np.stack(out["rewards"])[: t + 1, 0].sum()  # every point of the game, all lives


@pytest.mark.parametrize("cpp", [True, False], ids=["cpp", "python"])
def test_a_lost_life_relaunches_the_ball_with_fire(cpp):
    """Breakout waits for FIRE after every lost life. An agent that never presses it (actions NOOP, RIGHT,
    LEFT) still plays its 5 lives to the game over: the step after a lost life presses FIRE for it (the
    C++ env: the dropped autoreset step; the Python stack: EpisodicLife's reset, then FireReset)."""
    make = make_vector_env if cpp else python_stack
    envs = make("BreakoutNoFrameskip-v4", 1, EnvOptions(terminal_on_life_loss=True), seed=1)
    actions = np.random.default_rng(5).choice([0, 2, 3], size=(2000, 1))
    out = play(envs, actions)
    assert out["episodes"], "without FIRE the ball stays put after the first lost life and the game never ends"
    t = out["episodes"][0][0]
    assert np.stack(out["terminated"])[: t + 1, 0].sum() == 5


def test_without_life_loss_ends_breakout_waits_for_fire():
    """The control for the test above: with lost lives not ending the learner's episode nothing presses FIRE,
    and a game of never-FIRE actions stalls after its first life."""
    envs = make_vector_env("BreakoutNoFrameskip-v4", 1, EnvOptions(terminal_on_life_loss=False), seed=1)
    out = play(envs, np.random.default_rng(5).choice([0, 2, 3], size=(2000, 1)))
    assert not out["episodes"]


@pytest.mark.parametrize("env_id", ["BreakoutNoFrameskip-v4", "PongNoFrameskip-v4", "ALE/Boxing-v5"])
def test_evaluation_sees_the_training_frames(env_id):
    """Evaluation and training share one pipeline: the evaluation env (an Atari env on the C++ vector env,
    played as whole games) shows the frames, rewards and FIRE presses of a training env with the same seed
    and actions, through its lost lives; only the rewards are unclipped."""
    options = EnvOptions(terminal_on_life_loss=True, clip_rewards=True)
    train = make_vector_env(env_id, 1, options, seed=7)
    evaluation = make_eval_env(env_id, options, seed=7)
    n = train.single_action_space.n
    actions = np.random.default_rng(6).integers(0, n, size=600)
    obs, _ = train.reset()
    eval_obs, _ = evaluation.reset()
    np.testing.assert_array_equal(obs[0], eval_obs)
    for a in actions:
        obs, rewards, _, _, _ = train.step(np.array([a]))
        eval_obs, reward, terminated, truncated, _ = evaluation.step(a)
        np.testing.assert_array_equal(obs[0], eval_obs)
        assert np.clip(reward, -1, 1) == rewards[0]
        if terminated or truncated:
            break


@pytest.mark.parametrize("render_mode", [None, "rgb_array"], ids=["cpp", "python-videos"])
def test_evaluation_plays_whole_games_with_the_unclipped_score(render_mode):
    """SpaceInvaders (3 lives, 5-30 points an alien), trained with lost lives ending episodes and clipped
    rewards: an evaluation episode is the whole game, its rewards add up to the game's score."""
    options = EnvOptions(terminal_on_life_loss=True, clip_rewards=True)
    env = make_eval_env("ALE/SpaceInvaders-v5", options, seed=0, render_mode=render_mode)
    actions = np.random.default_rng(7).integers(0, 6, size=5000)
    env.reset()
    rewards = []
    for a in actions:
        _, reward, terminated, truncated, info = env.step(a)
        rewards.append(reward)
        if terminated or truncated:
            break
    assert terminated and np.asarray(info["lives"]).item() == 0, "the episode ends at the game over"
    score = np.asarray(info["episode"]["r"]).item()
    assert sum(rewards) == score and score > sum(r > 0 for r in rewards), "unclipped, every point of all lives"
