"""A text-conditional DCGAN on MNIST: "the digit 7" in, a handwritten seven out."""

from __future__ import annotations

import re
from typing import Literal

import torch
import torch.nn.functional as F
from pytorch_lightning.cli import OptimizerCallable
from torch import nn
from torch.utils.data import DataLoader
from torchvision.utils import save_image

from rlgen.errors import RlgenError, check_range
from rlgen.lightning_modules.gan_system import GANSystem, generator_loss, mode_seeking_loss, mode_seeking_pairs
from rlgen.media.images import image_grid
from rlgen.nets.gan import CharTokenizer, TextConditionalDiscriminator, TextConditionalGenerator
from rlgen.paths import output_folder

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
CAPTION_TEMPLATES = (
    "{word}", "{digit}", "the digit {word}", "the digit {digit}", "a handwritten {word}",
    "a handwritten {digit}", "the number {word}", "an image of a {word}",
)


def caption(label: int, template: int) -> str:
    """The caption of digit ``label`` written with ``CAPTION_TEMPLATES[template]``."""
    return CAPTION_TEMPLATES[template].format(word=DIGIT_WORDS[label], digit=label)


def random_captions(labels: torch.Tensor) -> list[str]:
    """One caption per label, each with a template drawn uniformly (from torch's seeded RNG)."""
    templates = torch.randint(len(CAPTION_TEMPLATES), (len(labels),)).tolist()
    return [caption(int(y), t) for y, t in zip(labels.tolist(), templates, strict=True)]


class TextGAN(GANSystem):
    """Text-to-image GAN for MNIST digits (Reed et al. 2016, "Generative Adversarial Text to Image Synthesis").

    Each training digit gets a random caption ("seven", "the digit 7", "a handwritten 7", ...). A
    character-level text encoder phi(t) (BiGRU, learned from scratch with its network) is projected to a
    few dimensions and depth-concatenated with the noise in G and with the 7x7 feature maps in D.

    Loss (matching-aware discriminator, "GAN-CLS", the paper's Algorithm 1), with h = phi(t) of the right
    caption and h' of a caption of another digit:
        L_D = -log D(x, h) - 1/2 [log(1 - D(x, h')) + log(1 - D(G(z, h), h))]
        L_G = -log D(G(z, h), h)                       (non-saturating; ``loss: minimax`` as in GAN)
    With ``matching_aware: false``, L_D is the plain conditional GAN loss (no wrong-caption term).

    Optimization, step counting and logging are those of :class:`~rlgen.lightning_modules.gan.GAN` (k D
    steps per G step, ``global_step`` = D + G optimizer steps, shared through ``gan_system.GANSystem``).
    Validation logs ``val/prompt_acc`` (the share of generated digits that the MNIST classifier assigns
    to the captioned digit) next to ``val/fid`` and ``val/is`` when ``classifier_ckpt`` is set.
    ``rlgen predict ... --model.prompts '["seven", "the digit 3"]'`` writes one grid of
    ``samples_per_prompt`` images per prompt into ``predict_dir``.

    Deviations from the paper: captions come from 8 templates, not crowd-sourced descriptions; the text
    encoder is trained jointly (G and D each own one) instead of being a pre-trained char-CNN-RNN; no
    GAN-INT interpolation of embeddings; 28x28 DCGAN networks.
    """

    RUN_TIME_ARGS = ("classifier_ckpt", "prompts", "samples_per_prompt", "predict_dir")
    QUALITY_METRICS = ("val/fid", "val/is", "val/prompt_acc")

    def __init__(
        self,
        generator: nn.Module | None = None,
        discriminator: nn.Module | None = None,
        optimizer_g: OptimizerCallable | None = None,
        optimizer_d: OptimizerCallable | None = None,
        k: int = 1,
        loss: Literal["non_saturating", "minimax"] = "non_saturating",
        matching_aware: bool = True,
        mode_seeking: float = 0.0,
        sample_every_n_epochs: int = 1,
        classifier_ckpt: str | None = None,
        sample_seed: int = 1234,
        prompts: list[str] | None = None,
        samples_per_prompt: int = 64,
        predict_dir: str | None = None,
    ) -> None:
        """
        Args:
            generator: G(z, tokens) -> images in [-1, 1]; default TextConditionalGenerator().
            discriminator: D(x, tokens) -> logits; default TextConditionalDiscriminator().
            optimizer_g: G's optimizer (G's text encoder included); default Adam(2e-4, betas=(0.5, 0.999)).
            optimizer_d: D's optimizer (D's text encoder included); default Adam(2e-4, betas=(0.5, 0.999)).
            k: discriminator steps per generator step (>= 1).
            loss: generator loss, ``non_saturating`` or ``minimax``.
            matching_aware: also teach D that a real image with a wrong caption is fake (GAN-CLS).
            mode_seeking: weight of the mode-seeking term in G's loss (as in GAN; Mao et al. 2019): two
                noises with one caption must give two different images; 0: off.
            sample_every_n_epochs: log the grid (one row per digit, fixed noise) every this many epochs.
            classifier_ckpt: MNIST Classifier checkpoint for val/prompt_acc, val/fid, val/is (null: skip).
            sample_seed: seed of the fixed noise of the sample grid.
            prompts: texts to draw for ``rlgen predict``, e.g. ``["seven", "the digit 3"]``.
            samples_per_prompt: images generated per prompt by ``predict``.
            predict_dir: folder for the PNG grid of each prompt from ``predict`` (None: ``<run dir>/predictions``).
        """
        super().__init__(generator if generator is not None else TextConditionalGenerator(),
                         discriminator if discriminator is not None else TextConditionalDiscriminator(),
                         optimizer_g, optimizer_d, k, sample_every_n_epochs, 80, classifier_ckpt, sample_seed,
                         predict_dir, label_metric="prompt_acc")
        if loss not in ("non_saturating", "minimax"):
            raise RlgenError(f"model.loss must be non_saturating or minimax, got {loss!r}")
        check_range(">= 0", mode_seeking=mode_seeking)  # 0: off
        check_range(">= 1", samples_per_prompt=samples_per_prompt)
        if prompts is not None and not all(isinstance(p, str) and p.strip() for p in prompts):
            raise RlgenError(f"model.prompts must be a list of non-empty strings, got {prompts!r}")
        self.save_hyperparameters(ignore=list(self.RUN_TIME_ARGS))
        self.tokenizer = CharTokenizer()
        self.prompts, self.samples_per_prompt = prompts, samples_per_prompt

    def forward(self, z: torch.Tensor, texts: list[str]) -> torch.Tensor:
        """Images ``(B, C, H, W)`` in [0, 1] for noise ``(B, latent_dim)`` and ``B`` texts."""
        assert len(texts) == z.shape[0], f"need one text per noise vector, got {len(texts)} and {z.shape[0]}"
        return (self.sampler(z, self._tokens(texts)) + 1) / 2

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        x, labels = batch  # (B, C, H, W) in [0, 1], (B,) digits
        real, tokens = x * 2 - 1, self._tokens(random_captions(labels))  # a fresh caption for each image
        opt_d, opt_g = self.optimizers()
        b, hp = real.shape[0], self.hparams

        # Discriminator step: right caption, wrong caption (GAN-CLS) and fakes; G is frozen.
        with self.toggled_optimizer(opt_d):
            with torch.no_grad():
                fake = self.generator(self.noise(b), tokens)  # (B, C, H, W)
            d_loss, real_logits, fake_logits = self._discriminator_loss(real, fake, tokens, labels)
            self.optimize(opt_d, d_loss)
        self.batches_seen += 1
        self._log_discriminator_step(d_loss, real_logits, fake_logits)

        # Generator step after every k-th discriminator step, on fresh noise; D is frozen.
        if self.batches_seen % hp.k == 0:
            with self.toggled_optimizer(opt_g):
                z = self.noise(b)
                (tokens,) = mode_seeking_pairs((tokens,)) if hp.mode_seeking else (tokens,)
                fake = self.generator(z, tokens)
                g_loss = generator_loss(self.discriminator(fake, tokens), hp.loss)
                if hp.mode_seeking:
                    g_loss = g_loss + hp.mode_seeking * mode_seeking_loss(fake, z)
                self.optimize(opt_g, g_loss)
            self.log("train/g_loss", g_loss, prog_bar=True)

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: list[str], batch_idx: int) -> torch.Tensor:
        """Generate ``samples_per_prompt`` images for each prompt of ``batch`` and write one grid per prompt."""
        if not (isinstance(batch, (list, tuple)) and all(isinstance(p, str) for p in batch)):
            raise RlgenError("TextGAN predict draws the --model.prompts; run it without a DataModule "
                             "(add --data null)")
        out_dir = output_folder(self.trainer, self.predict_dir, "predictions")
        n = self.samples_per_prompt
        grids = []
        for i, prompt in enumerate(batch):
            images = self(self.noise(n), [prompt] * n)  # (n, C, H, W) in [0, 1]
            index = batch_idx * len(batch) + i
            save_image(image_grid(images, nrow=8), out_dir / f"{index:03d}_{_slug(prompt)}.png")
            grids.append(images)
        return torch.stack(grids)  # (P, n, C, H, W)

    def predict_dataloader(self) -> DataLoader:
        if not self.prompts:
            raise RlgenError("TextGAN predict needs prompts: --model.prompts '[\"seven\", \"the digit 3\"]'")
        return DataLoader(self.prompts, batch_size=1, collate_fn=list)

    # ------------------------------------------------------------------------------- helpers
    def _discriminator_loss(
        self, real: torch.Tensor, fake: torch.Tensor, tokens: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """L_D (GAN-CLS with ``matching_aware``), and D's logits on the real and on the fake images."""
        real_logits, fake_logits = self.discriminator(real, tokens), self.discriminator(fake, tokens)
        real_loss = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
        fake_loss = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
        if not self.hparams.matching_aware:
            return real_loss + fake_loss, real_logits, fake_logits
        other = (labels + torch.randint(1, 10, labels.shape, device=labels.device)) % 10  # never the same digit
        wrong_logits = self.discriminator(real, self._tokens(random_captions(other)))
        wrong_loss = F.binary_cross_entropy_with_logits(wrong_logits, torch.zeros_like(wrong_logits))
        return real_loss + 0.5 * (wrong_loss + fake_loss), real_logits, fake_logits

    def _evaluate(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        """D's outputs on real and generated images; FID / IS / prompt accuracy when a classifier is set."""
        x, labels = batch
        real, tokens = x * 2 - 1, self._tokens(random_captions(labels))
        fake = self.sampler(self.noise(real.shape[0]), tokens)
        _, real_logits, fake_logits = self._discriminator_loss(real, fake, tokens, labels)
        self._log_evaluation(stage, real, fake, real_logits, fake_logits, labels)

    def _sample_grid(self) -> tuple[torch.Tensor, int]:
        per_row = self.fixed_z.shape[0] // 10
        texts = [f"the digit {d}" for d in range(10) for _ in range(per_row)]  # row d: digit d
        return self(self.fixed_z[: 10 * per_row], texts), per_row

    def _tokens(self, texts: list[str]) -> torch.Tensor:
        return self.tokenizer(texts).to(self.device)  # (B, L)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_")[:40] or "prompt"
