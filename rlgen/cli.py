"""rlgen's command line: ``rlgen fit|validate|test|predict -c configs/<algo>/<data>.yaml``.

Any LightningModule or LightningDataModule of the package is accepted by its short class name
(``class_path: VAE``); ``data`` is optional, since RL modules collect their own experience.
Several ``-c`` files compose: an algorithm config first, then overlays such as
``configs/trainer/ddp.yaml`` or ``configs/logger/wandb.yaml``.
"""

from __future__ import annotations

import os
import sys

from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import ModelCheckpoint, ProgressBar, RichProgressBar
from pytorch_lightning.cli import LightningCLI

from rlgen._registry import import_submodules
from rlgen.errors import RlgenError

# Importing every module registers its classes, so configs may say `class_path: VAE`.
import_submodules("rlgen.lightning_modules")
import_submodules("rlgen.datamodules")


class RlgenCLI(LightningCLI):
    """LightningCLI with rlgen's defaults.

    Unless the config says otherwise, every run gets a Rich progress bar and a ``last.ckpt``
    checkpoint (configs add a ``ModelCheckpoint`` that also keeps the best model), and the default
    TensorBoard logger gives each run its own ``version_N`` directory, so two runs never collide.
    """

    def instantiate_trainer(self, **kwargs) -> Trainer:
        trainer_cfg = self._get(self.config_init, "trainer", default={})
        callbacks = list(trainer_cfg.get("callbacks") or [])
        defaults = []
        if trainer_cfg.get("enable_progress_bar") is not False and not any(
            isinstance(c, ProgressBar) for c in callbacks
        ):
            defaults.append(RichProgressBar())
        if trainer_cfg.get("enable_checkpointing") is not False and not any(
            isinstance(c, ModelCheckpoint) for c in callbacks
        ):
            defaults.append(ModelCheckpoint(save_last=True))
        if defaults:
            kwargs["callbacks"] = callbacks + defaults
        return super().instantiate_trainer(**kwargs)


def cli_main(args: list[str] | None = None) -> RlgenCLI | None:
    """Entry point of the ``rlgen`` console script and ``python -m rlgen``.

    Args:
        args: command-line arguments; ``None`` reads ``sys.argv``.
    """
    try:
        return RlgenCLI(
            args=args,
            seed_everything_default=0,
            trainer_defaults={"default_root_dir": "runs"},
        )
    except RlgenError as err:
        if os.environ.get("RLGEN_DEBUG"):
            raise
        print(f"rlgen: error: {err}", file=sys.stderr)
        raise SystemExit(1) from None
