"""Progress a person can read: a bar in a terminal, a plain line every so often in a log file.

Runs budgeted in steps (the RL systems: an endless stream of experience, ``trainer.max_steps``
gradient steps) count those steps against ``max_steps``, so the total and the ETA are true; other
runs count batches of each epoch as Lightning does. Both show a few metrics under readable names.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any

from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.callbacks import ProgressBar, TQDMProgressBar

# Readable names of the metrics worth watching; others keep their logged name.
READABLE = {
    "val/episodic_return": "eval return",
    "rollout/return_last100": "train return (last 100)",
    "rollout/epsilon": "epsilon",
    "train/loss": "loss",
}
ALWAYS_SHOWN = ("rollout/return_last100",)  # shown when logged, even without prog_bar=True


def step_budget(trainer: Trainer) -> int | None:
    """``max_steps`` when the run is budgeted in steps (an endless training stream), else None."""
    endless = math.isinf(trainer.num_training_batches)
    return trainer.max_steps if endless and trainer.max_steps > 0 else None


def readable_metrics(trainer: Trainer) -> dict[str, str]:
    """The progress-bar metrics and the always-shown ones, under readable names, formatted."""
    values = dict(trainer.progress_bar_metrics)
    for key in ALWAYS_SHOWN:
        if key in trainer.callback_metrics:
            values[key] = trainer.callback_metrics[key]
    return {READABLE.get(k, k): f"{float(v):.4g}" for k, v in values.items()}


class StepBudgetBar(TQDMProgressBar):
    """Lightning's tqdm bar; a run budgeted in steps shows ``global_step`` of ``max_steps``, with a true ETA.

    Args:
        refresh_rate: redraw every this many training batches.
    """

    def on_train_epoch_start(self, trainer: Trainer, *args: Any) -> None:
        super().on_train_epoch_start(trainer, *args)
        budget = step_budget(trainer)
        if budget is not None:
            bar = self.train_progress_bar
            bar.reset(total=budget)
            bar.initial = bar.n = trainer.global_step  # a resumed run: the rate counts this run's steps only
            bar.set_description("Training (steps)")

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if step_budget(trainer) is None:
            super().on_train_batch_end(trainer, pl_module, outputs, batch, batch_idx)
            return
        if (batch_idx + 1) % self.refresh_rate == 0:
            self.train_progress_bar.n = trainer.global_step
            self.train_progress_bar.set_postfix(self.get_metrics(trainer, pl_module), refresh=True)

    def get_metrics(self, trainer: Trainer, pl_module: LightningModule) -> dict[str, Any]:
        return readable_metrics(trainer)  # no v_num: the run directory says which run this is


class ProgressLines(ProgressBar):
    """One plain line every ``every_s`` seconds (and after each validation), for output that is not a
    terminal: a log file under nohup or a cluster job, where a bar would print nothing readable.

    Args:
        every_s: seconds between lines.
    """

    def __init__(self, every_s: float = 30.0) -> None:
        super().__init__()
        self.every_s = every_s
        self._enabled = True
        self._start = self._last = 0.0
        self._first_step = 0

    def disable(self) -> None:
        self._enabled = False

    def enable(self) -> None:
        self._enabled = True

    @property
    def is_enabled(self) -> bool:
        return self._enabled

    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._start = self._last = time.monotonic()
        self._first_step = trainer.global_step

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if time.monotonic() - self._last >= self.every_s:
            self._print(trainer, batch_idx + 1)

    def on_validation_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if not trainer.sanity_checking and trainer.state.fn == "fit":
            self._print(trainer, None)

    def progress_line(self, trainer: Trainer, batches_done: int | None) -> str:
        """``step 1,280/24,500 (5.2%) | 2 min 10 s, ETA 38 min | eval return 187`` (or epochs and batches)."""
        elapsed = time.monotonic() - self._start
        budget = step_budget(trainer)
        if budget is not None:
            done = trainer.global_step
            where = f"step {done:,}/{budget:,} ({100 * done / budget:.1f}%)"
            fraction_new = (done - self._first_step) / max(1, budget - self._first_step)
        else:
            total = trainer.num_training_batches
            batch = f", batch {batches_done:,}/{total:,}" if batches_done is not None and total else ""
            epochs = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
            where = f"epoch {trainer.current_epoch}{epochs}{batch}"
            fraction_new = ((trainer.current_epoch + (batches_done or 0) / max(1, total)) / trainer.max_epochs
                            if epochs and total else 0.0)
        eta = f", ETA {format_duration(elapsed * (1 - fraction_new) / fraction_new)}" if fraction_new > 0 else ""
        metrics = " | ".join(f"{k} {v}" for k, v in readable_metrics(trainer).items())
        return f"{where} | {format_duration(elapsed)}{eta}" + (f" | {metrics}" if metrics else "")

    def _print(self, trainer: Trainer, batches_done: int | None) -> None:
        self._last = time.monotonic()
        if self._enabled and trainer.is_global_zero:
            print(self.progress_line(trainer, batches_done), file=sys.stdout, flush=True)


def format_duration(seconds: float) -> str:
    """``42 s``, ``3 min 05 s``, ``2 h 10 min``."""
    seconds = max(0, int(round(seconds)))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def default_progress(every_s: float = 30.0) -> ProgressBar:
    """The bar in a terminal, plain lines otherwise."""
    return StepBudgetBar() if sys.stdout.isatty() else ProgressLines(every_s)
