"""``EnvOptions``: how rlgen builds an environment, in a module of its own so that every env module can
import it (``make_env.py`` and ``ale_vector.py`` both need it; neither imports the other for it)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from typing import Any

from jsonargparse.typing import PositiveInt

from rlgen.errors import RlgenError


@dataclass(frozen=True)
class EnvOptions:
    """How rlgen builds an environment: the RL systems' ``env_options``, and the ``options`` of :func:`make_env`
    and :func:`make_vector_env`. The defaults live here and nowhere else.

    On the command line ``--model.env_options.frame_stack 2``; ``--help`` lists the fields, and an unknown key
    or a wrong type is a one-line error. A dict (a user's, or the hyperparameters of a checkpoint) becomes an
    ``EnvOptions`` through :func:`as_env_options`.

    Args:
        frame_stack: Atari only: number of stacked 84x84 frames.
        terminal_on_life_loss: Atari only: a lost life ends the learner's episode (the game goes on).
        clip_rewards: Atari only: clip the learner's rewards to [-1, 1] (episode statistics stay unclipped).
        pong_from_pixels: Atari Pong only: Karpathy's float32 (6400,) frame differences instead of the stack.
        max_episode_steps: truncate episodes after this many agent steps (null: the id's default).
        env_kwargs: extra keyword arguments for ``gym.make``, e.g. ``{"step_reward": -1}``.
    """

    frame_stack: PositiveInt = 4
    terminal_on_life_loss: bool = False
    clip_rewards: bool = True
    pong_from_pixels: bool = False
    max_episode_steps: PositiveInt | None = None
    env_kwargs: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        # jsonargparse's PositiveInt is an int subclass that gymnasium's wrappers refuse (FrameStackObservation
        # checks the type): hold plain ints.
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, int) and not isinstance(value, bool):
                object.__setattr__(self, f.name, int(value))


def as_env_options(options: EnvOptions | Mapping[str, Any] | None) -> EnvOptions:
    """``options`` as an :class:`EnvOptions`: None gives the defaults, a dict (a user's, or the hyperparameters
    of a checkpoint) is checked for unknown keys, with a one-line error naming the valid ones."""
    if options is None:
        return EnvOptions()
    if isinstance(options, EnvOptions):
        return replace(options)  # a copy through __post_init__ (plain ints), also for one unpickled from a checkpoint
    valid = ", ".join(f.name for f in fields(EnvOptions))
    if not hasattr(options, "keys"):
        raise RlgenError(f"env_options must be an EnvOptions or a dict of its fields ({valid}), got {options!r}")
    unknown = sorted(set(options.keys()) - {f.name for f in fields(EnvOptions)})
    if unknown:
        raise RlgenError(f"env_options: unknown key(s) {', '.join(unknown)}; valid keys: {valid}")
    return EnvOptions(**options)
