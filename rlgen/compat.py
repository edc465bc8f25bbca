"""The only internals of other libraries that rlgen uses, each where no public way exists (one line says why).

``tests/test_compat.py`` checks each of them against the installed versions, so an upgrade that renames
or removes one fails there, by name, instead of somewhere inside a run. Nothing else in rlgen may use a
private attribute of Lightning, TensorBoard, W&B, jsonargparse or torch.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import torch
import yaml
from pytorch_lightning import Trainer
from pytorch_lightning.cli import LightningCLI


def batches_that_stepped(trainer: Trainer) -> int:
    """The step Lightning stamps on logged scalars: training batches so far (``global_step`` counts optimizer
    steps instead). Why private: Lightning exposes no accessor; its own LearningRateMonitor reads this too."""
    return trainer.fit_loop.epoch_loop._batches_that_stepped


def early_train_dataloader(trainer: Trainer) -> Any:
    """``trainer.train_dataloader`` already in ``on_fit_start``, before the sanity check. Why private: fit builds
    it only after the sanity check; ``fit_loop.setup_data()`` is the call fit makes then (it runs once)."""
    trainer.fit_loop.setup_data()
    return trainer.train_dataloader


def add_tensorboard_summary(writer: Any, summary: Any, step: int) -> None:
    """Write a ready ``Summary`` proto (an animated GIF) with a ``SummaryWriter``. Why private: the public
    ``add_video`` still imports ``moviepy.editor``, which moviepy 2 removed; the writer has no public proto method."""
    writer._get_file_writer().add_summary(summary, step)


class FastConfigDump(LightningCLI):
    """LightningCLI's dump of the parsed config (what the model's saved hyperparameters come from), without
    jsonargparse validating the whole config a second time: it was validated when it was parsed, and the
    second check was about 30% of a short in-process ``rlgen fit`` (cProfile, ``configs/dqn/cartpole.yaml``).

    Why private: LightningCLI builds the model's hyperparameters (``_class_path`` and its init args) from
    ``config_dump``, made in ``_dump_config`` with a validating ``parser.dump``, and has no argument for it.
    """

    def _dump_config(self) -> None:
        if hasattr(self, "config_dump"):  # as LightningCLI's: once per run
            return
        dumped = self.parser.dump(self.config, skip_link_targets=False, skip_unset=False, skip_validation=True,
                                  format="yaml")
        self.config_dump = yaml.safe_load(dumped)
        if "subcommand" in self.config:
            self.config_dump = self.config_dump[self.config.subcommand]


class CheckpointHparamsHook(FastConfigDump):
    """Gives LightningCLI's loading of a checkpoint's hyperparameters (``--ckpt_path``) a hook afterwards.

    Why private: LightningCLI writes the saved hyperparameters over the parsed model arguments in
    ``_parse_ckpt_path`` and offers no public hook around it; rlgen needs one so that arguments named on
    the command line win over the saved ones. The same override lets it take the hyperparameters of a checkpoint
    the user trusts (``--trust_checkpoint``), which LightningCLI's read (always ``weights_only=True``) refuses when
    anything in the file is a Python object: :meth:`trusted_checkpoint_hparams` gives them, and LightningCLI reads
    them from a plain copy.
    """

    def _parse_ckpt_path(self) -> None:
        subcommand = self.config.get("subcommand")
        before = self.config[subcommand].get("model") if subcommand else None
        before = before.clone() if hasattr(before, "clone") else None
        hparams = self.trusted_checkpoint_hparams() if subcommand else None
        if hparams is None:
            super()._parse_ckpt_path()
        else:
            cfg, ckpt_path = self.config[subcommand], self.config[subcommand].get("ckpt_path")
            with tempfile.TemporaryDirectory() as folder:
                cfg.ckpt_path = str(Path(folder) / "hparams.ckpt")
                torch.save({"hyper_parameters": hparams}, cfg.ckpt_path)
                try:
                    super()._parse_ckpt_path()
                finally:
                    cfg.ckpt_path = ckpt_path
        if before is not None:
            self.after_checkpoint_hparams(before, self.config[subcommand].get("model"))

    def trusted_checkpoint_hparams(self) -> dict | None:
        """The hyperparameters of a ``--ckpt_path`` the user trusts, read already (as plain data), or None:
        LightningCLI reads the file itself."""
        return None

    def after_checkpoint_hparams(self, before: Any, after: Any) -> None:
        """Called with the model arguments as parsed (``before``) and with the checkpoint's saved
        hyperparameters written over them (``after``, edit it in place)."""
