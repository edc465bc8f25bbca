"""Environments for rlgen's RL algorithms: ``make_env`` thunks, Atari and Pong wrappers, JumpChain, replay.

Importing this package registers ``rlgen/JumpChain-v0`` with Gymnasium.
"""

import gymnasium as gym

from rlgen.envs.make_env import (
    EnvOptions,
    as_env_options,
    check_discrete_actions,
    check_env_id,
    check_policy_actions,
    make_env,
    make_vector_env,
)
from rlgen.envs.replay import PrioritizedBatch, PrioritizedReplayBuffer, ReplayBatch, ReplayBuffer

JUMP_CHAIN_ID = "rlgen/JumpChain-v0"

if JUMP_CHAIN_ID not in gym.registry:
    gym.register(id=JUMP_CHAIN_ID, entry_point="rlgen.envs.jump_chain:JumpChain")

__all__ = [
    "EnvOptions",
    "JUMP_CHAIN_ID",
    "PrioritizedBatch",
    "PrioritizedReplayBuffer",
    "ReplayBatch",
    "ReplayBuffer",
    "as_env_options",
    "check_discrete_actions",
    "check_env_id",
    "check_policy_actions",
    "make_env",
    "make_vector_env",
]
