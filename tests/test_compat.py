"""Each internal that ``rlgen/compat.py`` uses still exists and still means what rlgen relies on.

An upgrade of Lightning or TensorBoard that renames or changes one fails here, by name."""

from __future__ import annotations

import numpy as np
import torch
from pytorch_lightning import Trainer
from pytorch_lightning.callbacks import Callback
from pytorch_lightning.cli import LightningCLI
from pytorch_lightning.demos.boring_classes import BoringModel
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch.utils.tensorboard import SummaryWriter

from rlgen.compat import (
    CheckpointHparamsHook,
    FastConfigDump,
    add_tensorboard_summary,
    batches_that_stepped,
    early_train_dataloader,
)
from rlgen.media.video import gif_bytes


class TwoOptimizerSteps(BoringModel):
    """Manual optimization with two optimizer steps per batch: global_step grows twice as fast as batches."""

    def __init__(self) -> None:
        super().__init__()
        self.automatic_optimization = False

    def training_step(self, batch, batch_idx):
        for opt in self.optimizers():
            opt.zero_grad()
            self.manual_backward(self.step(batch))
            opt.step()

    def configure_optimizers(self):
        return [torch.optim.SGD(self.layer.parameters(), lr=0.1), torch.optim.SGD(self.layer.parameters(), lr=0.1)]


class Record(Callback):
    def __init__(self) -> None:
        self.seen: list[tuple[int, int]] = []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen.append((batches_that_stepped(trainer), trainer.global_step))


def test_batches_that_stepped_counts_training_batches_not_optimizer_steps(tmp_path):
    record = Record()
    Trainer(max_steps=6, limit_val_batches=0, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            callbacks=[record], default_root_dir=tmp_path).fit(TwoOptimizerSteps())
    # Lightning advances the logging step after on_train_batch_end: batches before this one, optimizer steps so far.
    assert record.seen == [(0, 2), (1, 4), (2, 6)]


def test_early_train_dataloader_is_the_loader_fit_then_trains_on(tmp_path):
    class Peek(Callback):
        def on_fit_start(self, trainer, pl_module):
            self.early = early_train_dataloader(trainer)

        def on_train_start(self, trainer, pl_module):
            self.later = trainer.train_dataloader

    peek, model = Peek(), BoringModel()
    Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
            callbacks=[peek], default_root_dir=tmp_path).fit(model)
    assert peek.early is not None and peek.early is peek.later, "fit must reuse the loader built early"
    assert len(peek.early.dataset) == len(model.train_dataloader().dataset)


def test_add_tensorboard_summary_writes_an_animated_image_that_tensorboard_reads(tmp_path):
    from tensorboard.compat.proto.summary_pb2 import Summary

    frames = [np.full((8, 6, 3), v, dtype=np.uint8) for v in (0, 128, 255)]
    image = Summary.Image(height=8, width=6, colorspace=3, encoded_image_string=gif_bytes(frames))
    writer = SummaryWriter(tmp_path)
    add_tensorboard_summary(writer, Summary(value=[Summary.Value(tag="val/video", image=image)]), 7)
    writer.close()
    events = EventAccumulator(str(tmp_path))
    events.Reload()
    (event,) = events.Images("val/video")
    assert (event.step, event.width, event.height) == (7, 6, 8)
    assert event.encoded_image_string[:6] == b"GIF89a"


class Wide(BoringModel):
    def __init__(self, width: int = 3) -> None:
        super().__init__()
        self.save_hyperparameters()


def test_lightning_cli_builds_the_model_hyperparameters_from_the_overridden_config_dump(tmp_path):
    """LightningCLI must still call _dump_config when it builds the model, and the model's saved hyperparameters
    (the class path for --ckpt_path, the arguments) must come out of rlgen's dump as they did out of LightningCLI's."""
    assert callable(getattr(LightningCLI, "_dump_config", None)), "LightningCLI._dump_config is gone"
    calls = []

    class CLI(FastConfigDump):
        def _dump_config(self):
            calls.append(hasattr(self, "config_dump"))
            super()._dump_config()

    args = ["--model=tests.test_compat.Wide", "--model.width=5", "--trainer.logger=false",
            "--trainer.enable_progress_bar=false", f"--trainer.default_root_dir={tmp_path}"]
    ours = CLI(args=args, run=False, save_config_callback=None)
    lightnings = LightningCLI(args=args, run=False, save_config_callback=None)
    assert calls == [False], "LightningCLI no longer calls _dump_config when it builds the model"
    assert ours.model.hparams["_class_path"] == "tests.test_compat.Wide" and ours.model.hparams["width"] == 5
    assert dict(ours.model.hparams) == dict(lightnings.model.hparams)
    assert ours.config_dump == lightnings.config_dump


def test_lightning_cli_still_loads_checkpoint_hyperparameters_in_the_hooked_method(tmp_path):
    """The hook wraps LightningCLI._parse_ckpt_path: it must exist and be what writes the saved hparams."""
    assert callable(getattr(LightningCLI, "_parse_ckpt_path", None)), "LightningCLI._parse_ckpt_path is gone"

    seen = []

    class CLI(CheckpointHparamsHook):
        def after_checkpoint_hparams(self, before, after):
            seen.append((before.width, after.width))

    ckpt = tmp_path / "wide.ckpt"
    trainer = Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                      limit_val_batches=0, default_root_dir=tmp_path)
    trainer.fit(Wide(width=4))
    trainer.save_checkpoint(ckpt)
    CLI(Wide, args=["test", "--ckpt_path", str(ckpt), "--trainer.logger=false", "--trainer.enable_progress_bar=false",
                    f"--trainer.default_root_dir={tmp_path}"], save_config_callback=None)
    assert seen == [(3, 4)], "the hook sees the parsed width (3) and the checkpoint's (4)"
