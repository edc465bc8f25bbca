"""Send an image to whichever loggers are active (TensorBoard, W&B) and keep a PNG copy on disk."""

from __future__ import annotations

import torch
from pytorch_lightning import Trainer
from pytorch_lightning.loggers import TensorBoardLogger, WandbLogger
from torchvision.utils import make_grid, save_image

from rlgen.compat import batches_that_stepped
from rlgen.paths import run_directory


def image_grid(images: torch.Tensor, nrow: int = 8, value_range: tuple[float, float] | None = None) -> torch.Tensor:
    """A ``(C, H', W')`` grid in [0, 1] from a batch ``(B, C, H, W)``; ``value_range`` is rescaled to [0, 1]."""
    return make_grid(images.detach().float().cpu(), nrow=nrow, normalize=value_range is not None,
                     value_range=value_range, pad_value=1.0).clamp(0, 1)


def logged_step(trainer: Trainer) -> int:
    """The x-axis step that Lightning gives logged scalars: training batches so far.

    Not ``global_step``, which counts optimizer steps (2 per GAN batch; a DQN batch is a whole collection
    phase), so that images and videos line up with the scalars.
    """
    return batches_that_stepped(trainer)


def log_image(trainer: Trainer, key: str, grid: torch.Tensor) -> None:
    """Log ``grid`` (``(C, H, W)`` in [0, 1]) under ``key`` at the scalars' current step (:func:`logged_step`).

    TensorBoard gets ``add_image``, W&B gets ``log_image``; in every case the PNG is also written to
    ``<run dir>/images/<key>/step_<N>.png`` so that nothing depends on a logger being configured.
    """
    step = logged_step(trainer)
    if trainer.is_global_zero:
        out = run_directory(trainer) / "images" / key.replace("/", "_")
        out.mkdir(parents=True, exist_ok=True)
        save_image(grid, out / f"step_{step:08d}.png")
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):
            logger.experiment.add_image(key, grid, global_step=step)
        elif isinstance(logger, WandbLogger):
            logger.log_image(key=key, images=[grid], step=step)
