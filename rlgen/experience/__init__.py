"""The RL data path, in one place: what turns environment steps into training batches.

* :mod:`~rlgen.experience.replay`: replay buffers (uniform and prioritized) that store each Atari frame once and
  build n-step transitions; off-policy algorithms (DQN, tabular Q-learning) sample them.
* :mod:`~rlgen.experience.sources`: the experience sources, IterableDatasets that step the environments in the
  main process: ``ReplayExperience`` (act, store, sample), ``EpisodeExperience`` (whole episodes, REINFORCE),
  and ``RolloutStats``, the counters every RL system logs as ``rollout/*`` and checkpoints.
* :mod:`~rlgen.experience.rollout`: ``RolloutExperience``, fixed-length on-policy rollouts with GAE advantages,
  yielded as the shuffled minibatches of one update (PPO, A2C), and :func:`~rlgen.experience.rollout.gae`.
* :mod:`~rlgen.experience.normalize`: ``RunningMeanStd`` and ``RewardScaler``, observation normalization and reward
  scaling whose statistics are module buffers (saved in checkpoints, frozen at evaluation).
* :func:`experience_loader` and :func:`episode_indices`: the DataLoaders an RL system returns.

Environments themselves are built in :mod:`rlgen.envs`; the algorithms live in :mod:`rlgen.lightning_modules`.
"""

from torch.utils.data import DataLoader

from rlgen.experience.normalize import RewardScaler, RunningMeanStd
from rlgen.experience.replay import PrioritizedBatch, PrioritizedReplayBuffer, ReplayBatch, ReplayBuffer
from rlgen.experience.rollout import PolicyStep, RolloutBatch, RolloutExperience, gae
from rlgen.experience.sources import EpisodeBatch, EpisodeExperience, ReplayExperience, RolloutStats


def experience_loader(source) -> DataLoader:
    """The training DataLoader of an experience source: its batches as they come (``batch_size=None``), in the
    main process (``num_workers=0``: the environments and the buffer live there, and the training process must
    fill the buffer it samples). Under DDP each rank has its own source; an infinite stream is never sharded."""
    return DataLoader(source, batch_size=None, num_workers=0)


def episode_indices(n: int) -> DataLoader:
    """The evaluation DataLoader: episode indices ``0..n-1``, one per ``validation_step`` / ``test_step`` (Lightning
    averages the episodes' returns, and shards them across DDP ranks)."""
    return DataLoader(list(range(n)), batch_size=None)


__all__ = [
    "EpisodeBatch",
    "EpisodeExperience",
    "PolicyStep",
    "PrioritizedBatch",
    "PrioritizedReplayBuffer",
    "ReplayBatch",
    "ReplayBuffer",
    "ReplayExperience",
    "RewardScaler",
    "RolloutBatch",
    "RolloutExperience",
    "RolloutStats",
    "RunningMeanStd",
    "episode_indices",
    "experience_loader",
    "gae",
]
