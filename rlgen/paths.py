"""Where a run's files go: one directory per run, for every logger (checkpoints, config.yaml, images)."""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning import Trainer
from pytorch_lightning.loggers import CSVLogger, TensorBoardLogger, WandbLogger


def run_directory(trainer: Trainer) -> Path:
    """``<save_dir>/<name>/<version>``: the folder whose ``checkpoints/`` ModelCheckpoint fills.

    TensorBoard gives ``runs/<name>/version_N``; W&B gives ``<save_dir>/<project>/<run id>``. (With W&B,
    ``trainer.log_dir`` is the shared save_dir, which is why config.yaml would collide there.)
    """
    if not trainer.loggers:
        return Path(trainer.default_root_dir)
    logger = trainer.loggers[0]
    if isinstance(logger, (TensorBoardLogger, CSVLogger)):
        return Path(logger.log_dir)
    if isinstance(logger, WandbLogger):
        _ = logger.experiment  # starts the run (rank zero only), so that its id is known
    version = logger.version if isinstance(logger.version, str) else f"version_{logger.version}"
    return Path(logger.save_dir or trainer.default_root_dir) / str(logger.name) / version


def output_folder(trainer: Trainer, chosen: str | None, default: str) -> Path:
    """Where a run writes its files: the folder the user ``chosen``, else ``<run directory>/<default>``, created."""
    folder = Path(chosen) if chosen is not None else run_directory(trainer) / default
    folder.mkdir(parents=True, exist_ok=True)
    return folder
