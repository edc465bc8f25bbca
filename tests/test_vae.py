"""The VAE: KL and ELBO against hand-computed values, the IWAE bound, shapes, and the CLI round trip."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image

from rlgen.errors import RlgenError
from rlgen.lightning_modules.vae import (
    VAE,
    bernoulli_log_prob,
    gaussian_log_prob,
    kl_standard_normal,
)
from tests.test_autoencoders import Const, run_tiny

LN2 = math.log(2)


def test_kl_to_the_standard_normal_matches_hand_computation():
    mu, logvar = torch.tensor([1.0, 0.0]), torch.tensor([0.0, math.log(4)])
    # dim 0: 1/2 (1 + 1 - 1 - 0) = 1/2;  dim 1: 1/2 (0 + 4 - 1 - ln 4) = 3/2 - ln 2
    assert kl_standard_normal(mu, logvar).item() == pytest.approx(2 - LN2, abs=1e-6)
    reference = torch.distributions.kl_divergence(
        torch.distributions.Normal(mu, (0.5 * logvar).exp()), torch.distributions.Normal(0.0, 1.0)).sum()
    assert kl_standard_normal(mu, logvar).item() == pytest.approx(reference.item(), abs=1e-6)
    assert kl_standard_normal(torch.zeros(3), torch.zeros(3)).item() == 0.0


def test_likelihoods_match_hand_computation():
    logits = torch.tensor([0.0, math.log(3)]).view(1, 1, 1, 2)  # pixel probabilities 1/2 and 3/4
    x = torch.tensor([1.0, 0.0]).view(1, 1, 1, 2)
    assert bernoulli_log_prob(logits, x).item() == pytest.approx(math.log(0.5) + math.log(0.25), abs=1e-6)
    one = torch.ones(1, 1, 1, 1)
    assert gaussian_log_prob(one, 0 * one, torch.tensor(0.0)).item() == pytest.approx(
        -0.5 - 0.5 * math.log(2 * math.pi), abs=1e-6)
    assert gaussian_log_prob(one, 0 * one, torch.tensor(LN2)).item() == pytest.approx(
        -0.125 - LN2 - 0.5 * math.log(2 * math.pi), abs=1e-6)


def test_neg_elbo_of_the_module_matches_hand_computation():
    model = VAE(arch="mlp", latent_dim=2, hidden_dim=8)
    # q(z|x) = N((1, 0), diag(1, 4)) for every x; the decoder ignores z and predicts p = 3/4 for every pixel.
    model.encoder = Const(torch.tensor([1.0, 0.0, 0.0, math.log(4)]))
    model.decoder = Const(torch.full((1, 28, 28), math.log(3)))
    x = torch.zeros(2, 1, 28, 28)
    x.view(2, -1)[:, :100] = 1.0  # 100 ones and 684 zeros per image
    rec, kl = model._elbo_terms(x)
    assert rec.item() == pytest.approx(-(100 * math.log(0.75) + 684 * math.log(0.25)), rel=1e-6)
    assert kl.item() == pytest.approx(2 - LN2, abs=1e-6)
    # With a z-independent decoder and the exact posterior family, IWAE = ELBO up to the MC KL estimate.
    model.posterior = lambda x: (torch.zeros(x.shape[0], 2), torch.zeros(x.shape[0], 2))  # q = prior: KL = 0
    assert (-model.iwae_log_likelihood(x, 10)).tolist() == pytest.approx([rec.item()] * 2, rel=1e-6)


def test_iwae_bound_is_above_the_elbo_and_tightens_with_k():
    torch.manual_seed(0)
    model = VAE(arch="mlp", latent_dim=4, hidden_dim=64, iwae_chunk=7).eval()
    with torch.no_grad():  # make p(x|z) depend strongly on z, so that the bounds differ clearly
        model.decoder.net[-2].weight.mul_(8)
    x = torch.bernoulli(torch.rand(256, 1, 28, 28))
    with torch.no_grad():
        mu, logvar = model.posterior(x)
        z = mu + (0.5 * logvar).exp() * torch.randn(200, *mu.shape)  # 200 samples per image for E_q log p(x|z)
        rec = bernoulli_log_prob(model.decoder(z.flatten(0, 1)).unflatten(0, z.shape[:2]), x).mean(0)
        elbo = (rec - kl_standard_normal(mu, logvar)).mean().item()
    bounds = {k: model.iwae_log_likelihood(x, k).mean().item() for k in (1, 10, 100)}
    assert bounds[1] == pytest.approx(elbo, abs=0.02 * abs(elbo))  # L_1 is an unbiased ELBO estimate
    assert elbo < bounds[10] < bounds[100], (elbo, bounds)
    assert bounds[100] - elbo > 5, "the test needs a clear gap to be meaningful"
    # Chunking (7 samples at a time) must not change the estimate beyond Monte Carlo noise.
    model.iwae_chunk = 100
    assert model.iwae_log_likelihood(x, 100).mean().item() == pytest.approx(bounds[100], abs=0.5)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_shapes_and_prior_samples(arch):
    model = VAE(arch=arch, latent_dim=8, hidden_dim=32).eval()
    x = torch.rand(5, 1, 28, 28)
    mu, logvar = model.posterior(x)
    assert mu.shape == logvar.shape == (5, 8)
    assert model.encode(x).shape == (5, 8)
    assert model(x).shape == (5, 1, 28, 28)
    samples = model.sample(6)
    assert samples.shape == (6, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1
    z = torch.randn(3, 8)
    torch.testing.assert_close(model.sample(3, z), model.sample(3, z))  # a fixed z gives fixed samples
    gaussian = VAE(arch=arch, latent_dim=8, hidden_dim=32, likelihood="gaussian")
    assert gaussian._elbo_terms(x)[0].shape == ()
    assert gaussian.log_sigma_x.requires_grad


@pytest.mark.parametrize("kwargs", [{"latent_dim": 0}, {"lr": -1.0}, {"beta": -0.5}, {"iwae_samples": -1},
                                    {"iwae_chunk": 0}])
def test_bad_arguments(kwargs):
    with pytest.raises(RlgenError):
        VAE(**kwargs)


@pytest.fixture(scope="module")
def vae_run(mnist_dir, tmp_path_factory):
    """One tiny real fit of configs/vae/mnist.yaml; returns (run dir, last checkpoint)."""
    cli = run_tiny("fit", "vae", mnist_dir, tmp_path_factory.mktemp("vae_runs"), "--trainer.max_epochs=1",
                   "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=2",
                   "--trainer.enable_progress_bar=false")
    log_dir = cli.trainer.logger.log_dir
    return log_dir, f"{log_dir}/checkpoints/last.ckpt"


@pytest.mark.xdist_group("vae_run")
def test_fit_writes_image_grids(vae_run):
    from pathlib import Path

    images = Path(vae_run[0]) / "images"
    for key in ("val_reconstructions", "val_prior_samples", "val_interpolation"):
        pngs = list((images / key).glob("*.png"))
        assert len(pngs) == 1, f"{key}: {pngs}"
    # 64 fixed-z samples, 8 per row: 8 rows of 28 pixels with 2-pixel padding.
    assert Image.open(next((images / "val_prior_samples").glob("*.png"))).size == (8 * 30 + 2, 8 * 30 + 2)
    # Interpolation: 10 images in one row.
    assert Image.open(next((images / "val_interpolation").glob("*.png"))).size == (10 * 30 + 2, 32)


@pytest.mark.xdist_group("vae_run")
def test_rlgen_test_reports_neg_elbo_and_iwae_nll(vae_run, mnist_dir, tmp_path, capsys):
    cli = run_tiny("test", "vae", mnist_dir, tmp_path, "--trainer.limit_test_batches=2", "--model.iwae_samples=20",
                   f"--ckpt_path={vae_run[1]}")
    metrics = cli.trainer.callback_metrics
    assert {"test/neg_elbo", "test/nll_iwae"} <= set(metrics)
    assert cli.model.iwae_samples == 20, "--model.iwae_samples must win over the checkpoint"
    # The IWAE estimate is a tighter bound than the ELBO (in expectation; the gap is large this early).
    assert 0 < metrics["test/nll_iwae"] <= metrics["test/neg_elbo"] + 1.0
    printed = capsys.readouterr().out
    assert "test/nll_iwae" in printed and "test/neg_elbo" in printed


@pytest.mark.xdist_group("vae_run")
def test_predict_writes_prior_sample_grids(vae_run, mnist_dir, tmp_path):
    out = tmp_path / "samples"
    run_tiny("predict", "vae", mnist_dir, tmp_path, "--data.batch_size=32", "--trainer.limit_predict_batches=2",
             f"--model.predict_dir={out}", f"--ckpt_path={vae_run[1]}")
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == ["samples_0000.png", "samples_0001.png"]
    assert Image.open(out / pngs[0]).size == (16 * 30 + 2, 2 * 30 + 2)  # 32 samples, 16 per row


def test_callback_prior_samples_use_a_fixed_z(tmp_path):
    from types import SimpleNamespace

    from rlgen.callbacks.reconstructions import AutoencoderImages

    torch.manual_seed(0)
    model = VAE(arch="mlp", latent_dim=4, hidden_dim=32)
    callback = AutoencoderImages(num_images=4, num_samples=16, interpolation_steps=5)
    batch = (torch.rand(6, 1, 28, 28), torch.tensor([3, 3, 5, 1, 1, 1]))
    callback.on_validation_batch_end(None, model, None, batch, batch_idx=0)
    for step in (1, 2):
        loop = SimpleNamespace(epoch_loop=SimpleNamespace(_batches_that_stepped=step))
        trainer = SimpleNamespace(fit_loop=loop, is_global_zero=True, default_root_dir=str(tmp_path), loggers=[])
        torch.manual_seed(step)  # the global RNG must not matter
        callback.log_images(trainer, model, "val")
    first, second = sorted((tmp_path / "images" / "val_prior_samples").glob("*.png"))
    assert first.read_bytes() == second.read_bytes()
    assert Image.open(first).size == (8 * 30 + 2, 2 * 30 + 2)  # 16 samples, 8 per row
    assert Image.open(next((tmp_path / "images" / "val_interpolation").glob("*.png"))).size == (5 * 30 + 2, 32)
    # Interpolation endpoints: image 0 (class 3) and image 2, the first of another class.
    ends = callback._interpolate(model, batch[0], batch[1])[[0, -1]]
    torch.testing.assert_close(ends, model(batch[0][[0, 2]]))
    with pytest.raises(RlgenError):
        AutoencoderImages(every_n_epochs=0)
