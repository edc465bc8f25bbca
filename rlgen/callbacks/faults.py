"""Fault handling for long runs: stop on a non-finite loss, checkpoint on Ctrl-C and SIGTERM."""

from __future__ import annotations

import math
import os
import signal
import traceback
from pathlib import Path

import torch
from pytorch_lightning import Callback, LightningModule, Trainer
from pytorch_lightning.utilities.exceptions import SIGTERMException
from pytorch_lightning.utilities.rank_zero import rank_zero_info

from rlgen.errors import RlgenError


class NonFiniteLossError(RlgenError):
    """A loss became NaN or infinite."""


class FaultGuard(Callback):
    """Stops training with a clear message when a loss turns NaN/inf; saves ``last.ckpt`` on Ctrl-C or SIGTERM,
    and at the end of fit (when no checkpoint callback saved that step).

    On a non-finite loss nothing is saved, so the last good checkpoint stays the newest one. A Ctrl-C
    or a SIGTERM (kill, a scheduler) writes ``last.ckpt`` into the checkpoint directory first, so
    ``rlgen fit ... --ckpt_path last`` resumes where the run stopped. That includes a SIGTERM to the whole
    process group (``scancel``, ``kill -TERM -<pgid>``), which ends the DataLoader workers first.
    """

    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs, batch, batch_idx: int) -> None:
        if isinstance(outputs, dict):
            outputs = outputs.get("loss")
        if isinstance(outputs, torch.Tensor) and math.isfinite(float(outputs.detach().float().mean())):
            return  # the optimized loss is finite, so are its terms: skip the logged metrics (read every step)
        # Logged losses first, so the message names e.g. `train/d_loss`; then the returned loss. Manual
        # optimization (GANs, SAC) returns none: their logged losses are all there is to check.
        losses = {k: v for k, v in trainer.callback_metrics.items() if k.startswith("train/") and "loss" in k}
        if isinstance(outputs, torch.Tensor):
            losses["loss"] = outputs
        for key, value in losses.items():
            value = float(value.detach().float().mean())
            if not math.isfinite(value):
                last = self._last_path(trainer)
                saved = last is not None and last.is_file()
                kept = f"the last good checkpoint is {last}" if saved else "no checkpoint was saved yet"
                raise NonFiniteLossError(
                    f"{key} became {value} at step {trainer.global_step} (epoch {trainer.current_epoch}); "
                    f"{kept}; lower the learning rate or enable gradient clipping, then resume with --ckpt_path"
                )

    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        # A run that ends between periodic checkpoints (max_steps or max_time reached, stopped when solved)
        # still leaves its final state in last.ckpt: `--ckpt_path last` then tests or resumes what it trained.
        # on_fit_end comes after every callback's on_train_end, where a ModelCheckpoint that never saved
        # writes last.ckpt itself: writing it before would make that one write last-v1.ckpt beside it.
        path = self._last_path(trainer)
        if path is None or trainer.fast_dev_run or trainer.sanity_checking:
            return
        if path.is_file() and _saved_step(path) == trainer.global_step:
            return  # a checkpoint callback saved this very state (e.g. at the end of the last epoch)
        trainer.save_checkpoint(path, weights_only=False)  # the full state (resumable), said explicitly

    def on_exception(self, trainer: Trainer, pl_module: LightningModule, exception: BaseException) -> None:
        interrupted = isinstance(exception, (KeyboardInterrupt, SIGTERMException)) or _worker_died(exception)
        if not interrupted or trainer.fast_dev_run or trainer.sanity_checking:
            return
        path = self._last_path(trainer)
        if path is None or trainer.state.fn != "fit":
            return
        # torch's SIGCHLD handler raises again for every DataLoader worker that a group SIGTERM ended: not now
        previous = signal.signal(signal.SIGCHLD, signal.SIG_DFL) if hasattr(signal, "SIGCHLD") else None
        try:
            trainer.save_checkpoint(path, weights_only=False)  # the full state (resumable), said explicitly
        finally:
            if previous is not None:
                signal.signal(signal.SIGCHLD, previous)
        rank_zero_info(f"Interrupted ({type(exception).__name__}): saved {path}; resume with --ckpt_path last")

    @staticmethod
    def _last_path(trainer: Trainer) -> Path | None:
        callback = trainer.checkpoint_callback
        if callback is None or callback.dirpath is None:
            return None
        return Path(callback.dirpath) / f"{callback.CHECKPOINT_NAME_LAST}{callback.FILE_EXTENSION}"


def _worker_died(exception: BaseException) -> bool:
    """A child process (a DataLoader worker, an env worker) died. A SIGTERM to the whole process group ends
    the workers too, and the main process may see a dead worker before Lightning's SIGTERM handler runs: as
    one of torch's two errors, "killed by signal: Terminated" or "exited unexpectedly" (the worker's own exit
    won the race), or as the pipe to the worker closing mid-transfer (EOFError, BrokenPipeError or
    ConnectionResetError raised inside ``multiprocessing``). The model in the main process is intact either
    way, so its state is worth saving."""
    message = str(exception)
    if isinstance(exception, RuntimeError) and "DataLoader worker" in message:
        return "killed by signal" in message or "exited unexpectedly" in message
    if isinstance(exception, (EOFError, BrokenPipeError, ConnectionResetError)):
        return any(f"{os.sep}multiprocessing{os.sep}" in frame.f_code.co_filename
                   for frame, _ in traceback.walk_tb(exception.__traceback__))
    return False


def _saved_step(path: Path) -> int | None:
    """The ``global_step`` stored in a checkpoint (memory-mapped, so the weights are not read)."""
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True).get("global_step")
    except Exception:  # unreadable, or not plain data (nothing in it runs): write a fresh one
        return None
