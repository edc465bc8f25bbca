"""Generative adversarial networks trained with manual optimization: the paper's MLP GAN and DCGAN."""

from __future__ import annotations

from typing import Any

import torch
from pytorch_lightning.cli import OptimizerCallable
from pytorch_lightning.utilities import rank_zero_info
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torchvision.utils import save_image

from rlgen.compat import early_train_dataloader
from rlgen.errors import RlgenError, check_range
from rlgen.lightning_modules.gan_system import (
    Clusters,
    GANLoss,
    GANSystem,
    discriminator_loss,
    generator_loss,
    mode_seeking_loss,
    mode_seeking_pairs,
)
from rlgen.media.images import image_grid
from rlgen.nets.gan import DCGANDiscriminator, DCGANGenerator
from rlgen.paths import output_folder


class GAN(GANSystem):
    """Generative adversarial nets (Goodfellow et al. 2014, Algorithm 1), with any injected G and D.

    Loss, with D(x) = sigmoid(logit):
        D maximizes   E_x[log D(x)] + E_z[log(1 - D(G(z)))]         (``train/d_loss`` is its negative)
        G minimizes   E_z[log(1 - D(G(z)))]        (``loss: minimax``, the paper's objective)
                 or   E_z[-log D(G(z))]            (``loss: non_saturating``, the default)

    Every training batch is one discriminator step on a fresh real minibatch and fresh noise; after every
    ``k``-th batch the generator takes one step on fresh noise, so D steps k times per G step as in
    Algorithm 1. Optimization is manual (``automatic_optimization = False``), one optimizer per network,
    the idle network toggled off (``requires_grad=False``) while the other one steps. Under DDP each
    backward pass reaches one network only, which needs Lightning's ``ddp_find_unused_parameters_true``
    strategy; ``rlgen`` picks it for ``strategy: ddp`` (``ddp_strategy``; tested with two gloo ranks).
    The losses are functions in ``gan_system.py``, shared with TextGAN, each with its equation:
    :func:`discriminator_loss` (D's), :func:`generator_loss` (G's, by ``loss``) and :func:`mode_seeking_loss`.
    The rest GAN shares with TextGAN (sample grids, FID / IS, the step count) is the base ``GANSystem``.

    Counting: ``trainer.global_step`` counts *optimizer* steps of both networks, i.e. ``k + 1`` per ``k``
    batches (2 per batch with k = 1); ``max_steps`` and ``ModelCheckpoint(every_n_train_steps)`` use that
    count. ``log_every_n_steps``, ``val_check_interval`` and the logged x axis count *batches*. The
    configs therefore budget runs in epochs; a ``max_steps`` run prints the number of batches it means.

    Options that compose with Algorithm 1, each a few lines here:
        * ``ema_decay``: an exponential moving average of G's weights (and BatchNorm statistics), updated
          after every G step (``torch.optim.swa_utils.AveragedModel``), generates everything that is not
          training: sample grids, validation metrics, ``forward`` and ``predict`` (Yazici et al. 2019).
        * ``top_k``: G's loss from the fakes D rates most real only (:func:`generator_loss`).
        * ``mode_seeking``: a term that makes two noises give two images (:func:`mode_seeking_loss`).
        * ``clusters``: G and D conditioned on k-means clusters of the training images, found when fit
          starts (``gan_system.Clusters``; Liu et al. 2020); the fakes share the real batch's clusters.

    Images: data in [0, 1] is mapped to [-1, 1] for D; generators end in tanh. With ``classifier_ckpt``
    set, validation logs ``val/fid`` (vs the validation images) and ``val/is`` computed with rlgen's
    MNIST classifier (see ``rlgen.metrics``).

    Deviations from the paper: non-saturating G loss by default; Adam instead of SGD with momentum;
    tanh output instead of sigmoid; DCGAN networks by default (the paper's MLP with maxout is
    ``rlgen.nets.gan.MLPGenerator`` / ``MLPDiscriminator``, see ``configs/gan/mnist.yaml``).
    """

    def __init__(
        self,
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        optimizer_g: OptimizerCallable | None = None,
        optimizer_d: OptimizerCallable | None = None,
        k: int = 1,
        loss: GANLoss = "non_saturating",
        sample_every_n_epochs: int = 1,
        num_samples: int = 64,
        classifier_ckpt: str | None = None,
        sample_seed: int = 1234,
        predict_dir: str | None = None,
        ema_decay: float | None = None,
        top_k: float = 1.0,
        clusters: int = 0,
        mode_seeking: float = 0.0,
    ) -> None:
        """
        Args:
            generator: G, mapping noise ``(B, latent_dim)`` to images in [-1, 1]; default DCGANGenerator().
            discriminator: D, mapping images to logits ``(B,)``; default DCGANDiscriminator().
            optimizer_g: G's optimizer (a class_path with init_args in YAML); default Adam(2e-4, betas=(0.5, 0.999)).
            optimizer_d: D's optimizer; default Adam(2e-4, betas=(0.5, 0.999)).
            k: discriminator steps (batches) per generator step (Algorithm 1's k, >= 1).
            loss: ``non_saturating`` (G minimizes -log D(G(z))), ``minimax`` (log(1 - D(G(z)))) or ``hinge``.
            sample_every_n_epochs: log a sample grid from the fixed noise every this many epochs.
            num_samples: images in the fixed-noise grid.
            classifier_ckpt: MNIST Classifier checkpoint for val/fid and val/is (null: skip the metrics).
            sample_seed: seed of the fixed noise of the sample grid.
            predict_dir: folder for the PNG sample grids of ``rlgen predict`` (None: ``<run dir>/predictions``).
            ema_decay: decay of the moving average of G's weights that generates samples (e.g. 0.999;
                null: sample from G itself).
            top_k: share of each batch's fakes that make G's loss: those D rates most real (Sinha et al.
                2020, "Top-k training of GANs"); 1 uses them all.
            clusters: condition G and D on this many k-means clusters of the training images (no labels;
                G and D need ``cond_dim`` equal to it); 0: unconditional.
            mode_seeking: weight of the mode-seeking term in G's loss (:func:`mode_seeking_loss`; Mao et al.
                2019); 0: off. With it, the two halves of each generator batch share their conditions.
        """
        super().__init__(generator if generator is not None else DCGANGenerator(),
                         discriminator if discriminator is not None else DCGANDiscriminator(),
                         optimizer_g, optimizer_d, k, sample_every_n_epochs, num_samples, classifier_ckpt,
                         sample_seed, predict_dir)
        if loss not in ("non_saturating", "minimax", "hinge"):
            raise RlgenError(f"model.loss must be non_saturating, minimax or hinge, got {loss!r}")
        check_range("in (0, 1)", ema_decay=ema_decay)  # e.g. 0.999; None: no EMA generator
        check_range("in (0, 1]", top_k=top_k)  # the share of fakes in G's loss
        check_range(">= 0", clusters=clusters, mode_seeking=mode_seeking)  # 0: off
        for name, net in (("generator", self.generator), ("discriminator", self.discriminator)):
            if clusters and getattr(net, "cond_dim", 0) != clusters:
                raise RlgenError(f"model.clusters is {clusters}: set model.{name}.init_args.cond_dim to "
                                 f"{clusters} too (got {getattr(net, 'cond_dim', None)})")
        self.save_hyperparameters(ignore=list(self.RUN_TIME_ARGS))
        self.clusters = Clusters(clusters) if clusters else None
        self.generator_ema = None if ema_decay is None else AveragedModel(
            self.generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True).requires_grad_(False)

    @property
    def sampler(self) -> nn.Module:
        """The generator that makes samples: G's moving average with ``ema_decay`` set, else G itself."""
        return self.generator if self.generator_ema is None else self.generator_ema.module

    def forward(self, z: torch.Tensor, *cond: Any) -> torch.Tensor:
        """Images ``(B, C, H, W)`` in [0, 1] generated by :attr:`sampler` from noise ``(B, latent_dim)``.

        With ``clusters`` and no ``cond``, each image's cluster is drawn from the clusters' shares of the data.
        """
        if self.clusters and not cond:
            cond = (self.clusters.draw(len(z), self.device),)
        return (self.sampler(z, *cond) + 1) / 2

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real, cond = self._unpack(batch)  # (B, C, H, W) in [-1, 1], conditioning for G and D
        opt_d, opt_g = self.optimizers()
        b, hp = real.shape[0], self.hparams

        # Discriminator step: fresh real minibatch, fresh noise; G is frozen (toggled off).
        with self.toggled_optimizer(opt_d):
            with torch.no_grad():
                fake = self.generator(self.noise(b), *cond)  # (B, C, H, W)
            real_logits, fake_logits = self.discriminator(real, *cond), self.discriminator(fake, *cond)  # (B,)
            d_loss = discriminator_loss(real_logits, fake_logits, hp.loss)
            self.optimize(opt_d, d_loss)
        self.batches_seen += 1
        self._log_discriminator_step(d_loss, real_logits, fake_logits)

        # Generator step after every k-th discriminator step, on fresh noise; D is frozen.
        if self.batches_seen % hp.k == 0:
            with self.toggled_optimizer(opt_g):
                z = self.noise(b)
                cond = mode_seeking_pairs(cond) if hp.mode_seeking else cond
                fake = self.generator(z, *cond)
                g_loss = generator_loss(self.discriminator(fake, *cond), hp.loss, hp.top_k)
                if hp.mode_seeking:
                    g_loss = g_loss + hp.mode_seeking * mode_seeking_loss(fake, z)
                self.optimize(opt_g, g_loss)
            if self.generator_ema is not None:
                self.generator_ema.update_parameters(self.generator)
            self.log("train/g_loss", g_loss, prog_bar=True)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        """Draw as many samples from p(z) as the batch holds and write them as one PNG grid into ``predict_dir``."""
        real, cond = self._unpack(batch)
        images = self(self.noise(real.shape[0]), *cond)  # (B, C, H, W) in [0, 1]
        out_dir = output_folder(self.trainer, self.predict_dir, "predictions")
        save_image(image_grid(images, nrow=8), out_dir / f"samples_{batch_idx:04d}.png")
        return images

    # ------------------------------------------------------------------------ Lightning hooks
    def on_fit_start(self) -> None:
        super().on_fit_start()
        if self.clusters and self.clusters.centroids is None:  # a resumed run has them from its checkpoint
            dataset = getattr(early_train_dataloader(self.trainer), "dataset", None)  # before the sanity check
            if dataset is None:
                raise RlgenError("model.clusters needs one training DataLoader to find the clusters in")
            self.clusters.fit(dataset, self._images, self.trainer.strategy, self.device)
        if self.trainer.max_steps > 0:
            k = self.hparams.k
            rank_zero_info(f"rlgen: max_steps={self.trainer.max_steps} counts optimizer steps of D and G "
                           f"({k + 1} per {k} batches), i.e. about {self.trainer.max_steps * k // (k + 1)} batches")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.clusters and self.clusters.centroids is not None:
            checkpoint["gan_clusters"] = self.clusters.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if self.clusters:
            if "gan_clusters" not in checkpoint:
                raise RlgenError(f"model.clusters is {self.clusters.n}, but the checkpoint holds no clusters: it "
                                 "was saved by an unconditional GAN; load it with model.clusters 0")
            self.clusters.load_state_dict(checkpoint["gan_clusters"])

    # ------------------------------------------------------------------------------- helpers
    def _sample_grid(self) -> tuple[torch.Tensor, int]:
        cond = (self.clusters.cycle(len(self.fixed_z), self.device),) if self.clusters else ()
        return self(self.fixed_z, *cond), 8  # (N, C, H, W) in [0, 1]; with clusters, one per cluster in turn

    def _evaluate(self, batch: Any, stage: str) -> None:
        """D's outputs on real and generated images; FID / IS when a classifier is set."""
        real, cond = self._unpack(batch)
        fake = self.sampler(self.noise(real.shape[0]), *cond)
        self._log_evaluation(stage, real, fake, self.discriminator(real, *cond), self.discriminator(fake, *cond))

    def _unpack(self, batch: Any) -> tuple[torch.Tensor, tuple]:
        """Real images in [-1, 1] and the conditioning passed to G and D: none for the plain GAN; with
        ``clusters``, the one-hot nearest centroid of each real image, which the fakes of the step share."""
        x = self._images(batch)
        return x, ((self.clusters.assign(x),) if self.clusters else ())

    @staticmethod
    def _images(batch: Any) -> torch.Tensor:
        """The batch's images (without labels), mapped from [0, 1] to [-1, 1]."""
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return x * 2 - 1
