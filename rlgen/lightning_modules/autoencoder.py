"""Deterministic autoencoders on 28x28 images: the plain (optionally sparse) AE and the denoising AE."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from torchvision.utils import save_image

from rlgen.errors import RlgenError, check_range
from rlgen.lightning_modules.base import RlgenModule
from rlgen.nets.autoencoders import build_encoder_decoder
from rlgen.paths import output_folder


class AutoEncoder(RlgenModule):
    """Autoencoder ``x -> z = f(x) -> x_hat = sigmoid(g(z))``, MLP or convolutional.

    Paper: Hinton & Salakhutdinov, "Reducing the Dimensionality of Data with Neural Networks" (Science 2006);
    the sparse variant follows Ng's "Sparse autoencoder" lecture notes (CS294A) with an L1 code penalty.

    Loss (per image, averaged over the batch)::

        L = rec(x_hat, x) + l1_weight * mean_j |z_j|
        rec = mean_pixels (x_hat - x)^2                                   (reconstruction="mse")
        rec = mean_pixels -[x log x_hat + (1 - x) log(1 - x_hat)]         (reconstruction="bce")

    ``latent_dim`` below 784 gives an undercomplete code; above 784 an overcomplete one, which learns the
    identity unless ``l1_weight > 0`` makes the code sparse. Inputs must lie in [0, 1] (``transform: plain``
    or ``binarize``), since the decoder ends in a sigmoid.

    Deviations from the paper:
        - no RBM pre-training: the network is trained end to end with Adam (as everyone does since 2010);
        - the sparsity penalty is L1 on the code, not the KL-to-target-activation penalty of the notes.
    """

    # Arguments chosen afresh for each run, never restored from a checkpoint (RlgenModule declares the contract).
    RUN_TIME_ARGS = ("predict_dir",)
    OUTPUT_ARGS = ("predict_dir",)

    def __init__(
        self,
        arch: Literal["mlp", "conv"] = "mlp",
        latent_dim: int = 32,
        hidden_dim: int = 512,
        reconstruction: Literal["mse", "bce"] = "bce",
        l1_weight: float = 0.0,
        lr: float = 1e-3,
        predict_dir: str | None = None,
    ) -> None:
        """
        Args:
            arch: encoder/decoder family: ``mlp`` (fully connected) or ``conv`` (strided conv / transposed conv).
            latent_dim: size of the code z (< 784 undercomplete, > 784 overcomplete).
            hidden_dim: width of the hidden fully connected layers.
            reconstruction: reconstruction loss, ``mse`` or ``bce`` (binary cross-entropy on the logits).
            l1_weight: weight of the L1 sparsity penalty ``mean |z|`` on the code (0 turns it off).
            lr: Adam learning rate.
            predict_dir: folder where ``rlgen predict`` writes one PNG grid per batch (None: ``<run dir>/predictions``).
        """
        super().__init__()
        check_range(">= 1", latent_dim=latent_dim, hidden_dim=hidden_dim)
        check_range("> 0", lr=lr)
        check_range(">= 0", l1_weight=l1_weight)
        # predict_dir stays out of the checkpoint: LightningCLI lets a checkpoint's hyperparameters override
        # the command line, and `rlgen predict --ckpt_path ... --model.predict_dir out/` must work.
        self.save_hyperparameters(ignore=list(self.RUN_TIME_ARGS))
        self.predict_dir = predict_dir
        self.encoder, self.decoder = build_encoder_decoder(arch, latent_dim, latent_dim, hidden_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The reconstruction ``(B, 1, 28, 28)`` in [0, 1] of a batch of images."""
        return self.decode(self.encode(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code ``(B, latent_dim)``."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Images ``(B, 1, 28, 28)`` in [0, 1] from codes."""
        return torch.sigmoid(self.decoder(z))

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """The encoder's input during training; the plain autoencoder sees the clean image."""
        return x

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, _ = batch  # (B, 1, 28, 28)
        if batch_idx == 0:
            check_unit_range(x)
        loss, rec, l1 = self._loss(self.corrupt(x), x)
        self.log("train/loss", loss, prog_bar=True)
        self.log_dict({"train/recon": rec, "train/l1": l1})
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """Reconstruct a batch, and write rows input / corrupted input / output as a PNG into ``predict_dir``."""
        x, _ = batch
        x_in = self.corrupt(x)
        x_hat = self(x_in)
        rows = [x, x_in, x_hat] if x_in is not x else [x, x_hat]
        write_predict_grid(output_folder(self.trainer, self.predict_dir, "predictions"),
                           f"reconstructions_{batch_idx:04d}.png", rows)
        return x_hat

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    def _loss(self, x_in: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(total loss, reconstruction term, L1 term) for reconstructing ``target`` from ``x_in``."""
        z = self.encoder(x_in)  # (B, latent_dim)
        logits = self.decoder(z)  # (B, 1, 28, 28)
        if self.hparams.reconstruction == "bce":
            rec = F.binary_cross_entropy_with_logits(logits, target)
        else:
            rec = F.mse_loss(torch.sigmoid(logits), target)
        l1 = z.abs().mean()
        return rec + self.hparams.l1_weight * l1, rec, l1

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        x, _ = batch
        loss, _, _ = self._loss(self.corrupt(x), x)
        metrics = {f"{stage}/loss": loss, **self._recon_metrics(x, stage)}
        self.log_dict(metrics, prog_bar=stage == "val", sync_dist=True)

    def _recon_metrics(self, x: torch.Tensor, stage: str) -> dict[str, torch.Tensor]:
        """Mean squared error per pixel between the input and its reconstruction."""
        return {f"{stage}/recon_mse": F.mse_loss(self(x), x)}


class DenoisingAutoEncoder(AutoEncoder):
    """Denoising autoencoder: reconstruct the clean ``x`` from a corrupted ``x_tilde ~ q(x_tilde | x)``.

    Paper: Vincent, Larochelle, Bengio & Manzagol, "Extracting and Composing Robust Features with Denoising
    Autoencoders" (ICML 2008).

    Loss: ``L = rec(sigmoid(g(f(x_tilde))), x) + l1_weight * mean |f(x_tilde)|`` with ``rec`` as in
    :class:`AutoEncoder`. Corruptions:

        - ``mask`` (masking noise): exactly ``round(noise_level * 784)`` pixels of each image, chosen
          uniformly at random without replacement, are set to 0 (so 25% masking hides 196 pixels per image);
        - ``gaussian``: ``x_tilde = clamp(x + noise_level * eps, 0, 1)`` with ``eps ~ N(0, I)``.

    Validation and test report ``recon_mse_clean`` (clean input) and ``recon_mse_corrupted`` (corrupted input,
    clean target), both per-pixel means; corruption is freshly drawn on every pass.

    Deviations from the paper: exact-count masking (the paper zeroes a fixed fraction ``nu`` too, chosen at
    random, so this matches) and Adam instead of plain SGD; no layer-wise stacking.
    """

    def __init__(
        self,
        corruption: Literal["mask", "gaussian"] = "mask",
        noise_level: float = 0.25,
        **kwargs,
    ) -> None:
        """
        Args:
            corruption: ``mask`` (zero a fixed fraction of the pixels) or ``gaussian`` (additive noise).
            noise_level: masked fraction in [0, 1] for ``mask``; noise standard deviation (>= 0) for ``gaussian``.
            kwargs: the :class:`AutoEncoder` arguments (arch, latent_dim, hidden_dim, reconstruction, ...).
        """
        # the masked fraction, or the standard deviation of the Gaussian noise
        check_range("in [0, 1]" if corruption == "mask" else ">= 0", noise_level=noise_level)
        super().__init__(**kwargs)

    def corrupt(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` with masking or Gaussian noise (a fresh draw on each call)."""
        if self.hparams.corruption == "gaussian":
            return (x + self.hparams.noise_level * torch.randn_like(x)).clamp(0.0, 1.0)
        return mask_pixels(x, self.hparams.noise_level)

    def _recon_metrics(self, x: torch.Tensor, stage: str) -> dict[str, torch.Tensor]:
        return {
            f"{stage}/recon_mse_clean": F.mse_loss(self(x), x),
            f"{stage}/recon_mse_corrupted": F.mse_loss(self(self.corrupt(x)), x),
        }


def mask_pixels(x: torch.Tensor, fraction: float) -> torch.Tensor:
    """Set exactly ``round(fraction * D)`` uniformly chosen entries of each sample to 0 (``D`` entries per sample)."""
    flat = x.flatten(1)  # (B, D)
    n_masked = round(fraction * flat.shape[1])
    if n_masked == 0:
        return x
    idx = torch.rand_like(flat).topk(n_masked, dim=1).indices  # (B, n_masked), distinct per row
    keep = torch.ones_like(flat).scatter_(1, idx, 0.0)
    return (flat * keep).view_as(x)


def check_unit_range(x: torch.Tensor) -> None:
    """The sigmoid/Bernoulli outputs need targets in [0, 1]; say which transform to use otherwise."""
    if x.min() < 0 or x.max() > 1:
        raise RlgenError(
            f"inputs must lie in [0, 1] but range over [{x.min():.2f}, {x.max():.2f}]; "
            "use --data.transform plain (or binarize), not normalize"
        )


def write_predict_grid(out: Path, name: str, rows: list[torch.Tensor], max_cols: int = 16) -> None:
    """Write ``rows`` (each ``(B, 1, H, W)`` in [0, 1], first ``max_cols`` images) as one PNG grid ``out/name``."""
    cols = min(max_cols, rows[0].shape[0])
    images = torch.cat([r[:cols].detach().float().cpu() for r in rows])  # (len(rows) * cols, 1, H, W)
    save_image(images, out / name, nrow=cols, pad_value=1.0)
