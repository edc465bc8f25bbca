"""CycleGAN: unpaired image-to-image translation with two generators, two PatchGAN critics and cycle consistency."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Literal

import torch
import torch.nn.functional as F
from pytorch_lightning.utilities import rank_zero_warn
from torch import nn
from torchvision.utils import save_image

from rlgen.errors import RlgenError, check_range
from rlgen.lightning_modules.base import RlgenModule
from rlgen.lightning_modules.gan_system import check_ddp_for_two_networks
from rlgen.media.images import image_grid, log_image
from rlgen.nets.cyclegan import PatchDiscriminator, ResnetGenerator, init_weights
from rlgen.paths import output_folder


class ImagePool:
    """A buffer of up to ``pool_size`` past generated images (Shrivastava et al. 2017), one per discriminator.

    ``query(images)`` goes image by image: while the pool is not full, the image is stored and returned;
    afterwards, with probability 1/2 a random stored image is returned and replaced by the new one,
    otherwise the new image is returned and the pool is unchanged. ``pool_size=0`` returns the input.
    """

    def __init__(self, pool_size: int = 50, generator: torch.Generator | None = None) -> None:
        self.pool_size = pool_size
        self.images: list[torch.Tensor] = []  # each (C, H, W), detached
        self.generator = generator

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """A batch ``(B, C, H, W)`` mixing ``images`` (detached) with stored past ones."""
        if self.pool_size == 0:
            return images.detach()
        out = []
        for image in images.detach():
            if len(self.images) < self.pool_size:
                self.images.append(image.clone())
                out.append(image)
            elif float(torch.rand((), generator=self.generator)) < 0.5:
                i = int(torch.randint(self.pool_size, (), generator=self.generator))
                out.append(self.images[i])
                self.images[i] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)  # (B, C, H, W)

    def state(self) -> torch.Tensor | None:
        return torch.stack(self.images).cpu() if self.images else None

    def load_state(self, images: torch.Tensor | None, device: torch.device) -> None:
        self.images = [] if images is None else list(images.to(device).unbind(0))[: self.pool_size]


def linear_decay_factor(epoch: int, n_epochs: int, n_epochs_decay: int) -> float:
    """LR multiplier of the original ``linear`` policy after ``epoch`` completed epochs.

    1 for the first ``n_epochs`` epochs, then ``1 - (epoch + 1 - n_epochs) / (n_epochs_decay + 1)``:
    linear steps down to ``1 / (n_epochs_decay + 1)`` in the last epoch and 0 once all
    ``n_epochs + n_epochs_decay`` epochs are done (never negative).
    """
    return max(0.0, 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1))


def gan_loss(logits: torch.Tensor, real: bool, mode: str) -> torch.Tensor:
    """LSGAN ``mean((D - t)^2)`` or vanilla ``BCE(sigmoid(D), t)`` over the patch grid, with t = 1 (real) or 0."""
    target = torch.full_like(logits, 1.0 if real else 0.0)
    if mode == "lsgan":
        return F.mse_loss(logits, target)
    return F.binary_cross_entropy_with_logits(logits, target)


class CycleGAN(RlgenModule):
    """CycleGAN with ResNet generators G: A -> B, F: B -> A and PatchGAN discriminators D_A, D_B.

    Paper: Zhu, Park, Isola & Efros, "Unpaired Image-to-Image Translation using Cycle-Consistent
    Adversarial Networks" (ICCV 2017); details follow junyanz/pytorch-CycleGAN-and-pix2pix.

    With ``l(p, t) = (p - t)^2`` (LSGAN) or ``-[t log s(p) + (1 - t) log(1 - s(p))]`` (vanilla),
    averaged over the patch grid::

        L_G = l(D_B(G(a)), 1) + l(D_A(F(b)), 1)                                   adversarial
              + lambda * (|F(G(a)) - a|_1 + |G(F(b)) - b|_1)                     cycle
              + lambda_identity * lambda * (|G(b) - b|_1 + |F(a) - a|_1)          identity
        L_D_B = 1/2 [l(D_B(b), 1) + l(D_B(pool_B(G(a))), 0)]      (D_A likewise with a, pool_A(F(b)))

    One Adam optimizer for both generators, one for both discriminators (as in the original); each
    batch takes one generator step, then one discriminator step on fakes drawn from a 50-image
    history pool. The learning rate is constant for ``n_epochs`` epochs, then decays linearly to 0
    over ``n_epochs_decay`` epochs; ``automatic_optimization`` is off, so the schedulers are
    stepped by hand at each epoch end (``global_step`` counts 2 optimizer steps per batch). Under DDP
    ``find_unused_parameters`` is switched on, since each backward reaches only one pair of networks.

    Validation and test report ``cycle_l1`` (mean |F(G(a)) - a| and |G(F(b)) - b| in [0, 1] pixel
    units). ``rlgen test`` writes PNG grids (real / translated / reconstructed, both directions) to
    ``output_dir``; ``rlgen predict`` writes one translated PNG per input image there.

    Deviations from the original: image pool query draws from a torch generator (seeded by
    ``seed_everything``) instead of Python's ``random``; a validation loop (cycle L1 and image grids)
    is added; small images use a PatchGAN with fewer layers (a 70x70 patch is larger than 28x28).
    """

    ddp_strategy = "ddp_find_unused_parameters_true"  # what `rlgen` uses for `strategy: ddp`

    # Arguments chosen afresh for each run, never restored from a checkpoint (RlgenModule declares the contract).
    RUN_TIME_ARGS = OUTPUT_ARGS = ("output_dir",)

    def __init__(
        self,
        generator_ab: nn.Module | None = None,
        discriminator_b: nn.Module | None = None,
        generator_ba: nn.Module | None = None,
        discriminator_a: nn.Module | None = None,
        gan_mode: Literal["lsgan", "vanilla"] = "lsgan",
        lambda_cycle: float = 10.0,
        lambda_identity: float = 0.5,
        pool_size: int = 50,
        lr: float = 2e-4,
        beta1: float = 0.5,
        n_epochs: int = 100,
        n_epochs_decay: int = 100,
        num_log_images: int = 8,
        output_dir: str | None = None,
    ) -> None:
        """
        Args:
            generator_ab: the generator G translating domain A to domain B; null: the original 9-block
                :class:`ResnetGenerator` for RGB images.
            discriminator_b: the discriminator D_B judging domain-B images (real vs G(a)); null: the
                70x70 :class:`PatchDiscriminator` for RGB images.
            generator_ba: the generator F translating B to A; null: a freshly initialized copy of generator_ab.
            discriminator_a: the discriminator D_A judging domain-A images; null: a fresh copy of discriminator_b.
            gan_mode: adversarial loss: ``lsgan`` (least squares, the paper's choice) or ``vanilla`` (cross-entropy).
            lambda_cycle: weight lambda of the cycle-consistency L1 losses (the paper: 10).
            lambda_identity: identity loss weight as a fraction of lambda_cycle (the original: 0.5; 0 disables).
            pool_size: past fakes kept per discriminator (the paper: 50; 0 disables the pool).
            lr: initial Adam learning rate of both optimizers.
            beta1: Adam beta1 (the paper: 0.5).
            n_epochs: epochs at the initial learning rate.
            n_epochs_decay: epochs of linear decay to 0 after that (set trainer.max_epochs to the sum).
            num_log_images: validation images per direction in the logged grids (0 disables them).
            output_dir: where ``test`` and ``predict`` write PNGs; null: ``<log_dir>/test_images`` and
                ``<log_dir>/translated``.
        """
        super().__init__()
        check_range(">= 0", lambda_cycle=lambda_cycle, lambda_identity=lambda_identity, pool_size=pool_size,
                    num_log_images=num_log_images, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay)
        check_range("> 0", lr=lr)
        check_range("in [0, 1)", beta1=beta1)
        if n_epochs + n_epochs_decay < 1:
            raise RlgenError(f"model.n_epochs + model.n_epochs_decay must be >= 1 (the learning-rate schedule's "
                             f"length), got {n_epochs} + {n_epochs_decay}")
        generator_ab = generator_ab if generator_ab is not None else ResnetGenerator()
        discriminator_b = discriminator_b if discriminator_b is not None else PatchDiscriminator()
        in_ch, out_ch = getattr(generator_ab, "in_channels", None), getattr(generator_ab, "out_channels", None)
        if lambda_identity > 0 and in_ch != out_ch:
            raise RlgenError(f"the identity loss needs equal channel counts in domains A and B (got {in_ch} and "
                             f"{out_ch}); set --model.lambda_identity 0")
        self.save_hyperparameters(ignore=list(self.RUN_TIME_ARGS))
        self.output_dir = output_dir
        self.automatic_optimization = False
        self.gen_ab = generator_ab
        self.gen_ba = generator_ba if generator_ba is not None else _fresh_copy(generator_ab)
        self.disc_b = discriminator_b
        self.disc_a = discriminator_a if discriminator_a is not None else _fresh_copy(discriminator_b)
        self.pool_a, self.pool_b = ImagePool(pool_size), ImagePool(pool_size)
        self._val_batch: tuple[torch.Tensor, torch.Tensor] | None = None

    def forward(self, x: torch.Tensor, direction: Literal["a2b", "b2a"] = "a2b") -> torch.Tensor:
        """Translate images ``(B, C, H, W)`` in [-1, 1] from A to B (``a2b``) or from B to A (``b2a``)."""
        return self.gen_ab(x) if direction == "a2b" else self.gen_ba(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        real_a, real_b = batch  # (B, C_A, H, W), (B, C_B, H, W) in [-1, 1]
        opt_g, opt_d = self.optimizers()

        # Generators: fool both discriminators, reconstruct both ways, leave target-domain images alone.
        self.toggle_optimizer(opt_g)
        g = self.generator_losses(real_a, real_b)
        self.manual_backward(g["g_loss"])
        opt_g.step()
        opt_g.zero_grad(set_to_none=True)
        self.untoggle_optimizer(opt_g)

        # Discriminators: real vs a mix of current and past fakes.
        self.toggle_optimizer(opt_d)
        d_a_loss = self._discriminator_loss(self.disc_a, real_a, self.pool_a.query(g["fake_a"]))
        d_b_loss = self._discriminator_loss(self.disc_b, real_b, self.pool_b.query(g["fake_b"]))
        self.manual_backward(d_a_loss + d_b_loss)
        opt_d.step()
        opt_d.zero_grad(set_to_none=True)
        self.untoggle_optimizer(opt_d)

        metrics = {f"train/{k}": v.detach() for k, v in g.items() if k.endswith("loss")}
        metrics |= {"train/d_a_loss": d_a_loss.detach(), "train/d_b_loss": d_b_loss.detach()}
        self.log_dict(metrics, prog_bar=False)
        self.log("train/g", metrics["train/g_loss"], prog_bar=True, logger=False)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        if batch_idx == 0 and self.hparams.num_log_images > 0:
            n = self.hparams.num_log_images
            self._val_batch = (batch[0][:n], batch[1][:n])
        self._shared_eval(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        rows = self._shared_eval(batch, "test")
        out = self._output_dir("test_images")
        out.mkdir(parents=True, exist_ok=True)
        for direction, images in rows.items():  # rows: real, translated, reconstructed; first 16 of the batch
            cols = min(16, len(images[0]))
            grid = image_grid(torch.cat([r[:cols] for r in images]), nrow=cols)
            save_image(grid, out / f"{direction}_{batch_idx:04d}.png")

    def predict_step(self, batch: tuple[torch.Tensor, list], batch_idx: int) -> torch.Tensor:
        """Translate a batch ``(images, names)`` to the other domain; writes ``<output_dir>/<name>.png``."""
        x, names = batch
        source = getattr(getattr(self.trainer, "datamodule", None), "hparams", {}).get("predict_domain", "A")
        fake = _to_unit(self(x, "a2b" if source == "A" else "b2a"))  # (B, C, H, W) in [0, 1]
        out = self._output_dir("translated")
        out.mkdir(parents=True, exist_ok=True)
        for image, name in zip(fake, names, strict=True):
            stem = Path(name).stem if isinstance(name, str) else f"{int(name):06d}"
            save_image(image, out / f"{stem}.png")
        return fake.cpu()

    def configure_optimizers(self):
        hp = self.hparams
        betas = (hp.beta1, 0.999)
        opt_g = torch.optim.Adam([*self.gen_ab.parameters(), *self.gen_ba.parameters()], lr=hp.lr, betas=betas)
        opt_d = torch.optim.Adam([*self.disc_a.parameters(), *self.disc_b.parameters()], lr=hp.lr, betas=betas)

        def rule(epoch: int) -> float:
            return linear_decay_factor(epoch, hp.n_epochs, hp.n_epochs_decay)

        scheds = [torch.optim.lr_scheduler.LambdaLR(opt, rule) for opt in (opt_g, opt_d)]
        return [opt_g, opt_d], scheds

    def on_fit_start(self) -> None:
        check_ddp_for_two_networks(self.trainer)  # each backward reaches only the generators or the critics
        total = self.hparams.n_epochs + self.hparams.n_epochs_decay
        if not self.trainer.fast_dev_run and self.trainer.max_epochs not in (None, -1, total):
            rank_zero_warn(f"trainer.max_epochs={self.trainer.max_epochs} but model.n_epochs + "
                           f"model.n_epochs_decay = {total}: the learning rate schedule will not end at 0")

    def on_train_epoch_end(self) -> None:
        self.log("train/lr", self.lr_schedulers()[0].get_last_lr()[0])  # the rate this epoch trained with
        for sched in self.lr_schedulers():  # manual optimization: Lightning does not step them
            sched.step()

    def on_validation_epoch_end(self) -> None:
        if self._val_batch is None or self.trainer.sanity_checking:
            return
        real_a, real_b = self._val_batch
        with torch.no_grad():
            fake_b, fake_a = self.gen_ab(real_a), self.gen_ba(real_b)
            rows_ab = [real_a, fake_b, self.gen_ba(fake_b)]
            rows_ba = [real_b, fake_a, self.gen_ab(fake_a)]
        for key, rows in (("val/a2b", rows_ab), ("val/b2a", rows_ba)):
            grid = image_grid(torch.cat([_rgb(r) for r in rows]), nrow=len(real_a), value_range=(-1, 1))
            log_image(self.trainer, key, grid)

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["image_pools"] = {"A": self.pool_a.state(), "B": self.pool_b.state()}

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        pools = checkpoint.get("image_pools") or {}
        self.pool_a.load_state(pools.get("A"), self.device)
        self.pool_b.load_state(pools.get("B"), self.device)

    def generator_losses(self, real_a: torch.Tensor, real_b: torch.Tensor) -> dict[str, torch.Tensor]:
        """The weighted generator loss terms, their sum ``g_loss``, and the fakes ``fake_a`` / ``fake_b``."""
        hp = self.hparams
        fake_b, fake_a = self.gen_ab(real_a), self.gen_ba(real_b)  # (B, C_B, H, W), (B, C_A, H, W)
        adv = gan_loss(self.disc_b(fake_b), True, hp.gan_mode) + gan_loss(self.disc_a(fake_a), True, hp.gan_mode)
        cycle = hp.lambda_cycle * (F.l1_loss(self.gen_ba(fake_b), real_a) + F.l1_loss(self.gen_ab(fake_a), real_b))
        idt = adv.new_zeros(())
        if hp.lambda_identity > 0:
            weight = hp.lambda_identity * hp.lambda_cycle
            idt = weight * (F.l1_loss(self.gen_ab(real_b), real_b) + F.l1_loss(self.gen_ba(real_a), real_a))
        return {"g_loss": adv + cycle + idt, "adv_loss": adv, "cycle_loss": cycle, "idt_loss": idt,
                "fake_a": fake_a, "fake_b": fake_b}

    def _discriminator_loss(self, disc: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        mode = self.hparams.gan_mode
        return 0.5 * (gan_loss(disc(real), True, mode) + gan_loss(disc(fake.detach()), False, mode))

    def _shared_eval(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> dict[str, list[torch.Tensor]]:
        real_a, real_b = batch
        fake_b, fake_a = self.gen_ab(real_a), self.gen_ba(real_b)
        rec_a, rec_b = self.gen_ba(fake_b), self.gen_ab(fake_a)
        # [-1, 1] data units -> [0, 1] pixel units: halve the L1.
        l1_a, l1_b = 0.5 * F.l1_loss(rec_a, real_a), 0.5 * F.l1_loss(rec_b, real_b)
        self.log_dict({f"{stage}/cycle_l1_a": l1_a, f"{stage}/cycle_l1_b": l1_b,
                       f"{stage}/cycle_l1": 0.5 * (l1_a + l1_b)}, sync_dist=True, prog_bar=False)
        return {"a2b": [_to_unit(_rgb(t)) for t in (real_a, fake_b, rec_a)],
                "b2a": [_to_unit(_rgb(t)) for t in (real_b, fake_a, rec_b)]}

    def _output_dir(self, default: str) -> Path:
        return output_folder(self.trainer, self.output_dir, default)


def _fresh_copy(net: nn.Module) -> nn.Module:
    """A structurally identical network with newly drawn weights (the second direction's net)."""
    twin = copy.deepcopy(net)
    for m in twin.modules():
        if m is not twin and hasattr(m, "reset_parameters"):
            m.reset_parameters()
    init_weights(twin)
    return twin


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    return ((x + 1) / 2).clamp(0, 1)


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """Grey ``(B, 1, H, W)`` -> ``(B, 3, H, W)`` so grids can mix grey and colour domains; RGB unchanged."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
