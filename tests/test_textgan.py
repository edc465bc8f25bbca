"""Text-conditional GAN: captions, tokenizer, text encoder, GAN-CLS loss, sample grid, predict, metrics."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rlgen.errors import RlgenError
from rlgen.lightning_modules.classifier import Classifier
from rlgen.lightning_modules.textgan import TextGAN, caption, random_captions
from rlgen.nets.gan import CharTextEncoder, CharTokenizer, TextConditionalDiscriminator, TextConditionalGenerator
from tests.conftest import CONFIGS, run_cli
from tests.test_classifier import save_classifier
from tests.test_gan import image_loader, quiet_trainer


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    """Trainers without a logger write their sample PNGs under the working directory: keep them out of the repo."""
    monkeypatch.chdir(tmp_path)


def tiny_textgan(**kwargs) -> TextGAN:
    return TextGAN(generator=TextConditionalGenerator(latent_dim=8, channels=4, text_dim=4),
                   discriminator=TextConditionalDiscriminator(channels=4, text_dim=4), **kwargs)


def test_captions():
    assert caption(7, 0) == "seven" and caption(7, 1) == "7" and caption(3, 2) == "the digit three"
    torch.manual_seed(0)
    labels = torch.arange(10).repeat(20)
    texts = random_captions(labels)
    for y, text in zip(labels.tolist(), texts, strict=True):
        assert str(y) in text or caption(y, 0) in text
    assert len(set(texts)) > 30, "templates must vary"


def test_tokenizer_pads_lowercases_and_maps_unknowns():
    tok = CharTokenizer(max_length=6)
    ids = tok(["Seven", "a 3?", "the digit seven"])
    assert ids.shape == (3, 6)
    assert ids[0].tolist()[:5] == tok(["seven"])[0].tolist() and ids[0, 5] == 0  # lower-cased, padded
    assert ids[1, 3] == 1  # "?" is unknown
    assert (ids[2] != 0).all()  # cut at max_length


def test_text_code_does_not_depend_on_padding():
    torch.manual_seed(0)
    enc = CharTextEncoder(out_dim=5).eval()
    tok = CharTokenizer()
    alone = enc(tok(["seven"]))
    padded = enc(tok(["seven", "a handwritten seven"]))[:1]
    torch.testing.assert_close(alone, padded)
    assert alone.shape == (1, 5)


def test_matching_aware_loss_weights():
    class MeanD(nn.Module):
        """logit = mean pixel: +1 for the 'real' images, -1 for the 'fake' ones, whatever the text."""

        def forward(self, x, tokens):
            return x.flatten(1).mean(1) + 0 * tokens.sum()

    model = tiny_textgan()
    model.discriminator = MeanD()
    real, fake = torch.ones(4, 1, 28, 28), -torch.ones(4, 1, 28, 28)
    labels = torch.tensor([0, 1, 2, 3])
    tokens = model._tokens(random_captions(labels))
    loss, real_logits, fake_logits = model._discriminator_loss(real, fake, tokens, labels)
    # -log D(x,h) - 1/2 [log(1 - D(x,h')) + log(1 - D(G(z),h))] with logits +1 (real, either text), -1 (fake)
    expected = F.softplus(torch.tensor(-1.0)) + 0.5 * (F.softplus(torch.tensor(1.0)) + F.softplus(torch.tensor(-1.0)))
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    model.hparams.matching_aware = False
    plain, _, _ = model._discriminator_loss(real, fake, tokens, labels)
    assert plain.item() == pytest.approx(2 * math.log(1 + math.exp(-1)), rel=1e-5)


def test_sample_grid_has_one_row_per_digit():
    model = tiny_textgan()
    images, nrow = model._sample_grid()
    assert images.shape == (80, 1, 28, 28) and nrow == 8
    assert 0 <= images.min() and images.max() <= 1


def test_predict_writes_one_grid_per_prompt(tmp_path):
    prompts = ["seven", "the digit 3", "A handwritten 5!"]
    model = tiny_textgan(prompts=prompts, samples_per_prompt=6, predict_dir=str(tmp_path / "out"))
    out = quiet_trainer().predict(model)
    assert [o.shape for o in out] == [(1, 6, 1, 28, 28)] * 3
    names = sorted(p.name for p in (tmp_path / "out").glob("*.png"))
    assert names == ["000_seven.png", "001_the_digit_3.png", "002_a_handwritten_5.png"]


def test_predict_errors():
    with pytest.raises(RlgenError, match="needs prompts"):
        quiet_trainer().predict(tiny_textgan())
    with pytest.raises(RlgenError, match="--data null"):
        tiny_textgan(prompts=["seven"]).predict_step((torch.rand(2, 1, 28, 28), torch.tensor([1, 2])), 0)
    for kwargs in ({"samples_per_prompt": 0}, {"prompts": ["seven", " "]}, {"k": 0}):
        with pytest.raises(RlgenError):
            tiny_textgan(**kwargs)


def test_fit_logs_prompt_accuracy(tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / "clf.ckpt"
    save_classifier(Classifier(width=8), ckpt)
    model = tiny_textgan(classifier_ckpt=str(ckpt))
    trainer = quiet_trainer(limit_train_batches=2)
    trainer.fit(model, image_loader(n=16), image_loader(n=16))
    metrics = trainer.callback_metrics
    assert {"val/prompt_acc", "val/fid", "val/is", "train/d_loss", "train/g_loss"} <= set(metrics)
    assert 0.0 <= metrics["val/prompt_acc"] <= 1.0
    assert "prompts" not in model.hparams and "classifier_ckpt" not in model.hparams, (
        "run-time arguments must not be restored from checkpoints over the command line")


def test_cli_predict_with_prompts(tmp_path, monkeypatch, mnist_dir):
    monkeypatch.chdir(tmp_path)
    cfg = str(CONFIGS / "textgan" / "mnist.yaml")
    small = ["--model.generator.init_args.channels=4", "--model.discriminator.init_args.channels=4",
             "--trainer.enable_progress_bar=false"]
    run_cli("fit", "-c", cfg, f"--data.data_dir={mnist_dir}", "--data.num_workers=0", "--model.classifier_ckpt=null",
            "--trainer.max_steps=2", "--trainer.limit_val_batches=0", *small)
    (last,) = tmp_path.rglob("last.ckpt")
    run_cli("predict", "-c", cfg, "--data=null", f"--ckpt_path={last}", "--model.samples_per_prompt=4",
            "--model.prompts=[\"seven\", \"the digit 3\"]", "--model.predict_dir=drawn", *small)
    assert sorted(p.name for p in (tmp_path / "drawn").glob("*.png")) == ["000_seven.png", "001_the_digit_3.png"]
