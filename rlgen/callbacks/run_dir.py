"""One directory per run, for every logger: where checkpoints and the resolved config.yaml go."""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.cli import SaveConfigCallback
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


class RunConfigCallback(SaveConfigCallback):
    """Writes the fully resolved config into the run's own directory, never over an existing file.

    A resumed run that reuses its directory (a W&B run continued after a SLURM requeue) gets
    ``config-2.yaml``, ``config-3.yaml``, ... instead of an error or an overwrite.
    """

    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if self.already_saved:
            return
        if trainer.is_global_zero:
            path = run_directory(trainer) / self.config_filename
            n = 1
            while path.exists():
                n += 1
                path = path.with_name(f"{Path(self.config_filename).stem}-{n}{Path(self.config_filename).suffix}")
            path.parent.mkdir(parents=True, exist_ok=True)
            self.parser.save(self.config, str(path), skip_none=False, overwrite=False, multifile=self.multifile)
        self.already_saved = True
