"""Generative adversarial networks trained with manual optimization: the paper's MLP GAN and DCGAN."""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pytorch_lightning import LightningModule
from pytorch_lightning.cli import OptimizerCallable
from pytorch_lightning.utilities import rank_zero_info
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from torch.utils.data import DataLoader, Subset
from torchvision.utils import save_image

from rlgen.callbacks.images import image_grid, log_image
from rlgen.callbacks.run_dir import output_folder
from rlgen.compat import early_train_dataloader
from rlgen.errors import RlgenError
from rlgen.metrics import load_classifier, make_fid, make_inception_score
from rlgen.nets.gan import DCGANDiscriminator, DCGANGenerator

CLASSIFIER_METRICS = ("val/fid", "val/is", "val/prompt_acc")  # logged only with a classifier checkpoint


GANLoss = Literal["non_saturating", "minimax", "hinge"]


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor, kind: GANLoss = "non_saturating"
                       ) -> torch.Tensor:
    """D's loss from its logits on real and fake images, averaged over the batch.

    ``non_saturating`` / ``minimax``: ``-log D(x) - log(1 - D(G(z)))`` with D = sigmoid(logit);
    ``hinge``: ``max(0, 1 - l(x)) + max(0, 1 + l(G(z)))`` (Lim & Ye 2017; Miyato et al. 2018).
    """
    if kind == "hinge":
        return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()
    return (F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
            + F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits)))


def generator_loss(fake_logits: torch.Tensor, kind: GANLoss, top_k: float = 1.0) -> torch.Tensor:
    """The generator's loss from D's logits on fakes; with ``top_k < 1``, on that share of the fakes only,
    those with the highest logits (Sinha et al. 2020).

    ``minimax``: ``log(1 - D(G(z)))`` (the paper's objective, minimized; saturates when D wins);
    ``non_saturating``: ``-log D(G(z))`` (the paper's practical suggestion, same fixed point);
    ``hinge``: ``-l(G(z))``, the raw logit (the generator side of the hinge loss).
    """
    if top_k < 1.0:
        fake_logits = fake_logits.topk(max(1, round(top_k * len(fake_logits)))).values
    if kind == "minimax":
        return -F.softplus(fake_logits).mean()  # log(1 - sigmoid(l)) = -softplus(l)
    if kind == "hinge":
        return -fake_logits.mean()
    return F.softplus(-fake_logits).mean()  # -log sigmoid(l) = softplus(-l)


def mode_seeking_loss(fake: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mao et al. 2019 (MSGAN): ``1 / (mean|G(z1) - G(z2)| / mean|z1 - z2| + 1e-5)`` between the batch's first
    and second halves, which share their conditions; G minimizes it, so two noises must give two different
    images. ``fake``: ``(B, ...)``, ``z``: ``(B, latent_dim)``; with an odd B the last row is left out."""
    h = len(z) // 2
    ratio = (fake[:h] - fake[h:2 * h]).abs().mean() / (z[:h] - z[h:2 * h]).abs().mean()
    return 1 / (ratio + 1e-5)


def default_adam(params) -> torch.optim.Optimizer:
    """Adam(lr=2e-4, betas=(0.5, 0.999)), the DCGAN setting, used when no optimizer is configured."""
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


class GAN(LightningModule):
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

    Counting: ``trainer.global_step`` counts *optimizer* steps of both networks, i.e. ``k + 1`` per ``k``
    batches (2 per batch with k = 1); ``max_steps`` and ``ModelCheckpoint(every_n_train_steps)`` use that
    count. ``log_every_n_steps``, ``val_check_interval`` and the logged x axis count *batches*. The
    configs therefore budget runs in epochs; a ``max_steps`` run prints the number of batches it means.

    Generator averaging: with ``ema_decay`` set, an exponential moving average of G's weights (and
    BatchNorm statistics) is updated after every G step (``torch.optim.swa_utils.AveragedModel``) and
    generates everything that is not training: sample grids, validation metrics, ``forward`` and
    ``predict`` (Yazici et al. 2019, "The unusual effectiveness of averaging in GAN training").

    Clusters (no labels): with ``clusters`` set, k-means splits 10,000 training images (drawn with a fixed
    seed) by their pixels into that many clusters when fit starts; G and D are conditioned on the one-hot
    cluster of each real image (the step's fakes share the real batch's clusters), and unconditional
    sampling draws clusters by their share of those images. G then need not spread one Gaussian over
    separate digits, which leaves blends between them (Liu et al. 2020, "Diverse Image Generation via
    Self-Conditioned GANs", cluster D's features again and again; pixels once is enough for MNIST). The
    centroids live in the checkpoint.

    Images: data in [0, 1] is mapped to [-1, 1] for D; generators end in tanh. A grid from a fixed
    noise batch is logged every ``sample_every_n_epochs`` epochs (``images/samples``). With
    ``classifier_ckpt`` set, validation logs ``val/fid`` (vs the validation images) and ``val/is``
    computed with rlgen's MNIST classifier (see ``rlgen.metrics``).

    Deviations from the paper: non-saturating G loss by default; Adam instead of SGD with momentum;
    tanh output instead of sigmoid; DCGAN networks by default (the paper's MLP with maxout is
    ``rlgen.nets.gan.MLPGenerator`` / ``MLPDiscriminator``, see ``configs/gan/mnist.yaml``).
    """

    # Arguments chosen afresh for each run, never restored from a checkpoint (see rlgen/checkpoints.py).
    RUN_TIME_ARGS: tuple[str, ...] = ("classifier_ckpt", "predict_dir")

    ddp_strategy = "ddp_find_unused_parameters_true"  # what `rlgen` uses for `strategy: ddp`

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
        super().__init__()
        if k < 1:
            raise RlgenError(f"model.k (discriminator steps per generator step) must be >= 1, got {k}")
        if loss not in ("non_saturating", "minimax", "hinge"):
            raise RlgenError(f"model.loss must be non_saturating, minimax or hinge, got {loss!r}")
        if sample_every_n_epochs < 1 or num_samples < 1:
            raise RlgenError(f"model.sample_every_n_epochs and model.num_samples must be >= 1, got "
                             f"{sample_every_n_epochs} and {num_samples}")
        if ema_decay is not None and not 0.0 < ema_decay < 1.0:
            raise RlgenError(f"model.ema_decay must be in (0, 1) (e.g. 0.999) or null, got {ema_decay}")
        if not 0.0 < top_k <= 1.0:
            raise RlgenError(f"model.top_k (share of fakes in G's loss) must be in (0, 1], got {top_k}")
        if clusters < 0:
            raise RlgenError(f"model.clusters must be >= 0 (0: unconditional), got {clusters}")
        if mode_seeking < 0:
            raise RlgenError(f"model.mode_seeking must be >= 0 (0: off), got {mode_seeking}")
        self.save_hyperparameters(ignore=list(self.RUN_TIME_ARGS))
        self.top_k, self.clusters = top_k, clusters  # attributes: TextGAN takes neither
        self.classifier_ckpt, self.predict_dir = classifier_ckpt, predict_dir
        self.automatic_optimization = False
        self.generator = generator if generator is not None else DCGANGenerator()
        self.discriminator = discriminator if discriminator is not None else DCGANDiscriminator()
        self.latent_dim: int = getattr(self.generator, "latent_dim", 0)
        if self.latent_dim < 1:
            raise RlgenError(f"model.generator ({type(self.generator).__name__}) must have a latent_dim attribute")
        if clusters:
            for name, net in (("generator", self.generator), ("discriminator", self.discriminator)):
                if getattr(net, "cond_dim", 0) != clusters:
                    raise RlgenError(f"model.clusters is {clusters}: set model.{name}.init_args.cond_dim to "
                                     f"{clusters} too (got {getattr(net, 'cond_dim', None)})")
        # k-means centroids of the flattened training images in [-1, 1] (clusters, C*H*W) and each cluster's
        # share of the images (clusters,): found when training starts, kept in the checkpoint
        self.centroids: torch.Tensor | None = None
        self.cluster_shares: torch.Tensor | None = None
        self.generator_ema = None if ema_decay is None else AveragedModel(
            self.generator, multi_avg_fn=get_ema_multi_avg_fn(ema_decay), use_buffers=True).requires_grad_(False)
        self.optimizer_g = optimizer_g or default_adam
        self.optimizer_d = optimizer_d or default_adam
        for name, factory in (("optimizer_g", self.optimizer_g), ("optimizer_d", self.optimizer_d)):
            _check_optimizer(name, factory)
        gen = torch.Generator().manual_seed(sample_seed)
        self.register_buffer("fixed_z", torch.randn(num_samples, self.latent_dim, generator=gen))
        self.batches_seen = 0  # training batches so far (also D steps); G steps after every k-th
        self._metrics: dict[str, Any] = {}  # FID / IS: kept out of the state_dict and of DDP

    @property
    def sampler(self) -> nn.Module:
        """The generator that makes samples: G's moving average with ``ema_decay`` set, else G itself."""
        return self.generator if self.generator_ema is None else self.generator_ema.module

    def forward(self, z: torch.Tensor, *cond: Any) -> torch.Tensor:
        """Images ``(B, C, H, W)`` in [0, 1] generated by :attr:`sampler` from noise ``(B, latent_dim)``.

        With ``clusters`` and no ``cond``, each image's cluster is drawn from the clusters' shares of the data.
        """
        if self.clusters and not cond:
            cond = (self._one_hot(torch.multinomial(self._shares(), len(z), replacement=True)),)
        return (self.sampler(z, *cond) + 1) / 2

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real, cond = self._unpack(batch)  # (B, C, H, W) in [-1, 1], conditioning for G and D
        opt_d, opt_g = self.optimizers()
        b = real.shape[0]

        # Discriminator step: fresh real minibatch, fresh noise; G is frozen (toggled off).
        self.toggle_optimizer(opt_d)
        with torch.no_grad():
            fake = self.generator(self.noise(b), *cond)  # (B, C, H, W)
        d_loss, real_logits, fake_logits = self._discriminator_loss(real, fake, cond, batch)
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self.untoggle_optimizer(opt_d)
        self.batches_seen += 1
        self.log_dict({"train/d_loss": d_loss, "train/d_real": torch.sigmoid(real_logits).mean(),
                       "train/d_fake": torch.sigmoid(fake_logits).mean()}, prog_bar=True)

        # Generator step after every k-th discriminator step, on fresh noise; D is frozen.
        if self.batches_seen % self.hparams.k == 0:
            self.toggle_optimizer(opt_g)
            z, weight = self.noise(b), self.hparams.mode_seeking
            if weight:  # the second half of the batch gets the first half's conditions (an odd last row: its own)
                h = b // 2
                cond = tuple(torch.cat([c[:h], c[:h], c[2 * h:]]) for c in cond)
            fake = self.generator(z, *cond)
            g_loss = generator_loss(self.discriminator(fake, *cond), self.hparams.loss, self.top_k)
            if weight:
                g_loss = g_loss + weight * mode_seeking_loss(fake, z)
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
            self.untoggle_optimizer(opt_g)
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

    def configure_optimizers(self):
        return [self.optimizer_d(self.discriminator.parameters()), self.optimizer_g(self.generator.parameters())]

    # ----------------------------------------------------------------------------------------------
    @staticmethod
    def unlogged_metrics(init_args: dict) -> tuple[str, ...]:
        """Metrics these arguments leave out, so that ``rlgen`` builds no ModelCheckpoint that monitors them."""
        return () if init_args.get("classifier_ckpt") else CLASSIFIER_METRICS

    def setup(self, stage: str) -> None:
        if self.classifier_ckpt and stage in ("fit", "validate", "test") and not self._metrics:
            classifier = load_classifier(self.classifier_ckpt)
            self._metrics = {"classifier": classifier, "fid": make_fid(classifier),
                             "is": make_inception_score(classifier)}

    def on_fit_start(self) -> None:
        check_ddp_for_two_networks(self.trainer)
        if self.clusters and self.centroids is None:  # a resumed run has them from its checkpoint
            self._find_clusters()
        if self.trainer.max_steps > 0:
            k = self.hparams.k
            rank_zero_info(f"rlgen: max_steps={self.trainer.max_steps} counts optimizer steps of D and G "
                           f"({k + 1} per {k} batches), i.e. about {self.trainer.max_steps * k // (k + 1)} batches")

    def on_validation_epoch_start(self) -> None:
        for metric in self._metrics.values():
            metric.to(self.device)

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_metrics("test")

    def _log_metrics(self, stage: str) -> None:
        if not self._metrics or self._metrics["fid"].fake_features_num_samples < 2:
            return
        is_mean, _ = self._metrics["is"].compute()
        self.log_dict({f"{stage}/fid": self._metrics["fid"].compute(), f"{stage}/is": is_mean,
                       **self._compute_extra_metrics(stage)}, sync_dist=True)  # equal on every rank: a no-op mean
        for name in ("fid", "is"):
            self._metrics[name].reset()

    def on_train_epoch_end(self) -> None:
        if (self.current_epoch + 1) % self.hparams.sample_every_n_epochs == 0:
            self.log_samples()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gan_batches_seen"] = self.batches_seen
        if self.centroids is not None:
            checkpoint["gan_clusters"] = {"centroids": self.centroids, "shares": self.cluster_shares}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.batches_seen = checkpoint.get("gan_batches_seen", 0)
        if self.clusters:
            if "gan_clusters" not in checkpoint:
                raise RlgenError(f"model.clusters is {self.clusters}, but the checkpoint holds no clusters: it was "
                                 "saved by an unconditional GAN; load it with model.clusters 0")
            self.centroids, self.cluster_shares = (checkpoint["gan_clusters"][key] for key in ("centroids", "shares"))

    @torch.no_grad()
    def _find_clusters(self, num_images: int = 10_000) -> None:
        """k-means on ``num_images`` training images drawn with a fixed seed, before the sanity check needs the
        clusters; under DDP rank 0's clusters are broadcast to the other ranks."""
        dataset = getattr(early_train_dataloader(self.trainer), "dataset", None)
        if dataset is None:
            raise RlgenError("model.clusters needs one training DataLoader to find the clusters in")
        # A loader of its own: a pass over the training loader would shorten its first epoch (persistent workers)
        chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:num_images].tolist()
        loader = DataLoader(Subset(dataset, chosen), batch_size=500)
        images = torch.cat([self._unpack_images(batch).flatten(1) for batch in loader])  # (N, C*H*W) in [-1, 1]
        n = len(images)
        centroids, counts = kmeans(images, self.clusters)
        centroids, counts = self.trainer.strategy.broadcast((centroids, counts), src=0)
        self.centroids, self.cluster_shares = centroids.to(self.device), counts / counts.sum()
        rank_zero_info(f"rlgen: {self.clusters} k-means clusters of {n} training images; the largest holds "
                       f"{self.cluster_shares.max():.1%} of them, the smallest {self.cluster_shares.min():.1%}")

    def _shares(self) -> torch.Tensor:
        """The clusters' shares of the training images (uniform before training)."""
        if self.cluster_shares is None:
            return torch.full((self.clusters,), 1 / self.clusters)
        return self.cluster_shares

    def _one_hot(self, cluster: torch.Tensor) -> torch.Tensor:
        """``(B,)`` cluster indices -> ``(B, clusters)`` one-hot conditioning vectors on this module's device."""
        return F.one_hot(cluster, self.clusters).float().to(self.device)

    @torch.no_grad()
    def log_samples(self) -> None:
        """Log the grid generated from the fixed noise (``images/samples``) to the loggers and as a PNG."""
        was_training = self.sampler.training
        self.sampler.eval()
        images, nrow = self._sample_grid_images()
        self.sampler.train(was_training)
        log_image(self.trainer, "images/samples", image_grid(images, nrow=nrow))

    def _sample_grid_images(self) -> tuple[torch.Tensor, int]:
        cond = (self._one_hot(torch.arange(len(self.fixed_z)) % self.clusters),) if self.clusters else ()
        return self(self.fixed_z, *cond), 8  # (N, C, H, W) in [0, 1]; with clusters, one per cluster in turn

    def _evaluate(self, batch: Any, stage: str) -> None:
        """D's outputs on real and generated images; FID / IS (and subclass metrics) when a classifier is set."""
        real, cond = self._unpack(batch)
        fake = self.sampler(self.noise(real.shape[0]), *cond)
        _, real_logits, fake_logits = self._discriminator_loss(real, fake, cond, batch)
        self.log_dict({f"{stage}/d_real": torch.sigmoid(real_logits).mean(),
                       f"{stage}/d_fake": torch.sigmoid(fake_logits).mean()}, sync_dist=True)
        if self._metrics:
            real01, fake01 = (real + 1) / 2, (fake + 1) / 2
            self._metrics["fid"].update(real01, real=True)
            self._metrics["fid"].update(fake01, real=False)
            self._metrics["is"].update(fake01)
            self._update_extra_metrics(fake01, batch)

    def _unpack(self, batch: Any) -> tuple[torch.Tensor, tuple]:
        """Real images in [-1, 1] and the conditioning passed to G and D: none for the plain GAN; with
        ``clusters``, the one-hot nearest centroid of each real image, which the fakes of the step share."""
        x = self._unpack_images(batch)
        if not self.clusters:
            return x, ()
        if self.centroids is None:
            raise RlgenError("model.clusters: this GAN has no clusters yet; train it first or pass --ckpt_path")
        return x, (self._one_hot(torch.cdist(x.flatten(1), self.centroids.to(x)).argmin(dim=1)),)

    @staticmethod
    def _unpack_images(batch: Any) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return x * 2 - 1

    def noise(self, n: int) -> torch.Tensor:
        """``n`` draws from p(z) = N(0, I): ``(n, latent_dim)``."""
        return torch.randn(n, self.latent_dim, device=self.device)

    def _discriminator_loss(
        self, real: torch.Tensor, fake: torch.Tensor, cond: tuple, batch: Any
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """D's loss, its logits on the real and on the fake images."""
        real_logits, fake_logits = self.discriminator(real, *cond), self.discriminator(fake, *cond)
        return discriminator_loss(real_logits, fake_logits, self.hparams.loss), real_logits, fake_logits

    def _update_extra_metrics(self, fake01: torch.Tensor, batch: Any) -> None:
        """Hook for subclasses: more validation metrics from the generated images."""

    def _compute_extra_metrics(self, stage: str) -> dict[str, torch.Tensor]:
        return {}


def kmeans(x: torch.Tensor, k: int, iters: int = 30, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means of the rows of ``x`` ``(N, D)``, started from ``k`` rows drawn with ``seed``:
    the centroids ``(k, D)`` and how many rows each one holds ``(k,)``. An empty cluster keeps its centroid."""
    if len(x) < k:
        raise RlgenError(f"model.clusters is {k}, but the training data has only {len(x)} images")
    centroids = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:k]].clone()
    for _ in range(iters):
        nearest = torch.cdist(x, centroids).argmin(dim=1)
        counts = torch.bincount(nearest, minlength=k)
        sums = torch.zeros_like(centroids).index_add_(0, nearest, x)
        centroids = torch.where(counts[:, None] > 0, sums / counts.clamp_min(1)[:, None], centroids)
    return centroids, torch.bincount(torch.cdist(x, centroids).argmin(dim=1), minlength=k).float()


def check_ddp_for_two_networks(trainer: Any) -> None:
    """Under DDP, ask for the strategy that lets a backward pass reach only one of the networks.

    Each ``manual_backward`` re-arms DDP's reducer with that loss, but with ``find_unused_parameters=False``
    the reducer waits for gradients of *all* parameters, and the toggled-off network never sends any
    ("parameters that were not used in producing the loss"). Runs in ``on_fit_start``, after the wrap.
    """
    model = trainer.strategy.model
    if isinstance(model, DistributedDataParallel) and not model.find_unused_parameters:
        raise RlgenError("each optimizer step of a GAN uses one of its networks, so DDP must look for unused "
                         "parameters: set --trainer.strategy ddp_find_unused_parameters_true")


def _check_optimizer(name: str, factory: OptimizerCallable) -> None:
    """Build the optimizer once on a dummy parameter so that a bad lr fails at start-up with a clear message."""
    try:
        factory([nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError) as err:
        raise RlgenError(f"model.{name} is invalid: {err}; fix its init_args (e.g. a positive lr)") from err
