"""AutoEncoder and DenoisingAutoEncoder: losses by hand, masking noise, shapes, learning, predict, CLI test."""

from __future__ import annotations

import math

import pytest
import torch
from PIL import Image
from torch import nn

from rlgen.cli import run
from rlgen.errors import RlgenError
from rlgen.lightning_modules.autoencoder import AutoEncoder, DenoisingAutoEncoder, check_unit_range, mask_pixels
from tests.conftest import CONFIGS


def run_tiny(subcommand: str, algo: str, mnist_dir, log_root, *extra: str):
    """``rlgen <subcommand> -c configs/<algo>/mnist.yaml`` on the tiny MNIST, logging under ``log_root``."""
    return run([subcommand, "-c", str(CONFIGS / algo / "mnist.yaml"), f"--data.data_dir={mnist_dir}",
                "--data.num_workers=0", f"--trainer.logger.init_args.save_dir={log_root}",
                f"--trainer.default_root_dir={log_root}", *extra])


class Const(nn.Module):
    """A stub network that ignores its input and returns a fixed tensor, repeated over the batch."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.value.expand(x.shape[0], *self.value.shape)


@pytest.mark.parametrize("reconstruction, expected_rec", [("bce", math.log(2)), ("mse", 0.25)])
def test_loss_matches_hand_computation(reconstruction, expected_rec):
    model = AutoEncoder(latent_dim=2, hidden_dim=8, reconstruction=reconstruction, l1_weight=0.1)
    model.encoder = Const(torch.tensor([1.0, -3.0]))  # mean |z| = 2
    model.decoder = Const(torch.zeros(1, 28, 28))  # sigmoid(0) = 1/2 everywhere
    x = torch.ones(3, 1, 28, 28)
    # bce: -log(1/2) = ln 2 per pixel; mse: (1/2 - 1)^2 = 1/4 per pixel
    loss, rec, l1 = model._loss(x, x)
    assert rec.item() == pytest.approx(expected_rec, abs=1e-6)
    assert l1.item() == pytest.approx(2.0)
    assert loss.item() == pytest.approx(expected_rec + 0.1 * 2.0, abs=1e-6)


@pytest.mark.parametrize("fraction, n_masked", [(0.25, 196), (0.5, 392), (0.0, 0), (1.0, 784)])
def test_masking_zeroes_exactly_the_fraction(fraction, n_masked):
    torch.manual_seed(0)
    x = torch.rand(16, 1, 28, 28) * 0.9 + 0.1  # no zeros before masking
    masked = mask_pixels(x, fraction)
    zeros = (masked == 0).flatten(1).sum(1)
    assert zeros.tolist() == [n_masked] * 16
    kept = masked != 0
    torch.testing.assert_close(masked[kept], x[kept])  # unmasked pixels are untouched
    if 0 < fraction < 1:
        masks = (masked == 0).flatten(1)
        assert not torch.equal(masks[0], masks[1]), "each image gets its own random mask"
        assert not torch.equal(masks, (mask_pixels(x, fraction) == 0).flatten(1)), "a fresh mask on every call"


def test_dae_corruptions():
    torch.manual_seed(0)
    x = torch.full((64, 1, 28, 28), 0.5)
    dae = DenoisingAutoEncoder(corruption="mask", noise_level=0.25, latent_dim=4, hidden_dim=16)
    assert ((dae.corrupt(x) == 0).flatten(1).sum(1) == 196).all()
    gauss = DenoisingAutoEncoder(corruption="gaussian", noise_level=0.1, latent_dim=4, hidden_dim=16)
    noisy = gauss.corrupt(x)
    assert 0 <= noisy.min() and noisy.max() <= 1
    assert (noisy - x).std().item() == pytest.approx(0.1, rel=0.05)
    assert AutoEncoder(latent_dim=4, hidden_dim=16).corrupt(x) is x  # the plain AE trains on clean inputs


@pytest.mark.parametrize("arch", ["mlp", "conv"])
@pytest.mark.parametrize("latent_dim", [16, 1024])  # undercomplete and overcomplete
def test_shapes(arch, latent_dim):
    model = AutoEncoder(arch=arch, latent_dim=latent_dim, hidden_dim=64)
    x = torch.rand(4, 1, 28, 28)
    assert model.encode(x).shape == (4, latent_dim)
    out = model(x)
    assert out.shape == (4, 1, 28, 28) and 0 <= out.min() and out.max() <= 1


@pytest.mark.parametrize("cls, kwargs", [
    (AutoEncoder, {"latent_dim": 0}), (AutoEncoder, {"hidden_dim": -4}), (AutoEncoder, {"lr": 0.0}),
    (AutoEncoder, {"l1_weight": -1e-3}), (DenoisingAutoEncoder, {"noise_level": 1.5}),
    (DenoisingAutoEncoder, {"corruption": "gaussian", "noise_level": -0.1}),
])
def test_bad_arguments(cls, kwargs):
    with pytest.raises(RlgenError):
        cls(**kwargs)


def test_normalized_inputs_are_refused_with_a_hint():
    with pytest.raises(RlgenError, match="transform plain"):
        check_unit_range(torch.randn(2, 1, 28, 28))


@pytest.fixture(scope="module")
def dae_run(mnist_dir, tmp_path_factory):
    """Five short epochs (40 batches of 32, lr 2e-3) of configs/dae/mnist.yaml on the tiny data; returns (cli,
    last checkpoint)."""
    cli = run_tiny("fit", "dae", mnist_dir, tmp_path_factory.mktemp("dae_runs"), "--data.val_size=1000",
                   "--data.batch_size=32", "--trainer.limit_train_batches=40", "--model.lr=0.002",
                   "--trainer.max_epochs=5", "--trainer.limit_val_batches=2", "--trainer.enable_progress_bar=false")
    return cli, f"{cli.trainer.logger.log_dir}/checkpoints/last.ckpt"


@pytest.mark.xdist_group("dae_run")
def test_dae_learns_and_writes_grids(dae_run):
    cli, _ = dae_run
    metrics = cli.trainer.callback_metrics
    # The tiny digits are a bright bar on dim noise; predicting the mean image gives an MSE near 0.05.
    # (It sits on that plateau for a few epochs, then learns the bar position.)
    assert metrics["val/recon_mse_clean"] < 0.02, metrics
    assert metrics["val/recon_mse_corrupted"] < 0.02, metrics
    from pathlib import Path

    grids = sorted(p.parent.name for p in (Path(cli.trainer.logger.log_dir) / "images").rglob("*.png"))
    assert grids == ["val_interpolation"] * 3 + ["val_reconstructions"] * 3  # every 2 epochs: 0, 2, 4
    recon = next((Path(cli.trainer.logger.log_dir) / "images" / "val_reconstructions").glob("*.png"))
    assert Image.open(recon).size == (8 * 30 + 2, 3 * 30 + 2)  # rows: input / corrupted / output


@pytest.mark.xdist_group("dae_run")
def test_rlgen_test_reports_clean_and_corrupted_mse(dae_run, mnist_dir, tmp_path):
    cli = run_tiny("test", "dae", mnist_dir, tmp_path, "--trainer.limit_test_batches=2", f"--ckpt_path={dae_run[1]}")
    metrics = cli.trainer.callback_metrics
    assert {"test/recon_mse_clean", "test/recon_mse_corrupted", "test/loss"} <= set(metrics)
    assert 0 < metrics["test/recon_mse_clean"] < 0.02 and 0 < metrics["test/recon_mse_corrupted"] < 0.02
    assert metrics["test/recon_mse_clean"] != metrics["test/recon_mse_corrupted"]


@pytest.mark.xdist_group("dae_run")
def test_predict_writes_reconstruction_grids(dae_run, mnist_dir, tmp_path):
    out = tmp_path / "recon"
    run_tiny("predict", "dae", mnist_dir, tmp_path, "--data.batch_size=10", "--trainer.limit_predict_batches=3",
             f"--model.predict_dir={out}", f"--ckpt_path={dae_run[1]}")
    pngs = sorted(p.name for p in out.glob("*.png"))
    assert pngs == [f"reconstructions_{i:04d}.png" for i in range(3)]
    assert Image.open(out / pngs[0]).size == (10 * 30 + 2, 3 * 30 + 2)  # input / corrupted / output rows
