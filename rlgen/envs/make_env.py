"""``make_env`` thunks: every environment of rlgen is built here, with one explicit wrapper order.

Atari ids (``ALE/Pong-v5``, ``BreakoutNoFrameskip-v4``, ...) get the DQN stack, innermost first::

    gym.make(id, frameskip=1)          the emulator, one frame per step (sticky actions as the id says)
    RecordVideo                        optional, full-colour 60 fps frames
    AtariPreprocessing                 noop reset (<= 30), frame skip 4 with max-pool, 84x84 grayscale
    TimeLimit                          optional, counted in agent steps
    RecordEpisodeStatistics            info["episode"]: the real game score and length (agent steps)
    EpisodicLife                       optional: a lost life ends the learner's episode, not the game
    FireReset                          games whose action 1 is FIRE
    ClipReward(-1, 1)                  optional
    FrameStackObservation(4)           (4, 84, 84) uint8

Evaluation builds its env with :func:`make_eval_env` (whole games, on the C++ vector env for ALE ids).
``pong_from_pixels=True`` replaces the stack with Karpathy's preprocessing (:class:`PongPixels`).
Other ids get ``gym.make`` (+ ``RecordVideo``) + ``RecordEpisodeStatistics``. Every env then gets
``SeedFirstReset`` (the first ``reset()`` uses ``seed + idx``) and ``StepContext`` (an exception inside
the env gets a note naming the env id, episode and step).
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.wrappers import (
    AtariPreprocessing,
    ClipReward,
    FrameStackObservation,
    RecordEpisodeStatistics,
    RecordVideo,
    TimeLimit,
)

from rlgen.envs.atari import EpisodicLife, FireReset, WholeGame, needs_fire_reset
from rlgen.envs.options import EnvOptions, as_env_options
from rlgen.envs.pong import PongPixels
from rlgen.errors import RlgenError, check_range

ATARI_FPS = 60  # frames per second of the emulator, for videos


def _gym_make(env_id: str, **kwargs: Any) -> gym.Env:
    """``gym.make``, with one-line errors for keyword arguments the environment does not take and for a
    missing optional package (MuJoCo: ``rlgen[mujoco]``)."""
    try:
        return gym.make(env_id, **kwargs)
    except TypeError as err:
        raise RlgenError(f"{env_id} does not accept these arguments ({err}); fix model.env_options.env_kwargs") from err
    except gym.error.DependencyNotInstalled as err:
        if is_mujoco(env_id):
            raise RlgenError(f'{env_id} is a MuJoCo environment and needs the mujoco package: '
                             'pip install "rlgen[mujoco]" (or pip install "gymnasium[mujoco]")') from None
        raise RlgenError(f"{env_id} needs a package that is not installed: {_first_line(err)}") from None
    except (ImportError, AttributeError, RuntimeError) as err:  # MuJoCo loads the OpenGL backend MUJOCO_GL names
        if not (is_mujoco(env_id) and os.environ.get("MUJOCO_GL")):
            raise
        raise RlgenError(f"{env_id}: MuJoCo failed to load with MUJOCO_GL={os.environ['MUJOCO_GL']} "
                         f"({type(err).__name__}: {_first_line(err)}); install that backend, or unset MUJOCO_GL "
                         "(training needs no display; rlgen picks egl for videos)") from None


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def make_env(
    env_id: str,
    options: EnvOptions = EnvOptions(),
    *,
    seed: int,
    idx: int = 0,
    video_dir: str | None = None,
    render_mode: str | None = None,
) -> Callable[[], gym.Env]:
    """A thunk that builds environment number ``idx``, seeded ``seed + idx``.

    The first ``reset()`` without an explicit seed uses ``seed + idx``; the action and observation
    spaces are seeded the same way, so two thunks with the same arguments give the same episodes.

    Args:
        env_id: any registered Gymnasium id (``CartPole-v1``, ``ALE/Pong-v5``, ``rlgen/JumpChain-v0``).
        options: how the environment is built (:class:`EnvOptions`: frame_stack, clip_rewards, env_kwargs, ...;
            a dict of its fields is checked and converted).
        seed: base seed; this env uses ``seed + idx``.
        idx: index of the env inside a vector env (and the DDP rank offset the caller adds).
        video_dir: record every episode as an mp4 under this directory (rgb_array frames).
        render_mode: the ``render_mode`` of ``gym.make`` (``rgb_array``: frames from ``env.render()``).
    """
    options = as_env_options(options)
    check_env_id(env_id)
    is_atari = _is_atari(env_id)
    if not is_atari and options.pong_from_pixels:
        raise RlgenError(f"pong_from_pixels needs an Atari Pong id such as ALE/Pong-v5, got '{env_id}'")
    check_range(">= 1", "env_options", frame_stack=options.frame_stack)
    env_seed = seed + idx
    max_episode_steps = options.max_episode_steps

    def thunk() -> gym.Env:
        kwargs = dict(options.env_kwargs or {})
        if render_mode is not None:
            kwargs["render_mode"] = render_mode
        if video_dir is not None:
            kwargs["render_mode"] = "rgb_array"
            offscreen_rendering()
        if is_atari and options.pong_from_pixels:
            env = _gym_make(env_id, **kwargs)  # the id's own frame skip, as in Karpathy's script
            env = _record_video(env, video_dir, fps=ATARI_FPS // _frameskip(env))
            env = _time_limit(env, max_episode_steps)
            env = RecordEpisodeStatistics(env)
            env = PongPixels(env)
        elif is_atari:
            env = _gym_make(env_id, frameskip=1, **kwargs)
            env = _record_video(env, video_dir, fps=ATARI_FPS)
            env = AtariPreprocessing(env, noop_max=30, frame_skip=4, screen_size=84, terminal_on_life_loss=False)
            env = _time_limit(env, max_episode_steps)
            env = RecordEpisodeStatistics(env)
            if options.terminal_on_life_loss:
                env = EpisodicLife(env)
            if needs_fire_reset(env):
                env = FireReset(env)
            if options.clip_rewards:
                env = ClipReward(env, -1.0, 1.0)
            env = FrameStackObservation(env, options.frame_stack)  # (frame_stack, 84, 84) uint8
        else:
            if max_episode_steps is not None:
                kwargs["max_episode_steps"] = max_episode_steps
            env = _gym_make(env_id, **kwargs)
            env = _record_video(env, video_dir, fps=None)
            env = RecordEpisodeStatistics(env)
        env = SeedFirstReset(env, env_seed)
        env = StepContext(env, env_id)
        env.action_space.seed(env_seed)
        env.observation_space.seed(env_seed)
        return env

    return thunk


def make_vector_env(env_id: str, num_envs: int, options: EnvOptions = EnvOptions(), *, seed: int,
                    num_threads: int = 1, video_dir: str | None = None) -> gym.vector.VectorEnv:
    """``num_envs`` copies of ``env_id`` stepped in this process; env ``i`` is seeded ``seed + i``.

    ALE ids run on ale-py's C++ vector env (:mod:`rlgen.envs.ale_vector`: the same preprocessing and
    bookkeeping, stepped and preprocessed in C++ threads) unless an option needs the Python stack; everything else is a
    ``SyncVectorEnv`` of :func:`make_env` thunks. Both use Gymnasium's NEXT_STEP autoreset: the step
    after an episode ended returns the first observation of the next episode and its transition
    (last obs -> reset obs) must be dropped.

    Args:
        env_id: any registered Gymnasium id.
        num_envs: number of environments.
        options: how the environments are built (:class:`EnvOptions`; a dict of its fields is converted).
        seed: base seed.
        num_threads: threads of ale-py's vector env (ignored by the Python stack).
        video_dir: record every episode as an mp4 under this directory (keeps the Python stack).
    """
    check_range(">= 1", "make_vector_env", num_envs=num_envs)
    check_env_id(env_id)
    options = as_env_options(options)
    make_env(env_id, options, seed=seed, video_dir=video_dir)  # checks the options (builds nothing)
    from rlgen.envs.ale_vector import ale_vector_supported, make_ale_vector_env

    if ale_vector_supported(env_id, options, video_dir=video_dir):
        return make_ale_vector_env(env_id, num_envs, options, seed=seed, num_threads=num_threads)
    envs = gym.vector.SyncVectorEnv([make_env(env_id, options, seed=seed, idx=i, video_dir=video_dir)
                                     for i in range(num_envs)])
    envs.action_space.seed(seed)
    return envs


def make_eval_env(env_id: str, options: EnvOptions = EnvOptions(), *, seed: int,
                  render_mode: str | None = None) -> gym.Env:
    """One environment for evaluation: whole episodes and unclipped rewards, built as training builds its envs.

    An Atari episode is a whole game of all lives (the DQN paper's protocol): lost lives that end the
    learner's episodes in training are played through, with the same FIRE that relaunches the ball in
    training. An ALE game runs on the training pipeline itself, ale-py's C++ vector env with one env
    (:class:`~rlgen.envs.ale_vector.OneGame`), so evaluation sees the frames the agent learned from; only
    rendering (videos) or an option the vector env lacks keeps the Python stack (:class:`WholeGame`).

    Args:
        env_id: any registered Gymnasium id.
        options: the training env's options; ``clip_rewards`` is switched off here.
        seed: seed of the first ``reset()`` that gives none.
        render_mode: the ``render_mode`` of ``gym.make`` (``rgb_array`` for video frames).
    """
    from rlgen.envs.ale_vector import OneGame, ale_vector_supported, make_ale_vector_env

    check_env_id(env_id)
    options = replace(as_env_options(options), clip_rewards=False)
    if render_mode is None and ale_vector_supported(env_id, options):
        return OneGame(make_ale_vector_env(env_id, 1, options, seed=seed))
    env = make_env(env_id, options, seed=seed, render_mode=render_mode)()
    return WholeGame(env) if options.terminal_on_life_loss and _is_atari(env_id) else env


def check_discrete_actions(space: gym.Space, algo: str) -> int:
    """The number of actions of a ``Discrete`` space; a one-line RlgenError for any other space."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    raise RlgenError(
        f"{algo} needs a discrete action space, but the environment's is {space}; "
        f"use an env with Discrete actions (CartPole-v1, ALE/Pong-v5, ...)"
    )


def check_policy_actions(space: gym.Space, algo: str) -> int:
    """The number of actions of a ``Discrete`` space, or the dimension of a bounded 1-D ``Box``; a one-line
    RlgenError for any other space (Dict, Tuple, MultiDiscrete, MultiBinary, unbounded or n-D Box)."""
    if isinstance(space, gym.spaces.Discrete):
        return int(space.n)
    if isinstance(space, gym.spaces.Box):
        if len(space.shape) != 1:
            raise RlgenError(f"{algo} needs a Box of one vector of actions, but the environment's is {space} "
                             f"(shape {space.shape}); use an env whose actions are one vector, shape (A,)")
        if not (np.all(np.isfinite(space.low)) and np.all(np.isfinite(space.high))):
            raise RlgenError(f"{algo} clips its continuous actions into the action space's bounds, but the "
                             f"environment's {space} is unbounded; use an env whose Box actions have finite bounds")
        return int(space.shape[0])
    raise RlgenError(
        f"{algo} supports Discrete actions or a bounded 1-D Box of continuous actions, but the environment's "
        f"action space is {space}; use e.g. CartPole-v1 (Discrete) or Pendulum-v1 (Box)"
    )


def check_env_id(env_id: str) -> None:
    """Raise a one-line RlgenError for an unknown id, suggesting the closest registered ids."""
    if env_id in gym.registry:
        return
    try:  # importing ale-py registers the Atari ids (ALE/Pong-v5, PongNoFrameskip-v4, ...)
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:
        if looks_atari(env_id):
            raise RlgenError(
                f"'{env_id}' is an Atari game and needs ale-py: pip install ale-py (the ROMs ship with it)"
            ) from None
    if env_id in gym.registry:
        return
    close = difflib.get_close_matches(env_id, list(gym.registry), n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(close)}?" if close else "; see gymnasium.pprint_registry() for the ids"
    raise RlgenError(f"unknown environment '{env_id}'{hint}")


class SeedFirstReset(gym.Wrapper):
    """Use ``seed`` for the first ``reset()`` that gives none, so a thunk alone fixes the episodes."""

    def __init__(self, env: gym.Env, seed: int):
        super().__init__(env)
        self._seed: int | None = seed

    def reset(self, *, seed=None, options=None):
        if seed is None:
            seed = self._seed
        self._seed = None
        return self.env.reset(seed=seed, options=options)


class StepContext(gym.Wrapper):
    """Add the env id, episode and step to an exception raised inside the env (e.g. a bad action).

    The exception keeps its type (callers may catch it); the context is a note in its traceback.
    """

    def __init__(self, env: gym.Env, env_id: str):
        super().__init__(env)
        self.env_id, self.episode, self.t = env_id, -1, 0

    def step(self, action):
        try:
            result = self.env.step(action)
        except Exception as err:
            _add_note(err, f"in environment '{self.env_id}', episode {self.episode}, step {self.t} (action {action!r})")
            raise
        self.t += 1
        return result

    def reset(self, *, seed=None, options=None):
        self.episode, self.t = self.episode + 1, 0
        try:
            return self.env.reset(seed=seed, options=options)
        except Exception as err:
            _add_note(err, f"in environment '{self.env_id}', reset of episode {self.episode}")
            raise


def _add_note(err: Exception, note: str) -> None:
    if hasattr(err, "add_note"):  # Python >= 3.11
        err.add_note(note)


def is_mujoco(env_id: str) -> bool:
    """True for the registered ids of Gymnasium's MuJoCo environments (``InvertedPendulum-v5``, ``Hopper-v5``, ...)."""
    entry = gym.registry[env_id].entry_point if env_id in gym.registry else None
    return isinstance(entry, str) and entry.startswith("gymnasium.envs.mujoco")


def looks_atari(env_id: str) -> bool:
    """True for ids of Atari games (``ALE/Pong-v5``, ``BreakoutNoFrameskip-v4``, ``Pong-v4``), registered or not."""
    return env_id.startswith("ALE/") or "NoFrameskip" in env_id or env_id.split("-")[0] in _ATARI_HINTS


_ATARI_HINTS = {"Pong", "Breakout", "SpaceInvaders", "Seaquest", "Qbert", "BeamRider", "Enduro", "MsPacman"}


def _is_atari(env_id: str) -> bool:
    entry = gym.registry[env_id].entry_point
    return isinstance(entry, str) and entry.startswith("ale_py")


def _frameskip(env: gym.Env) -> int:
    skip = env.spec.kwargs.get("frameskip", 1) if env.spec is not None else 1
    return int(np.max(skip)) if skip else 1


def offscreen_rendering() -> None:
    """Let pygame (classic-control envs) render rgb_array frames with no display and no sound device, and
    MuJoCo through EGL (headless OpenGL; OSMesa, the other headless backend, is ``MUJOCO_GL=osmesa``).
    Variables the user set are kept."""
    for driver in ("SDL_VIDEODRIVER", "SDL_AUDIODRIVER"):
        os.environ.setdefault(driver, "dummy")
    os.environ.setdefault("MUJOCO_GL", "egl")


def _record_video(env: gym.Env, video_dir: str | None, fps: int | None) -> gym.Env:
    if video_dir is None:
        return env
    return RecordVideo(env, video_dir, episode_trigger=lambda _: True, fps=fps, disable_logger=True)


def _time_limit(env: gym.Env, max_episode_steps: int | None) -> gym.Env:
    return env if max_episode_steps is None else TimeLimit(env, max_episode_steps)
