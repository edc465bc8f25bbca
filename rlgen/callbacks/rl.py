"""Learning curves of the RL systems, and stopping a run once the task is solved."""

from __future__ import annotations

from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer


class ReturnCurve(Callback):
    """Records ``val/episodic_return`` against environment steps; optionally stops once it reaches ``stop_at``.

    After ``fit``, ``evaluations`` holds one ``(env_steps, episodes, val/episodic_return)`` per validation,
    ``solved_at`` the first of them at or above ``stop_at`` (or None), and the system's
    ``rollout.history`` every training episode's ``(env_steps, return)``.

    Args:
        stop_at: stop training at the first validation whose mean return reaches this; None never stops.
        metric: the validation metric to track.
    """

    def __init__(self, stop_at: float | None = None, metric: str = "val/episodic_return") -> None:
        self.stop_at, self.metric = stop_at, metric
        self.evaluations: list[tuple[int, int, float]] = []
        self.solved_at: tuple[int, int, float] | None = None

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        value = trainer.callback_metrics.get(self.metric)
        if value is None or trainer.sanity_checking:
            return
        rollout: Any = pl_module.rollout
        point = (rollout.env_steps, rollout.episodes, float(value))
        self.evaluations.append(point)
        if self.stop_at is not None and point[2] >= self.stop_at and self.solved_at is None:
            self.solved_at = point
            trainer.should_stop = True
