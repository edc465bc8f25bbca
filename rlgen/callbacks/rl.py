"""Learning curves of the RL systems (stopping once solved is Lightning's ``EarlyStopping`` with a
``stopping_threshold``, as in ``configs/dqn/cartpole.yaml``)."""

from __future__ import annotations

from typing import Any

from pytorch_lightning import Callback, LightningModule, Trainer


class ReturnCurve(Callback):
    """Records ``val/episodic_return`` against environment steps.

    After ``fit``, ``evaluations`` holds one ``(env_steps, episodes, val/episodic_return)`` per validation,
    and the system's ``rollout.history`` every training episode's ``(env_steps, return)``.

    Args:
        metric: the validation metric to track.
    """

    def __init__(self, metric: str = "val/episodic_return") -> None:
        self.metric = metric
        self.evaluations: list[tuple[int, int, float]] = []

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        value = trainer.callback_metrics.get(self.metric)
        if value is None or trainer.sanity_checking:
            return
        rollout: Any = pl_module.rollout
        self.evaluations.append((rollout.env_steps, rollout.episodes, float(value)))
