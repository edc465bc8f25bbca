"""What the GAN systems share: :class:`GANSystem`, the base of :class:`~rlgen.lightning_modules.gan.GAN` and
:class:`~rlgen.lightning_modules.textgan.TextGAN` (two networks, one injected optimizer each, sample grids,
FID / IS, the step count); the losses their ``training_step`` calls (:func:`discriminator_loss`,
:func:`generator_loss`, :func:`mode_seeking_loss` with :func:`mode_seeking_pairs`); and the parts that
compose with them: :class:`ImageQuality` (the metrics), :class:`Clusters` (self-conditioning on k-means
clusters), :func:`kmeans`, :func:`check_ddp_for_two_networks` (also used by CycleGAN). Each system's
``training_step`` is its paper's Algorithm 1 and lives in its own file.

Subclass :class:`GANSystem` for a new two-network GAN (see ``docs/extending.md``).
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from pytorch_lightning.cli import OptimizerCallable
from pytorch_lightning.utilities import rank_zero_info
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, Dataset, Subset
from torchmetrics.classification import MulticlassAccuracy

from rlgen.errors import RlgenError, check_range
from rlgen.lightning_modules.base import RlgenModule
from rlgen.lightning_modules.classifier import load_classifier
from rlgen.media.images import image_grid, log_image
from rlgen.metrics import make_fid, make_inception_score

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


def mode_seeking_pairs(cond: tuple) -> tuple:
    """The conditions for :func:`mode_seeking_loss`: the batch's second half gets its first half's (an odd
    last row keeps its own)."""
    def paired(c: torch.Tensor) -> torch.Tensor:
        h = len(c) // 2
        return torch.cat([c[:h], c[:h], c[2 * h:]])

    return tuple(paired(c) for c in cond)


def default_adam(params) -> torch.optim.Optimizer:
    """Adam(lr=2e-4, betas=(0.5, 0.999)), the DCGAN setting, used when no optimizer is configured."""
    return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


class GANSystem(RlgenModule):
    """Two networks, G and D, each stepped by its own injected optimizer with manual optimization.

    Holds what GAN and TextGAN share: the optimizers (``configure_optimizers``), p(z) (:meth:`noise`), the
    fixed noise of the sample grid logged every ``sample_every_n_epochs`` epochs (``images/samples``),
    ``batches_seen`` (D steps; G steps after every k-th, kept in the checkpoint), validation's
    ``d_real``/``d_fake`` and :class:`ImageQuality` metrics, and the DDP strategy. A subclass writes its
    ``training_step`` (with :meth:`optimize`), ``_sample_grid`` and ``validation_step``.
    """

    # Arguments chosen afresh for each run, never restored from a checkpoint (RlgenModule declares the contract).
    RUN_TIME_ARGS = ("classifier_ckpt", "predict_dir")
    OUTPUT_ARGS = ("predict_dir",)
    QUALITY_METRICS: tuple[str, ...] = ("val/fid", "val/is")  # logged only with a classifier checkpoint
    ddp_strategy = "ddp_find_unused_parameters_true"  # what `rlgen` uses for `strategy: ddp`

    def __init__(self, generator: nn.Module, discriminator: nn.Module, optimizer_g: OptimizerCallable | None,
                 optimizer_d: OptimizerCallable | None, k: int, sample_every_n_epochs: int, num_samples: int,
                 classifier_ckpt: str | None, sample_seed: int, predict_dir: str | None,
                 label_metric: str | None = None) -> None:
        """The arguments of the subclasses (documented there), and ``label_metric``: the name of the
        :class:`ImageQuality` label accuracy a conditional subclass logs (e.g. ``prompt_acc``)."""
        super().__init__()
        check_range(">= 1", k=k, sample_every_n_epochs=sample_every_n_epochs, num_samples=num_samples)
        self.automatic_optimization = False
        self.generator, self.discriminator = generator, discriminator
        self.latent_dim: int = getattr(generator, "latent_dim", 0)
        if self.latent_dim < 1:
            raise RlgenError(f"model.generator ({type(generator).__name__}) must have a latent_dim attribute")
        self.optimizer_g = optimizer_g or default_adam
        self.optimizer_d = optimizer_d or default_adam
        for name, factory in (("optimizer_g", self.optimizer_g), ("optimizer_d", self.optimizer_d)):
            check_optimizer(name, factory)
        gen = torch.Generator().manual_seed(sample_seed)
        self.register_buffer("fixed_z", torch.randn(num_samples, self.latent_dim, generator=gen))
        self.batches_seen = 0  # training batches so far (also D steps); G steps after every k-th
        self.quality = ImageQuality(classifier_ckpt, label_metric)
        self.predict_dir = predict_dir

    @property
    def sampler(self) -> nn.Module:
        """The generator that makes samples outside training (GAN: its moving average, if any)."""
        return self.generator

    def noise(self, n: int) -> torch.Tensor:
        """``n`` draws from p(z) = N(0, I): ``(n, latent_dim)``."""
        return torch.randn(n, self.latent_dim, device=self.device)

    def optimize(self, optimizer: Any, loss: torch.Tensor) -> None:
        """One step of ``optimizer`` on ``loss``: zero the gradients, backward (Lightning's), step."""
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()

    def configure_optimizers(self):
        return [self.optimizer_d(self.discriminator.parameters()), self.optimizer_g(self.generator.parameters())]

    @classmethod
    def unlogged_metrics(cls, init_args: dict) -> tuple[str, ...]:
        """Metrics these arguments leave out, so that ``rlgen`` builds no ModelCheckpoint that monitors them."""
        return () if init_args.get("classifier_ckpt") else cls.QUALITY_METRICS

    # ------------------------------------------------------------------------ Lightning hooks
    def setup(self, stage: str) -> None:
        if stage in ("fit", "validate", "test"):
            self.quality.load()

    def on_fit_start(self) -> None:
        check_ddp_for_two_networks(self.trainer)

    def on_validation_epoch_start(self) -> None:
        self.quality.to(self.device)

    on_test_epoch_start = on_validation_epoch_start

    def on_validation_epoch_end(self) -> None:
        self._log_quality("val")

    def on_test_epoch_end(self) -> None:
        self._log_quality("test")

    def on_train_epoch_end(self) -> None:
        if (self.current_epoch + 1) % self.hparams.sample_every_n_epochs == 0:
            self.log_samples()

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["gan_batches_seen"] = self.batches_seen

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.batches_seen = checkpoint.get("gan_batches_seen", 0)

    # ------------------------------------------------------------------------------- helpers
    @torch.no_grad()
    def log_samples(self) -> None:
        """Log the grid generated from the fixed noise (``images/samples``) to the loggers and as a PNG."""
        was_training = self.sampler.training
        self.sampler.eval()
        images, nrow = self._sample_grid()
        self.sampler.train(was_training)
        log_image(self.trainer, "images/samples", image_grid(images, nrow=nrow))

    def _sample_grid(self) -> tuple[torch.Tensor, int]:
        """Images ``(N, C, H, W)`` in [0, 1] from :attr:`fixed_z` and the grid's row length."""
        raise NotImplementedError

    def _log_discriminator_step(self, d_loss: torch.Tensor, real_logits: torch.Tensor,
                                fake_logits: torch.Tensor) -> None:
        """Log D's training loss and its mean output on the real and the fake images."""
        self.log_dict({"train/d_loss": d_loss, "train/d_real": torch.sigmoid(real_logits).mean(),
                       "train/d_fake": torch.sigmoid(fake_logits).mean()}, prog_bar=True)

    def _log_evaluation(self, stage: str, real: torch.Tensor, fake: torch.Tensor, real_logits: torch.Tensor,
                        fake_logits: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        """Log D's mean output on real and fake images ``(B, C, H, W)`` in [-1, 1]; feed the quality metrics."""
        self.log_dict({f"{stage}/d_real": torch.sigmoid(real_logits).mean(),
                       f"{stage}/d_fake": torch.sigmoid(fake_logits).mean()}, sync_dist=True)
        self.quality.update((real + 1) / 2, (fake + 1) / 2, labels)

    def _log_quality(self, stage: str) -> None:
        scores = self.quality.compute(stage)
        if scores:
            self.log_dict(scores, sync_dist=True)  # equal on every rank: a no-op mean


class ImageQuality:
    """FID and Inception Score of generated images in [0, 1] (``<stage>/fid``, ``<stage>/is``) with rlgen's
    MNIST classifier (``rlgen.metrics``), and with ``label_metric`` the share of conditional samples that it
    assigns to their intended label. Nothing without a classifier checkpoint. A plain object, so that the
    metrics' states stay out of the module's state_dict and of DDP."""

    def __init__(self, classifier_ckpt: str | None, label_metric: str | None = None) -> None:
        self.classifier_ckpt, self.label_metric = classifier_ckpt, label_metric
        self.metrics: dict[str, Any] = {}

    def load(self) -> None:
        """Load the classifier and build the metrics (once; a no-op without a checkpoint)."""
        if self.classifier_ckpt and not self.metrics:
            classifier = load_classifier(self.classifier_ckpt)
            self.metrics = {"classifier": classifier, "fid": make_fid(classifier),
                            "is": make_inception_score(classifier)}
            if self.label_metric:
                self.metrics[self.label_metric] = MulticlassAccuracy(10, average="micro")

    def to(self, device: torch.device) -> None:
        for metric in self.metrics.values():
            metric.to(device)

    def update(self, real01: torch.Tensor, fake01: torch.Tensor, labels: torch.Tensor | None = None) -> None:
        if not self.metrics:
            return
        self.metrics["fid"].update(real01, real=True)
        self.metrics["fid"].update(fake01, real=False)
        self.metrics["is"].update(fake01)
        if self.label_metric:
            self.metrics[self.label_metric].update(self.metrics["classifier"](fake01), labels)

    def compute(self, stage: str) -> dict[str, torch.Tensor]:
        """The scores so far as ``{"<stage>/fid": ..., ...}`` (empty before two samples), then a reset."""
        if not self.metrics or self.metrics["fid"].fake_features_num_samples < 2:
            return {}
        is_mean, _ = self.metrics["is"].compute()
        scores = {f"{stage}/fid": self.metrics["fid"].compute(), f"{stage}/is": is_mean}
        names = ["fid", "is"]
        if self.label_metric:
            scores[f"{stage}/{self.label_metric}"] = self.metrics[self.label_metric].compute()
            names.append(self.label_metric)
        for name in names:
            self.metrics[name].reset()
        return scores


class Clusters:
    """Self-conditioning without labels (Liu et al. 2020, "Diverse Image Generation via Self-Conditioned
    GANs"): k-means splits training images by their pixels into ``n`` clusters; a real image's condition is
    its nearest centroid (one-hot), and unconditional samples draw clusters by their share of the images.
    G then need not spread one Gaussian over separate digits, which leaves blends between them (the paper
    clusters D's features again and again; pixels once is enough for MNIST). The state (centroids,
    shares) goes into the checkpoint through :meth:`state_dict`."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.centroids: torch.Tensor | None = None  # (n, C*H*W), images in [-1, 1]
        self.shares: torch.Tensor | None = None  # (n,): each cluster's share of the images

    @torch.no_grad()
    def fit(self, dataset: Dataset, to_images: Any, strategy: Any, device: torch.device,
            num_images: int = 10_000) -> None:
        """k-means on ``num_images`` images of ``dataset`` drawn with a fixed seed (``to_images`` maps a batch
        to images in [-1, 1]); under DDP rank 0's clusters are broadcast to the other ranks."""
        chosen = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0))[:num_images].tolist()
        loader = DataLoader(Subset(dataset, chosen), batch_size=500)
        images = torch.cat([to_images(batch).flatten(1) for batch in loader])  # (N, C*H*W) in [-1, 1]
        centroids, counts = kmeans(images, self.n)
        centroids, counts = strategy.broadcast((centroids, counts), src=0)
        self.centroids, self.shares = centroids.to(device), counts / counts.sum()
        rank_zero_info(f"rlgen: {self.n} k-means clusters of {len(images)} training images; the largest holds "
                       f"{self.shares.max():.1%} of them, the smallest {self.shares.min():.1%}")

    def assign(self, x: torch.Tensor) -> torch.Tensor:
        """The one-hot nearest centroid ``(B, n)`` of images ``(B, C, H, W)`` in [-1, 1]."""
        if self.centroids is None:
            raise RlgenError("model.clusters: this GAN has no clusters yet; train it first or pass --ckpt_path")
        return self._one_hot(torch.cdist(x.flatten(1), self.centroids.to(x)).argmin(dim=1), x.device)

    def draw(self, count: int, device: torch.device) -> torch.Tensor:
        """``count`` one-hot clusters ``(count, n)`` drawn by their shares (uniform before training)."""
        shares = self.shares if self.shares is not None else torch.full((self.n,), 1 / self.n)
        return self._one_hot(torch.multinomial(shares, count, replacement=True), device)

    def cycle(self, count: int, device: torch.device) -> torch.Tensor:
        """``count`` one-hot clusters ``(count, n)``: 0, 1, ..., n - 1, 0, 1, ..."""
        return self._one_hot(torch.arange(count) % self.n, device)

    def state_dict(self) -> dict[str, torch.Tensor | None]:
        return {"centroids": self.centroids, "shares": self.shares}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        self.centroids, self.shares = state["centroids"], state["shares"]

    def _one_hot(self, cluster: torch.Tensor, device: torch.device) -> torch.Tensor:
        return F.one_hot(cluster, self.n).float().to(device)


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


def check_optimizer(name: str, factory: OptimizerCallable) -> None:
    """Build the optimizer once on a dummy parameter so that a bad lr fails at start-up with a clear message."""
    try:
        factory([nn.Parameter(torch.zeros(1))])
    except (ValueError, TypeError) as err:
        raise RlgenError(f"model.{name} is invalid: {err}; fix its init_args (e.g. a positive lr)") from err
