"""The contract between an rlgen model and the command line, declared once.

Every rlgen LightningModule inherits :class:`RlgenModule` (directly, or through :class:`RLSystem` and
:class:`GANSystem`) and overrides what differs from the defaults below. The CLI (:mod:`rlgen.cli`) reads these
declarations through :func:`declared` only, and its two helpers, so a plain ``LightningModule`` (a user's own,
Lightning's ``BoringModel``) runs under ``rlgen`` with the defaults.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pytorch_lightning import LightningModule


class RlgenModule(LightningModule):
    """A LightningModule with the declarations ``rlgen`` reads (every attribute has a working default).

    Class attributes:
        RUN_TIME_ARGS: ``__init__`` arguments chosen afresh by each run and never restored from a checkpoint
            (output folders, evaluation lengths, video recording): the model calls
            ``self.save_hyperparameters(ignore=list(self.RUN_TIME_ARGS))``, so that
            ``rlgen test --ckpt_path X --model.video_dir videos/`` records.
        OUTPUT_ARGS: the arguments naming folders the model writes into (videos, prediction grids); the closing
            summary lists the files written there.
        ddp_strategy: the Lightning strategy ``rlgen`` uses for ``strategy: ddp`` (e.g.
            ``ddp_find_unused_parameters_true`` for models whose networks take turns); None keeps ``ddp``.
    """

    RUN_TIME_ARGS: ClassVar[tuple[str, ...]] = ()
    OUTPUT_ARGS: ClassVar[tuple[str, ...]] = ()
    ddp_strategy: ClassVar[str | None] = None

    @classmethod
    def unlogged_metrics(cls, init_args: dict[str, Any]) -> tuple[str, ...]:
        """Metrics the model does not log with these ``__init__`` arguments (e.g. ``val/fid`` without a
        classifier): a ModelCheckpoint monitoring one of them keeps the latest checkpoints instead."""
        return ()

    @property
    def default_threads(self) -> int | None:
        """Torch intra-op threads that fit the model (``--threads N`` and ``OMP_NUM_THREADS`` override it);
        None: all cores."""
        return None

    def output_folders(self) -> list[Path]:
        """The folders named by the :attr:`OUTPUT_ARGS` that this run sets."""
        return [Path(folder) for name in self.OUTPUT_ARGS if isinstance(folder := getattr(self, name, None), str)]


def declared(cls: type) -> type[RlgenModule]:
    """What the model class ``cls`` declares to the CLI: the class itself if it is an :class:`RlgenModule`, else
    the defaults (:class:`RlgenModule`)."""
    return cls if isinstance(cls, type) and issubclass(cls, RlgenModule) else RlgenModule


def default_threads(model: LightningModule) -> int | None:
    """The model's :attr:`RlgenModule.default_threads` (None for a plain LightningModule)."""
    return model.default_threads if isinstance(model, RlgenModule) else None


def output_folders(model: LightningModule) -> list[Path]:
    """The model's :meth:`RlgenModule.output_folders` (none for a plain LightningModule)."""
    return model.output_folders() if isinstance(model, RlgenModule) else []
