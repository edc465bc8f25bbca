"""Image grids for autoencoders and VAEs, sent to whichever logger is active (and saved as PNGs)."""

from __future__ import annotations

import torch
from pytorch_lightning import Callback, LightningModule, Trainer

from rlgen.errors import RlgenError
from rlgen.media.images import image_grid, log_image


class AutoencoderImages(Callback):
    """Every ``every_n_epochs`` validation epochs (and once after testing) log, from the first eval batch:

    - ``<stage>/reconstructions``: rows of inputs, corrupted inputs (modules with a ``corrupt`` method that
      changes the input, i.e. the denoising AE) and reconstructions;
    - ``<stage>/prior_samples``: decoded samples from a FIXED ``z ~ N(0, I)`` drawn once with ``seed``, so
      grids of successive epochs show the same latent points (modules with a ``sample`` method, the VAE);
    - ``<stage>/interpolation``: decodings of ``(1 - t) z_a + t z_b`` for ``t`` in [0, 1], where ``z_a``,
      ``z_b`` are the codes (posterior means) of the first two images of different classes in the batch.

    The module must provide ``encode(x) -> z``, ``decode(z) -> images in [0, 1]`` and ``forward(x) -> x_hat``.
    """

    def __init__(
        self, every_n_epochs: int = 1, num_images: int = 8, num_samples: int = 64, interpolation_steps: int = 10,
        seed: int = 0,
    ) -> None:
        """
        Args:
            every_n_epochs: log after every N-th validation epoch.
            num_images: images per row of the reconstruction grid.
            num_samples: prior samples in the sample grid (8 per row).
            interpolation_steps: images along the latent interpolation (ends included).
            seed: seed of the fixed prior samples.
        """
        super().__init__()
        if every_n_epochs < 1 or num_images < 2 or num_samples < 1 or interpolation_steps < 2:
            raise RlgenError("AutoencoderImages needs every_n_epochs >= 1, num_images >= 2, num_samples >= 1 "
                             "and interpolation_steps >= 2")
        self.every_n_epochs = every_n_epochs
        self.num_images = num_images
        self.num_samples = num_samples
        self.interpolation_steps = interpolation_steps
        self.seed = seed
        self._batch: tuple[torch.Tensor, torch.Tensor] | None = None

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if batch_idx == 0 and dataloader_idx == 0:
            m = max(self.num_images, 64)
            self._batch = (batch[0][:m].detach(), batch[1][:m].detach())

    def on_test_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        self.on_validation_batch_end(trainer, pl_module, outputs, batch, batch_idx, dataloader_idx)

    def on_validation_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or trainer.current_epoch % self.every_n_epochs != 0:
            return
        self.log_images(trainer, pl_module, "val")

    def on_test_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self.log_images(trainer, pl_module, "test")

    @torch.no_grad()
    def log_images(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Log the three grids for the stored batch under ``<stage>/...``."""
        if self._batch is None:
            return
        x, y = self._batch
        was_training = pl_module.training
        pl_module.eval()
        x = x.to(pl_module.device)
        n = min(self.num_images, x.shape[0])
        inputs = x[:n]  # (n, 1, 28, 28)
        corrupted = pl_module.corrupt(inputs) if hasattr(pl_module, "corrupt") else inputs
        rows = [inputs] + ([corrupted] if corrupted is not inputs else []) + [pl_module(corrupted).clamp(0, 1)]
        log_image(trainer, f"{stage}/reconstructions", image_grid(torch.cat(rows), nrow=n))
        if hasattr(pl_module, "sample"):
            z = torch.randn(self.num_samples, pl_module.hparams.latent_dim,
                            generator=torch.Generator().manual_seed(self.seed))
            log_image(trainer, f"{stage}/prior_samples", image_grid(pl_module.sample(len(z), z).clamp(0, 1)))
        log_image(trainer, f"{stage}/interpolation", image_grid(self._interpolate(pl_module, x, y),
                                                               nrow=self.interpolation_steps))
        pl_module.train(was_training)

    def _interpolate(self, pl_module: LightningModule, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Decoded points on the segment between the codes of two images of different classes."""
        other = (y != y[0]).nonzero()
        j = int(other[0]) if len(other) else 1  # (unlabelled or single-class batch: the second image)
        z = pl_module.encode(x[[0, j]])  # (2, L)
        t = torch.linspace(0, 1, self.interpolation_steps, device=z.device).unsqueeze(1)  # (T, 1)
        return pl_module.decode((1 - t) * z[0] + t * z[1]).clamp(0, 1)  # (T, 1, 28, 28)
