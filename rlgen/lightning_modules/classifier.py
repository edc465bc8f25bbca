"""An MNIST digit classifier: the yardstick behind rlgen's FID, Inception Score and prompt accuracy."""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
import torch.nn.functional as F
from torchmetrics.classification import MulticlassAccuracy

from rlgen.checkpoints import refuse_code
from rlgen.datamodules.mnist import MNIST_MEAN, MNIST_STD
from rlgen.errors import RlgenError, check_range
from rlgen.lightning_modules.base import RlgenModule
from rlgen.nets.classifier import SmallCNN


class Classifier(RlgenModule):
    """A small CNN trained with cross-entropy; its checkpoint is the feature extractor of the GAN metrics.

    Loss: ``L = -1/B sum_i log softmax(f(x_i))[y_i]`` with AdamW and a one-cycle learning rate.

    Inputs are images in [0, 1] (the MNIST DataModule's ``transform: plain``, or generator outputs
    mapped to [0, 1]); the module standardizes them itself with ``mean`` / ``std``, so every caller
    feeds the same range. ``features(x)`` is the penultimate layer (used for FID), ``forward(x)`` the
    logits (used for the Inception Score and for classifying generated digits).

    Deviations from common practice: no data augmentation (not needed for 99% on MNIST); the network is
    built from ``width`` instead of being injected, so that ``load_classifier(ckpt)`` needs nothing but
    the checkpoint file.
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 10,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        width: int = 32,
        dropout: float = 0.2,
        mean: float = MNIST_MEAN,
        std: float = MNIST_STD,
    ) -> None:
        """
        Args:
            in_channels: image channels (1 for MNIST).
            num_classes: number of classes.
            lr: peak learning rate of the one-cycle schedule (AdamW).
            weight_decay: AdamW weight decay.
            width: channels of the first conv block (the feature vector has 4 * width dims).
            dropout: dropout before the linear head.
            mean: pixel mean used to standardize [0, 1] inputs.
            std: pixel standard deviation used to standardize [0, 1] inputs.
        """
        super().__init__()
        check_range(">= 1", in_channels=in_channels, width=width)
        check_range(">= 2", num_classes=num_classes)
        check_range("> 0", lr=lr, std=std)
        check_range(">= 0", weight_decay=weight_decay)
        check_range("in [0, 1)", dropout=dropout)
        self.save_hyperparameters(ignore=list(self.RUN_TIME_ARGS))
        self.net = SmallCNN(in_channels, num_classes, width, dropout)
        self.num_features = self.net.num_features
        self.num_classes = num_classes
        self.val_acc = MulticlassAccuracy(num_classes, average="micro")
        self.test_acc = MulticlassAccuracy(num_classes, average="micro")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits ``(B, num_classes)`` of images ``(B, C, H, W)`` in [0, 1]."""
        return self.net(self._standardize(x))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features ``(B, 4 * width)`` of images ``(B, C, H, W)`` in [0, 1]."""
        return self.net.features(self._standardize(x))

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, y = batch
        logits = self(x)
        loss = F.cross_entropy(logits, y)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", (logits.argmax(1) == y).float().mean())
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._shared_eval(batch, "val", self.val_acc)

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._shared_eval(batch, "test", self.test_acc)

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        return self(batch[0]).argmax(1)  # (B,) predicted labels

    def configure_optimizers(self):
        opt = torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=self.hparams.weight_decay)
        sched = torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=self.hparams.lr, total_steps=max(1, int(self.trainer.estimated_stepping_batches))
        )
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}

    def _shared_eval(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str, acc: MulticlassAccuracy) -> None:
        x, y = batch
        logits = self(x)
        self.log(f"{stage}/loss", F.cross_entropy(logits, y), sync_dist=True)
        acc(logits, y)
        self.log(f"{stage}/acc", acc, prog_bar=True)  # a torchmetrics Metric: it syncs itself

    def _standardize(self, x: torch.Tensor) -> torch.Tensor:
        assert x.dim() == 4 and x.shape[1] == self.hparams.in_channels, (
            f"Classifier expects images (B, {self.hparams.in_channels}, H, W) in [0, 1], got {tuple(x.shape)}"
        )
        return (x - self.hparams.mean) / self.hparams.std


def load_classifier(ckpt_path: str | Path, map_location: str | torch.device = "cpu") -> Classifier:
    """The :class:`Classifier` stored in ``ckpt_path``, in eval mode with gradients switched off."""
    path = Path(ckpt_path)
    if not path.is_file():
        raise RlgenError(
            f"classifier checkpoint {path} not found; train one with `python -m bench.classifier` "
            "(or `rlgen fit -c configs/classifier/mnist.yaml`), or set --model.classifier_ckpt null to skip FID / IS"
        )
    try:  # plain data only: a shared classifier file must not run code when loaded
        model = Classifier.load_from_checkpoint(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        raise refuse_code(path, "train your own with `python -m bench.classifier`, or set --model.classifier_ckpt "
                                "null to skip FID / IS") from err
    except (KeyError, RuntimeError, TypeError) as err:
        raise RlgenError(f"{path} is not a Classifier checkpoint ({type(err).__name__}: {err})") from err
    model.eval()
    model.requires_grad_(False)
    return model
