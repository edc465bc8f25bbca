"""Learning curves of the RL systems, and a budget in environment steps (stopping once solved is
Lightning's ``EarlyStopping`` with a ``stopping_threshold``, as in ``configs/dqn/cartpole.yaml``)."""

from __future__ import annotations

import time
from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer

from rlgen.errors import check_range


class ReturnCurve(Callback):
    """Records ``val/episodic_return`` against environment steps, and the time the validations took.

    After ``fit``, ``evaluations`` holds one ``(env_steps, episodes, val/episodic_return)`` per validation,
    ``eval_seconds`` the wall time of all of them together, and the system's ``rollout.history`` every training
    episode's ``(env_steps, return)``.

    Args:
        metric: the validation metric to track.
    """

    def __init__(self, metric: str = "val/episodic_return") -> None:
        self.metric = metric
        self.evaluations: list[tuple[int, int, float]] = []
        self.eval_seconds = 0.0
        self._started = 0.0

    def on_validation_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._started = time.perf_counter()

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.eval_seconds += time.perf_counter() - self._started
        value = trainer.callback_metrics.get(self.metric)
        if value is None or trainer.sanity_checking:
            return
        rollout: Any = pl_module.rollout
        self.evaluations.append((rollout.env_steps, rollout.episodes, float(value)))


class EnvStepBudget(Callback):
    """Stops training once the system has taken ``max_env_steps`` environment steps (``rollout.env_steps``).

    ``trainer.max_steps`` counts gradient steps; where a batch is whole episodes (REINFORCE) its size in env
    steps grows as the agent improves, so a budget such as "500,000 env steps" is set here.

    Args:
        max_env_steps: the budget, summed over the training environments of one process (DDP: the first rank
            to spend it stops them all).
    """

    def __init__(self, max_env_steps: int) -> None:
        check_range(">= 1", "EnvStepBudget", max_env_steps=max_env_steps)
        self.max_env_steps = max_env_steps
        self.stopped_at: int | None = None  # this process's env steps when it stopped the run (the closing summary)

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        spent = pl_module.rollout.env_steps >= self.max_env_steps
        if trainer.strategy.reduce_boolean_decision(spent, all=False):  # DDP: every rank stops together
            trainer.should_stop = True
            self.stopped_at = pl_module.rollout.env_steps
