"""Environments for rlgen's RL algorithms: ``make_env`` thunks, ``EnvOptions``, Atari and Pong wrappers, JumpChain.

The replay buffers and experience sources that feed the algorithms are in :mod:`rlgen.experience`.

Importing this package registers ``rlgen/JumpChain-v0`` with Gymnasium.
"""

import gymnasium as gym

from rlgen.envs.make_env import (
    check_discrete_actions,
    check_env_id,
    check_policy_actions,
    make_env,
    make_eval_env,
    make_vector_env,
)
from rlgen.envs.options import EnvOptions, as_env_options

JUMP_CHAIN_ID = "rlgen/JumpChain-v0"

if JUMP_CHAIN_ID not in gym.registry:
    gym.register(id=JUMP_CHAIN_ID, entry_point="rlgen.envs.jump_chain:JumpChain")

__all__ = [
    "EnvOptions",
    "JUMP_CHAIN_ID",
    "as_env_options",
    "check_discrete_actions",
    "check_env_id",
    "check_policy_actions",
    "make_env",
    "make_eval_env",
    "make_vector_env",
]
