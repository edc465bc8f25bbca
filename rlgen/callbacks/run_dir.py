"""The resolved config.yaml of each run, in the run's own directory (:func:`rlgen.paths.run_directory`)."""

from __future__ import annotations

from pathlib import Path

from pytorch_lightning import LightningModule, Trainer
from pytorch_lightning.cli import SaveConfigCallback

from rlgen.paths import run_directory


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
            # validated when parsed, not again (see rlgen.compat.FastConfigDump for what the check costs)
            self.parser.save(self.config, str(path), skip_unset=False, skip_validation=True, overwrite=False,
                             multifile=self.multifile)
        self.already_saved = True
