"""Environments: JumpChain dynamics, seeding, the Atari and Pong stacks, one-line errors."""

from __future__ import annotations

import sys

import gymnasium as gym
import numpy as np
import pytest

from rlgen.envs import JUMP_CHAIN_ID, EnvOptions, as_env_options, check_discrete_actions, make_env, make_vector_env
from rlgen.envs.jump_chain import JumpChain
from rlgen.envs.pong import preprocess_pong_frame
from rlgen.errors import RlgenError

R, JR = 0, 1
# (cell, action) -> (next cell, reward, terminated), written out by hand from the lecture's picture.
JUMP_CHAIN = {
    (0, R): (1, 0, False), (0, JR): (2, 0, False),
    (1, R): (2, 0, False), (1, JR): (3, -10, True),
    (2, R): (3, -10, True), (2, JR): (4, 0, False),
    (4, R): (5, 0, False), (4, JR): (6, -10, True),
    (5, R): (6, -10, True), (5, JR): (7, 0, False),
    (7, R): (8, 0, False), (7, JR): (9, 10, True),
    (8, R): (9, 10, True), (8, JR): (8, -10, True),
}  # fmt: skip


def test_jump_chain_every_transition():
    env = gym.make(JUMP_CHAIN_ID)
    assert env.observation_space == gym.spaces.Discrete(10) and env.action_space == gym.spaces.Discrete(2)
    assert env.reset(seed=0)[0] == 0
    for (cell, action), (next_cell, reward, terminated) in JUMP_CHAIN.items():
        env.unwrapped.cell = cell
        obs, r, term, trunc, _ = env.step(action)
        assert (obs, r, term, trunc) == (next_cell, reward, terminated, False), (cell, action)


def test_jump_chain_step_reward_is_configurable():
    env = gym.make(JUMP_CHAIN_ID, step_reward=-1.0)
    env.reset(seed=0)
    assert [env.step(a)[1:3] for a in (R, R, R)] == [(-1.0, False), (-1.0, False), (-10.0, True)]
    thunk_env = make_env(JUMP_CHAIN_ID, EnvOptions(env_kwargs={"step_reward": -1.0}), seed=0)()
    thunk_env.reset()
    assert thunk_env.step(R)[1] == -1.0
    assert isinstance(thunk_env.unwrapped, JumpChain)


def test_same_seed_same_episode_and_vector_env_seeds_each_env():
    def rollout(env):
        obs = [env.reset()[0]]
        for _ in range(5):
            obs.append(env.step(env.action_space.sample())[0])
        return np.stack(obs)

    a = rollout(make_env("CartPole-v1", seed=7)())
    np.testing.assert_array_equal(a, rollout(make_env("CartPole-v1", seed=7)()))
    assert not np.array_equal(a, rollout(make_env("CartPole-v1", seed=8)()))
    envs = make_vector_env("CartPole-v1", num_envs=3, seed=7)
    first, _ = envs.reset()
    for i in range(3):  # env i of the vector env is make_env(seed, idx=i), i.e. seeded 7 + i
        np.testing.assert_array_equal(first[i], make_env("CartPole-v1", seed=7, idx=i)().reset()[0])
    np.testing.assert_array_equal(first[1], make_env("CartPole-v1", seed=8)().reset()[0])


def test_episode_statistics_and_time_limit():
    env = make_env("CartPole-v1", EnvOptions(max_episode_steps=5), seed=0)()
    env.reset()
    for _ in range(5):
        _, _, terminated, truncated, info = env.step(0 if _ % 2 else 1)
    assert truncated and not terminated
    assert info["episode"]["l"] == 5 and info["episode"]["r"] == 5.0


@pytest.mark.atari
def test_video_dir_records_each_episode(tmp_path):
    env = make_env("ALE/Breakout-v5", EnvOptions(max_episode_steps=5), seed=0, video_dir=str(tmp_path))()
    for _ in range(2):
        env.reset()
        done = False
        while not done:
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            done = terminated or truncated
    env.close()
    videos = sorted(tmp_path.glob("*.mp4"))
    assert len(videos) == 2 and all(v.stat().st_size > 0 for v in videos)


def test_unknown_env_id_suggests_close_ids():
    with pytest.raises(RlgenError, match=r"unknown environment 'CartPol-v1'; did you mean CartPole-v1"):
        make_env("CartPol-v1", seed=0)


def test_atari_id_without_ale_py_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ale_py", None)  # import ale_py now raises ImportError
    with pytest.raises(RlgenError, match="pip install ale-py"):
        make_env("ALE/Pongg-v5", seed=0)


def test_an_exception_inside_the_env_names_the_env_and_the_step():
    env = make_env(JUMP_CHAIN_ID, seed=0)()
    env.reset()
    env.step(R)
    with pytest.raises(AssertionError, match="JumpChain actions are 0") as info:  # the type is kept
        env.step(7)
    if sys.version_info >= (3, 11):
        assert "in environment 'rlgen/JumpChain-v0', episode 0, step 1 (action 7)" in info.value.__notes__


def test_check_discrete_actions():
    assert check_discrete_actions(gym.spaces.Discrete(6), "DQN") == 6
    with pytest.raises(RlgenError, match="DQN needs a discrete action space"):
        check_discrete_actions(gym.spaces.Box(-1, 1, (2,)), "DQN")


def test_pong_frame_preprocessing_values():
    frame = np.zeros((210, 160, 3), np.uint8)
    frame[..., 0] = 144  # background
    frame[100:110, 140:144, 0] = 92  # a paddle
    frame[121, 50, 0] = 236  # the ball, on a row and column that the 2x downsampling keeps
    x = preprocess_pong_frame(frame)
    assert x.shape == (80, 80) and x.dtype == np.float32
    assert set(np.unique(x)) == {0.0, 1.0}
    assert x[(121 - 35) // 2, 50 // 2] == 1.0 and x[(101 - 35) // 2, 140 // 2] == 1.0
    assert x.sum() == 1 + 5 * 2  # ball + 5 rows x 2 columns of paddle


@pytest.mark.atari
def test_pong_from_pixels_observations():
    env = make_env("ALE/Pong-v5", EnvOptions(pong_from_pixels=True), seed=0)()
    obs, _ = env.reset()
    assert obs.shape == (6400,) and obs.dtype == np.float32 and not obs.any()  # no previous frame yet
    seen = set()
    for _ in range(60):
        obs, *_ = env.step(env.action_space.sample())
        seen |= set(np.unique(obs))
    assert seen == {-1.0, 0.0, 1.0}  # things moved: new pixels +1, vacated pixels -1


@pytest.mark.atari
def test_atari_stack_and_life_loss_keeps_the_game_going():
    env = make_env("ALE/Breakout-v5", EnvOptions(terminal_on_life_loss=True), seed=0)()
    obs, _ = env.reset()
    assert obs.shape == (4, 84, 84) and obs.dtype == np.uint8
    assert env.observation_space.shape == (4, 84, 84)
    np.testing.assert_array_equal(obs[0], obs[3])  # the reset stack repeats the first frame
    ale = env.unwrapped.ale
    assert ale.lives() == 5
    for _ in range(2000):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert reward in (0.0, 1.0)  # clipped
        if terminated:
            break
    assert terminated and ale.lives() == 4, "losing a life ends the learner's episode"
    env.reset()
    assert ale.lives() == 4, "the reset after a lost life continues the same game"


def test_env_options_from_the_command_line_build_an_atari_stack():
    """jsonargparse hands EnvOptions a PositiveInt (an int subclass); the wrappers get plain ints."""
    from jsonargparse.typing import PositiveInt

    options = EnvOptions(frame_stack=PositiveInt(2), max_episode_steps=PositiveInt(10))
    assert type(options.frame_stack) is int and type(options.max_episode_steps) is int
    env = make_env("ALE/Pong-v5", options, seed=0)()
    assert env.observation_space.shape == (2, 84, 84)
    env.close()


def test_env_options_from_a_dict_are_checked_and_converted():
    """A dict (a user's, or the hyperparameters of a checkpoint) becomes EnvOptions; a typo is one line."""
    assert as_env_options(None) == EnvOptions()
    options = as_env_options({"frame_stack": 2, "env_kwargs": {"step_reward": -1.0}})
    assert options == EnvOptions(frame_stack=2, env_kwargs={"step_reward": -1.0})
    assert as_env_options(options) == options
    with pytest.raises(RlgenError, match=r"env_options: unknown key\(s\) frame_stak; valid keys: frame_stack, "):
        as_env_options({"frame_stak": 4})
    with pytest.raises(RlgenError, match="env_options must be an EnvOptions or a dict"):
        make_env("CartPole-v1", 0, seed=0)  # the seed where the options go
    env = make_env(JUMP_CHAIN_ID, {"env_kwargs": {"step_reward": -1.0}}, seed=0)()  # make_env converts a dict too
    env.reset()
    assert env.step(R)[1] == -1.0
