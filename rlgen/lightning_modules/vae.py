"""The variational autoencoder, with the negative ELBO and the importance-weighted (IWAE) NLL bound in nats."""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import nn

from rlgen.errors import check_range
from rlgen.lightning_modules.autoencoder import write_predict_grid
from rlgen.lightning_modules.base import RlgenModule
from rlgen.nets.autoencoders import build_encoder_decoder
from rlgen.paths import output_folder

LOG_2PI = math.log(2 * math.pi)


class VAE(RlgenModule):
    """Variational autoencoder with a diagonal Gaussian posterior and a standard normal prior.

    Paper: Kingma & Welling, "Auto-Encoding Variational Bayes" (ICLR 2014); the NLL estimate is the bound of
    Burda, Grosse & Salakhutdinov, "Importance Weighted Autoencoders" (ICLR 2016).

    Training minimizes, per image (nats, summed over pixels and latent units, averaged over the batch)::

        L = -E_{q(z|x)}[log p(x|z)] + beta * KL(q(z|x) || N(0, I))
        KL = 1/2 sum_j (mu_j^2 + sigma_j^2 - 1 - log sigma_j^2)                       (analytic)
        log p(x|z) = sum_pixels [x log s + (1 - x) log(1 - s)],  s = sigmoid(logits)   (bernoulli)
        log p(x|z) = sum_pixels log N(x; mean, sigma_x^2), one learned sigma_x         (gaussian)

    with one reparameterized sample ``z = mu + sigma * eps``. Validation and test report the negative ELBO
    (always with beta = 1, so it is a bound on -log p(x)) and the test step adds the IWAE bound::

        -log p(x) <= -log (1/k) sum_i p(x, z_i) / q(z_i | x),   z_i ~ q(z | x),  i = 1..k

    computed with a stable logsumexp in chunks of ``iwae_chunk`` samples, so memory stays bounded for large k.

    Deviations from the paper:
        - convolutional encoder / transposed-convolution decoder (the paper uses one-hidden-layer MLPs);
        - Adam instead of Adagrad; the Gaussian likelihood learns one shared variance (sigma-VAE, Rybkin
          et al. 2021) instead of a per-pixel variance output.
    """

    # Arguments chosen afresh for each run, never restored from a checkpoint (RlgenModule declares the contract).
    RUN_TIME_ARGS = ("iwae_samples", "iwae_chunk", "predict_dir")
    OUTPUT_ARGS = ("predict_dir",)

    def __init__(
        self,
        arch: Literal["mlp", "conv"] = "conv",
        latent_dim: int = 32,
        hidden_dim: int = 256,
        likelihood: Literal["bernoulli", "gaussian"] = "bernoulli",
        beta: float = 1.0,
        lr: float = 1e-3,
        iwae_samples: int = 200,
        iwae_chunk: int = 50,
        predict_dir: str | None = None,
    ) -> None:
        """
        Args:
            arch: encoder/decoder family: ``conv`` (strided conv / transposed conv) or ``mlp``.
            latent_dim: size of the latent z.
            hidden_dim: width of the hidden fully connected layers.
            likelihood: ``bernoulli`` (binarized images; decoder logits) or ``gaussian`` (one learned variance).
            beta: weight of the KL term in the training loss (1 is the VAE; > 1 a beta-VAE).
            lr: Adam learning rate.
            iwae_samples: importance samples k of the test IWAE bound ``test/nll_iwae`` (0 skips it).
            iwae_chunk: importance samples decoded at once (bounds memory: chunk * batch images).
            predict_dir: folder where ``rlgen predict`` writes one PNG grid of prior samples per batch
                (None: ``<run dir>/predictions``).
        """
        super().__init__()
        check_range(">= 1", latent_dim=latent_dim, hidden_dim=hidden_dim, iwae_chunk=iwae_chunk)
        check_range("> 0", lr=lr)
        check_range(">= 0", beta=beta, iwae_samples=iwae_samples)  # iwae_samples 0 skips the IWAE bound
        # Evaluation settings stay out of the checkpoint's hyperparameters: LightningCLI lets a checkpoint's
        # hyperparameters override the command line, and `rlgen test --model.iwae_samples 5000` must work.
        self.save_hyperparameters(ignore=list(self.RUN_TIME_ARGS))
        self.iwae_samples, self.iwae_chunk, self.predict_dir = iwae_samples, iwae_chunk, predict_dir
        # The encoder emits the posterior mean and log-variance side by side.
        self.encoder, self.decoder = build_encoder_decoder(arch, latent_dim, 2 * latent_dim, hidden_dim)
        self.log_sigma_x = nn.Parameter(torch.zeros(())) if likelihood == "gaussian" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """The mean reconstruction ``(B, 1, 28, 28)`` of a batch, decoded from the posterior mean."""
        return self.decode(self.encode(x))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior mean ``(B, latent_dim)``."""
        return self.posterior(x)[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """The mean image ``E[x | z]`` ``(B, 1, 28, 28)``: pixel probabilities (bernoulli) or Gaussian means."""
        out = self.decoder(z)
        return torch.sigmoid(out) if self.hparams.likelihood == "bernoulli" else out

    @torch.no_grad()
    def sample(self, n: int, z: torch.Tensor | None = None) -> torch.Tensor:
        """Mean images of ``n`` draws from the prior ``z ~ N(0, I)`` (or of the given ``z``)."""
        if z is None:
            z = torch.randn(n, self.hparams.latent_dim, device=self.device)
        return self.decode(z.to(self.device))

    def posterior(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z|x), each ``(B, latent_dim)``."""
        mu, logvar = self.encoder(x).chunk(2, dim=1)
        return mu, logvar

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, _ = batch  # (B, 1, 28, 28)
        rec, kl = self._elbo_terms(x)
        loss = rec + self.hparams.beta * kl
        self.log("train/loss", loss, prog_bar=True)
        self.log_dict({"train/recon": rec, "train/kl": kl, "train/neg_elbo": rec + kl})
        return loss

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._eval_step(batch, "test")
        if self.iwae_samples > 0:
            nll = -self.iwae_log_likelihood(batch[0], self.iwae_samples).mean()
            self.log("test/nll_iwae", nll, prog_bar=True, sync_dist=True)

    def predict_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        """As many samples from the prior as the batch holds, and a PNG grid of them in ``predict_dir``."""
        samples = self.sample(batch[0].shape[0])  # (B, 1, 28, 28)
        grid_rows = list(samples.clamp(0, 1).split(16))
        write_predict_grid(output_folder(self.trainer, self.predict_dir, "predictions"), f"samples_{batch_idx:04d}.png",
                           grid_rows)
        return samples

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams.lr)

    @torch.no_grad()
    def iwae_log_likelihood(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """The IWAE lower bound on ``log p(x)`` with ``k`` importance samples, per image ``(B,)``, in nats."""
        mu, logvar = self.posterior(x)  # (B, L) each
        std = (0.5 * logvar).exp()
        chunks = []
        for start in range(0, k, self.iwae_chunk):
            n = min(self.iwae_chunk, k - start)
            eps = torch.randn(n, *mu.shape, device=x.device)  # (n, B, L)
            z = mu + std * eps
            out = self.decoder(z.flatten(0, 1)).unflatten(0, (n, x.shape[0]))  # (n, B, 1, 28, 28)
            log_w = (
                self._log_likelihood(out, x)  # log p(x|z), (n, B)
                + standard_normal_log_prob(z)  # log p(z)
                - standard_normal_log_prob(eps) + (0.5 * logvar).sum(-1)  # - log q(z|x)
            )
            chunks.append(torch.logsumexp(log_w, dim=0))  # (B,)
        return torch.logsumexp(torch.stack(chunks), dim=0) - math.log(k)

    def _elbo_terms(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Batch means of the reconstruction term ``-log p(x|z)`` (one sample) and the analytic KL."""
        mu, logvar = self.posterior(x)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)  # reparameterization, (B, L)
        rec = -self._log_likelihood(self.decoder(z), x).mean()
        kl = kl_standard_normal(mu, logvar).mean()
        return rec, kl

    def _eval_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        rec, kl = self._elbo_terms(batch[0])
        self.log_dict({f"{stage}/recon": rec, f"{stage}/kl": kl}, sync_dist=True)
        self.log(f"{stage}/neg_elbo", rec + kl, prog_bar=True, sync_dist=True)

    def _log_likelihood(self, out: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """``log p(x|z)`` summed over pixels: ``out`` is the decoder output ``(..., 1, 28, 28)``."""
        if self.hparams.likelihood == "bernoulli":
            return bernoulli_log_prob(out, x)
        return gaussian_log_prob(x, out, self.log_sigma_x)


def kl_standard_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag e^logvar) || N(0, I))`` summed over the last dimension."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(-1)


def standard_normal_log_prob(z: torch.Tensor) -> torch.Tensor:
    """``log N(z; 0, I)`` summed over the last dimension."""
    return -0.5 * (z.pow(2) + LOG_2PI).sum(-1)


def bernoulli_log_prob(logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """``sum_pixels x log sigmoid(l) + (1 - x) log(1 - sigmoid(l))`` over the last three dims (C, H, W)."""
    logits, x = torch.broadcast_tensors(logits, x)
    return -nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none").sum((-3, -2, -1))


def gaussian_log_prob(x: torch.Tensor, mean: torch.Tensor, log_sigma: torch.Tensor) -> torch.Tensor:
    """``sum_pixels log N(x; mean, e^(2 log_sigma))`` over the last three dims (C, H, W)."""
    z = (x - mean) * (-log_sigma).exp()
    return (-0.5 * z.pow(2) - log_sigma - 0.5 * LOG_2PI).sum((-3, -2, -1))
