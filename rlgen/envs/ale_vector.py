"""Atari training environments on ale-py's C++ vector env (``ale_py.vector_env.AtariVectorEnv``).

The emulators of all sub-environments step in C++ threads and the preprocessing is done there too,
about twice as fast as a ``SyncVectorEnv`` of the Python wrapper stack in ``make_env.py``, which
stays the readable reference (and is what evaluation and videos use). Every setting is passed
explicitly, because the vector env's defaults differ from a single ``gym.make("ALE/...-v5")``:

============================  ================================  =======================================
Python stack (``make_env``)   C++ vector env (here)             note
============================  ================================  =======================================
the id's sticky actions       ``repeat_action_probability``     0.25 for ``-v5``, 0 for ``NoFrameskip-v4``
AtariPreprocessing            ``frameskip=4, maxpool=True``,    noop reset <= 30, 84x84 grey
                              ``img 84x84, grayscale``
FireReset                     ``use_fire_reset``                games whose action 1 is FIRE
RecordEpisodeStatistics       vector ``RecordEpisodeStatistics``  whole-game, unclipped scores
ClipReward                    vector ``ClipReward``             after the statistics, as in the stack
FrameStackObservation         ``stack_num`` +                   a new episode (or life) starts from its
                              :class:`RepeatFirstFrameVector`   first frame repeated, not zeros
TimeLimit (agent steps)       ``max_num_frames_per_episode``    agent steps x frame skip
============================  ================================  =======================================

EpisodicLife + FireReset      :class:`EpisodicLifeVector`       outside the statistics: whole games;
                                                                FIRE relaunches after a lost life

``pong_from_pixels`` gets raw RGB frames (the id's own frame skip, no max-pool, no noop, no FIRE, as
``gym.make``) and :class:`PongPixelsVector` does Karpathy's crop/downsample/difference for all
environments at once in numpy. Options the vector env cannot express (``video_dir``, ``env_kwargs``)
keep the Python stack: :func:`ale_vector_supported` says which. (The vector env's own
``episodic_life`` restarts the whole game after a lost life, so it is not used.)
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
from gymnasium.wrappers.vector import ClipReward, RecordEpisodeStatistics

from rlgen.envs.options import EnvOptions
from rlgen.envs.pong import preprocess_pong_frames


def ale_vector_supported(env_id: str, options: EnvOptions = EnvOptions(), *, video_dir: str | None = None) -> bool:
    """True when ``env_id`` is an ALE id and the options can all be expressed by the C++ vector env."""
    spec = gym.registry.get(env_id)
    entry = getattr(spec, "entry_point", None)
    if not (isinstance(entry, str) and entry.startswith("ale_py")):
        return False
    try:
        from ale_py.vector_env import AtariVectorEnv  # noqa: F401  (ale-py >= 0.11)
    except ImportError:
        return False
    if options.pong_from_pixels and not isinstance(spec.kwargs.get("frameskip", 1), int):
        return False  # a random frame skip (the -v0 ids) has no vector form
    return video_dir is None and not options.env_kwargs


def make_ale_vector_env(env_id: str, num_envs: int, options: EnvOptions = EnvOptions(), *, seed: int,
                        num_threads: int = 1) -> gym.vector.VectorEnv:
    """``num_envs`` copies of the ALE game ``env_id`` in one C++ vector env; env ``i`` is seeded ``seed + i``.

    Args:
        env_id: a registered ALE id (``ALE/Pong-v5``, ``BreakoutNoFrameskip-v4``, ...).
        num_envs: number of environments.
        options: how the environments are built (:class:`~rlgen.envs.options.EnvOptions`): ``frame_stack``
            stacked 84x84 frames, ``terminal_on_life_loss`` (a lost life ends the learner's episode, the game
            goes on), ``clip_rewards`` (the learner's rewards; the episode statistics stay unclipped),
            ``pong_from_pixels`` (Karpathy's float32 (6400,) frame differences instead of the DQN stack),
            ``max_episode_steps`` (agent steps; ``None``: the id's default). ``env_kwargs`` must be empty.
        seed: base seed, used by the first ``reset()`` that gives none.
        num_threads: C++ threads stepping the emulators.
    """
    from ale_py.vector_env import AtariVectorEnv

    spec = gym.registry[env_id]
    kw = spec.kwargs
    frameskip = int(kw.get("frameskip", 1)) if options.pong_from_pixels else 4
    max_frames = int(kw.get("max_num_frames_per_episode", 108_000))
    if options.max_episode_steps is not None:
        max_frames = min(max_frames, options.max_episode_steps * max(frameskip, 1))
    common = dict(num_threads=num_threads, repeat_action_probability=float(kw.get("repeat_action_probability", 0.0)),
                  full_action_space=bool(kw.get("full_action_space", False)), max_num_frames_per_episode=max_frames,
                  reward_clipping=False, episodic_life=False, autoreset_mode="NextStep")
    if options.pong_from_pixels:
        envs = AtariVectorEnv(kw["game"], num_envs, img_height=210, img_width=160, grayscale=False, stack_num=1,
                              frameskip=max(frameskip, 1), maxpool=False, noop_max=0, use_fire_reset=False, **common)
        envs = RecordEpisodeStatistics(envs)
        envs = PongPixelsVector(envs)
    else:
        meanings = _action_meanings(env_id)
        fire = len(meanings) >= 3 and meanings[1] == "FIRE"
        envs = AtariVectorEnv(kw["game"], num_envs, img_height=84, img_width=84, grayscale=True,
                              stack_num=options.frame_stack, frameskip=4, maxpool=True, noop_max=30,
                              use_fire_reset=fire, **common)
        envs = RecordEpisodeStatistics(envs)
        if options.terminal_on_life_loss:
            envs = EpisodicLifeVector(envs, fire=fire)
        if options.clip_rewards:
            envs = ClipReward(envs, -1.0, 1.0)
        envs = RepeatFirstFrameVector(envs)
    return _SeedFirstResetVector(envs, seed)


class PongPixelsVector(gym.vector.VectorWrapper):
    """The vector form of :class:`rlgen.envs.pong.PongPixels`: each env's observation is the flattened
    difference of its last two preprocessed frames, float32 (6400,) in {-1, 0, 1}, zeros after a reset.

    Next-step autoreset: the step after an env's episode ended returns its new first frame, so that
    env's difference starts again from zeros.
    """

    def __init__(self, env: gym.vector.VectorEnv):
        super().__init__(env)
        self.single_observation_space = gym.spaces.Box(-1.0, 1.0, shape=(80 * 80,), dtype=np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space, self.num_envs)
        self._prev = np.zeros((self.num_envs, 80, 80), dtype=np.float32)
        self._new_episode = np.ones(self.num_envs, dtype=bool)

    def reset(self, *, seed=None, options=None):
        frames, info = self.env.reset(seed=seed, options=options)
        self._new_episode[:] = True
        obs = self._diff(frames)
        self._new_episode[:] = False
        return obs, info

    def step(self, actions):
        frames, rewards, terminated, truncated, info = self.env.step(actions)
        obs = self._diff(frames)
        self._new_episode = terminated | truncated  # their next step is the autoreset
        return obs, rewards, terminated, truncated, info

    def _diff(self, frames: np.ndarray) -> np.ndarray:
        cur = preprocess_pong_frames(frames.reshape(self.num_envs, 210, 160, 3))  # (N, 80, 80)
        diff = cur - self._prev
        diff[self._new_episode] = 0.0
        self._prev = cur
        return diff.reshape(self.num_envs, -1)  # (N, 6400)


class EpisodicLifeVector(gym.vector.VectorWrapper):
    """The vector form of :class:`rlgen.envs.atari.EpisodicLife` and :class:`~rlgen.envs.atari.FireReset`:
    ``terminated`` when an env loses a life, while its game goes on. The learner drops the step after an
    episode end (it takes it for the autoreset), so each life is one episode of the learner; the game's own
    statistics, inside this wrapper, still report whole games.

    With ``fire`` (games whose action 1 is FIRE, e.g. Breakout) that dropped step presses FIRE, whatever the
    agent chose, so the next life starts with the ball in play, as a new game does (``use_fire_reset``):
    the agent is never left waiting on a button that no transition it learns from ever needed.
    """

    def __init__(self, env: gym.vector.VectorEnv, fire: bool = False):
        super().__init__(env)
        self.fire = fire
        self._lives = np.zeros(self.num_envs, dtype=np.int64)
        self._lost = np.zeros(self.num_envs, dtype=bool)  # lost a life on the previous step

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._lives = np.asarray(info["lives"], dtype=np.int64).copy()
        self._lost[:] = False
        return obs, info

    def step(self, actions):
        if self.fire and self._lost.any():
            actions = np.where(self._lost, 1, actions)  # action 1 is FIRE
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        lives = np.asarray(info["lives"], dtype=np.int64)
        self._lost = (lives < self._lives) & (lives > 0)
        self._lives = lives.copy()
        return obs, rewards, terminated | self._lost, truncated, info


class OneGame(gym.Env):
    """The one env of a one-env vector env as a single Gymnasium env whose episode is a whole game: the ends
    of the learner's episodes inside it (lost lives, :class:`EpisodicLifeVector`) are played through, and the
    episode ends when the game's statistics (``RecordEpisodeStatistics``, inside) report the game over or its
    time limit. Evaluation plays it, so it sees the very frames, FIRE presses and rewards of training."""

    def __init__(self, envs: gym.vector.VectorEnv):
        assert envs.num_envs == 1, f"OneGame plays a vector env of one env, got {envs.num_envs}"
        self.envs = envs
        self.observation_space, self.action_space = envs.single_observation_space, envs.single_action_space

    def reset(self, *, seed=None, options=None):
        obs, info = self.envs.reset(seed=seed, options=options)
        return obs[0], info

    def step(self, action):
        obs, rewards, terminated, truncated, info = self.envs.step(np.asarray([action]))
        game_over = bool(info.get("_episode", [False])[0])
        return obs[0], float(rewards[0]), game_over and bool(terminated[0]), game_over and bool(truncated[0]), info

    def close(self):
        self.envs.close()


class RepeatFirstFrameVector(gym.vector.VectorWrapper):
    """Pad the frame stack of a new episode with its first frame, as ``FrameStackObservation`` does
    (and as the replay buffer rebuilds stacks), instead of the vector env's zeros.

    A learner's episode starts at a reset and at the step after an episode end (an autoreset, or the
    game going on after a lost life, whose stack would otherwise still hold the previous life's frames).
    """

    def __init__(self, env: gym.vector.VectorEnv):
        super().__init__(env)
        self._t = np.zeros(self.num_envs, dtype=np.int64)  # steps since each env's episode started
        self._ended = np.zeros(self.num_envs, dtype=bool)  # the previous step ended the episode

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._t[:], self._ended[:] = 0, False
        return self._pad(obs), info

    def step(self, actions):
        obs, rewards, terminated, truncated, info = self.env.step(actions)
        self._t = np.where(self._ended, 0, self._t + 1)  # the step after an end starts a new episode
        self._ended = terminated | truncated
        return self._pad(obs), rewards, terminated, truncated, info

    def _pad(self, obs: np.ndarray) -> np.ndarray:
        k = obs.shape[1]  # (N, k, 84, 84)
        starting = np.flatnonzero(self._t < k - 1)
        if len(starting):
            obs = obs.copy()  # not the vector env's own array
        for i in starting:
            first = k - 1 - self._t[i]  # slot of the episode's first frame
            obs[i, :first] = obs[i, first]
        return obs


class _SeedFirstResetVector(gym.vector.VectorWrapper):
    """Use ``seed`` for the first ``reset()`` that gives none (as ``SeedFirstReset`` for one env)."""

    def __init__(self, env: gym.vector.VectorEnv, seed: int):
        super().__init__(env)
        self._seed: int | None = seed
        self.action_space.seed(seed)

    def reset(self, *, seed=None, options=None):
        seed, self._seed = (self._seed if seed is None else seed), None
        return self.env.reset(seed=seed, options=options)


def _action_meanings(env_id: str) -> list[str]:
    env = gym.make(env_id)
    try:
        return env.unwrapped.get_action_meanings()
    finally:
        env.close()
