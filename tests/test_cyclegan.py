"""CycleGAN: image pool, LR schedule, network shapes, hand-computed losses, training / test / predict end to end."""

from __future__ import annotations

import pytest
import torch
from PIL import Image
from torch import nn

from rlgen.errors import RlgenError
from rlgen.lightning_modules.cyclegan import CycleGAN, ImagePool, gan_loss, linear_decay_factor
from rlgen.nets.cyclegan import PatchDiscriminator, ResnetGenerator
from tests.conftest import CONFIGS, run_cli

TINY_NETS = [
    "--model.generator_ab.init_args.ngf=4", "--model.generator_ab.init_args.n_blocks=1",
    "--model.discriminator_b.init_args.ndf=4", "--data.num_workers=0", "--trainer.enable_progress_bar=false",
]


# ---------------------------------------------------------------- image pool

def _batch(start: int, n: int = 10) -> torch.Tensor:
    """n distinct (1, 2, 2) images; image i is filled with the value start + i."""
    return torch.arange(start, start + n, dtype=torch.float32).view(n, 1, 1, 1).expand(n, 1, 2, 2).clone()


def test_image_pool_fills_to_capacity_returning_the_inputs():
    pool = ImagePool(50, generator=torch.Generator().manual_seed(0))
    for k in range(5):
        x = _batch(10 * k)
        assert torch.equal(pool.query(x), x)
    assert len(pool.images) == 50
    assert sorted(float(im[0, 0, 0]) for im in pool.images) == list(range(50))


def test_image_pool_returns_current_or_stored_and_swaps_them():
    pool = ImagePool(50, generator=torch.Generator().manual_seed(0))
    pool.query(_batch(0, 50))
    from_pool = 0
    for k in range(100):  # 1000 fresh images, values 1000.. never seen before
        stored = sorted(float(im[0, 0, 0]) for im in pool.images)
        x = _batch(1000 + 10 * k)
        out = pool.query(x)
        assert out.shape == x.shape and len(pool.images) == 50
        for new, got in zip(x, out, strict=True):  # replay the batch: each image is the new one or a swap
            v, g = float(new[0, 0, 0]), float(got[0, 0, 0])
            if g != v:  # a stored image came out, the new one took its place
                assert g in stored, f"{g} was never in the pool"
                stored[stored.index(g)] = v
                from_pool += 1
        assert sorted(stored) == sorted(float(im[0, 0, 0]) for im in pool.images)
    assert 400 < from_pool < 600, f"expected about half of 1000 queries served from the pool, got {from_pool}"


def test_image_pool_is_seeded_and_size_zero_is_a_pass_through():
    outs = []
    for _ in range(2):
        pool = ImagePool(5, generator=torch.Generator().manual_seed(3))
        outs.append(torch.cat([pool.query(_batch(10 * k)) for k in range(6)]))
    assert torch.equal(outs[0], outs[1])
    x = _batch(0)
    assert torch.equal(ImagePool(0).query(x), x)


def test_image_pool_state_round_trip():
    pool = ImagePool(4)
    pool.query(_batch(0, 3))
    other = ImagePool(4)
    other.load_state(pool.state(), torch.device("cpu"))
    assert torch.equal(torch.stack(other.images), torch.stack(pool.images))
    other.load_state(None, torch.device("cpu"))
    assert other.images == []


# ---------------------------------------------------------------- learning-rate schedule

def test_linear_decay_factor_values():
    values = [linear_decay_factor(e, 3, 4) for e in range(9)]
    assert values == pytest.approx([1, 1, 1, 0.8, 0.6, 0.4, 0.2, 0.0, 0.0])


def test_schedulers_in_configure_optimizers_follow_the_policy():
    model = CycleGAN(_Scale(1.0), _Const(0.0), _Scale(1.0), _Const(0.0), lr=1e-3, n_epochs=2, n_epochs_decay=3)
    opts, scheds = model.configure_optimizers()
    seen = []
    for _ in range(5):
        seen.append([o.param_groups[0]["lr"] for o in opts])
        for o, s in zip(opts, scheds, strict=True):
            o.step()  # no gradients: a no-op, but the order PyTorch expects
            s.step()
    seen.append([o.param_groups[0]["lr"] for o in opts])
    assert [g for g, _ in seen] == pytest.approx([1e-3, 1e-3, 0.75e-3, 0.5e-3, 0.25e-3, 0.0])
    assert all(g == d for g, d in seen)


# ---------------------------------------------------------------- networks

def test_resnet_generator_keeps_shape_and_range():
    x = torch.randn(2, 3, 256, 256)
    y = ResnetGenerator(3, 3, ngf=8, n_blocks=9)(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    assert ResnetGenerator(1, 3, ngf=4, n_blocks=2)(torch.randn(2, 1, 28, 28)).shape == (2, 3, 28, 28)
    with pytest.raises(AssertionError, match="divisible by 4"):
        ResnetGenerator(1, 1, ngf=4, n_blocks=1)(torch.randn(1, 1, 30, 30))


def test_original_generator_has_the_papers_parameter_count():
    n = sum(p.numel() for p in ResnetGenerator(3, 3, ngf=64, n_blocks=9).parameters())
    assert n == 11_378_179  # the 9-block generator of junyanz/pytorch-CycleGAN-and-pix2pix


@pytest.mark.parametrize(("size", "n_layers", "grid"), [(256, 3, 30), (28, 2, 5), (32, 2, 6), (32, 1, 14)])
def test_patchgan_output_grid(size, n_layers, grid):
    d = PatchDiscriminator(3, ndf=8, n_layers=n_layers)
    assert d(torch.randn(2, 3, size, size)).shape == (2, 1, grid, grid)


# ---------------------------------------------------------------- losses on hand-computed tensors

class _Scale(nn.Module):
    """x -> k * x, with the channel attributes CycleGAN checks."""

    def __init__(self, k: float) -> None:
        super().__init__()
        self.k = nn.Parameter(torch.tensor(k))
        self.in_channels = self.out_channels = 1

    def forward(self, x):
        return self.k * x


class _Const(nn.Module):
    """A discriminator that outputs c everywhere on a (B, 1, 2, 2) grid."""

    def __init__(self, c: float) -> None:
        super().__init__()
        self.c = nn.Parameter(torch.tensor(c))

    def forward(self, x):
        return self.c.expand(x.shape[0], 1, 2, 2)


def test_gan_loss_values():
    logits = torch.tensor([[0.5, 1.5]])
    assert float(gan_loss(logits, True, "lsgan")) == pytest.approx(0.25)  # ((-0.5)^2 + 0.5^2) / 2
    assert float(gan_loss(logits, False, "lsgan")) == pytest.approx(1.25)  # (0.25 + 2.25) / 2
    assert float(gan_loss(torch.zeros(3), True, "vanilla")) == pytest.approx(0.693147, abs=1e-6)  # log 2


def test_generator_and_discriminator_losses_by_hand():
    a, b = torch.full((2, 1, 3, 3), 0.4), torch.full((2, 1, 3, 3), -0.2)
    # G(x) = 2x, F(x) = x / 2: cycles are exact; identity |2b - b| = 0.2, |a/2 - a| = 0.2.
    m = CycleGAN(_Scale(2.0), _Const(0.25), _Scale(0.5), _Const(0.25))
    with torch.no_grad():
        g = m.generator_losses(a, b)
    assert float(g["adv_loss"]) == pytest.approx(2 * 0.75**2)
    assert float(g["cycle_loss"]) == pytest.approx(0.0, abs=1e-7)
    assert float(g["idt_loss"]) == pytest.approx(0.5 * 10 * (0.2 + 0.2))
    assert float(g["g_loss"]) == pytest.approx(1.125 + 2.0)
    # G(x) = 2x, F(x) = x: cycle 10 * (|2a - a| + |2b - b|) = 6; identity 5 * (0.2 + 0) = 1.
    with torch.no_grad():
        g = CycleGAN(_Scale(2.0), _Const(0.25), _Scale(1.0), _Const(0.25)).generator_losses(a, b)
    assert float(g["cycle_loss"]) == pytest.approx(6.0)
    assert float(g["idt_loss"]) == pytest.approx(1.0)
    # D loss = 1/2 [(0.25 - 1)^2 + 0.25^2]
    assert float(m._discriminator_loss(m.disc_b, b, a).detach()) == pytest.approx(0.3125)


def test_second_direction_nets_are_fresh_copies():
    m = CycleGAN(ResnetGenerator(1, 1, ngf=4, n_blocks=1), PatchDiscriminator(1, ndf=4, n_layers=2))
    for one, two in ((m.gen_ab, m.gen_ba), (m.disc_b, m.disc_a)):
        p1, p2 = next(one.parameters()), next(two.parameters())
        assert p1.shape == p2.shape and not torch.equal(p1, p2) and p1.data_ptr() != p2.data_ptr()


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"lr": -1.0}, "model.lr"), ({"beta1": 1.0}, "beta1"), ({"pool_size": -1}, "pool_size"),
    ({"lambda_cycle": -1.0}, "lambda_cycle"), ({"n_epochs": 0, "n_epochs_decay": 0}, "n_epochs"),
    ({"generator_ab": ResnetGenerator(1, 3, ngf=4, n_blocks=1)}, "lambda_identity 0"),
])
def test_bad_arguments_raise_rlgen_error(kwargs, match):
    with pytest.raises(RlgenError, match=match):
        CycleGAN(**kwargs)


# ---------------------------------------------------------------- end to end through the CLI

CONFIG = str(CONFIGS / "cyclegan" / "mnist.yaml")


def test_fit_steps_both_optimizers_logs_and_decays_lr_to_zero(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from rlgen.cli import run

    cli = run(["fit", "-c", CONFIG, f"--data.data_dir={mnist_dir}", *TINY_NETS, "--trainer.max_epochs=2",
               "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1", "--model.n_epochs=1",
               "--model.n_epochs_decay=1"])
    trainer = cli.trainer
    assert trainer.global_step == 2 * 2 * 2  # 2 epochs x 2 batches x (generator + discriminator step)
    for key in ("train/g_loss", "train/d_a_loss", "train/d_b_loss", "train/cycle_loss", "train/idt_loss",
                "val/cycle_l1"):
        assert key in trainer.logged_metrics, f"{key} not logged"
    assert [o.param_groups[0]["lr"] for o in trainer.optimizers] == [0.0, 0.0]
    assert float(trainer.logged_metrics["train/lr"]) == pytest.approx(2e-4 / 2)  # the last epoch's rate
    images = list((tmp_path / trainer.log_dir).glob("images/val_a2b/*.png"))
    assert images, "validation grids are written as PNGs"
    assert len(cli.model.pool_a.images) == 2 * 2 * 8  # 4 batches of 8 fakes, below the pool size of 50

    # The checkpoint restores the networks and the pools; `test` runs on it.
    last = next((tmp_path / trainer.log_dir).rglob("last.ckpt"))
    restored = CycleGAN(ResnetGenerator(1, 1, ngf=4, n_blocks=1), PatchDiscriminator(1, ndf=4, n_layers=2))
    restored.on_load_checkpoint(torch.load(last, weights_only=False))
    assert torch.equal(torch.stack(restored.pool_b.images), torch.stack(cli.model.pool_b.images))
    run_cli("test", "-c", CONFIG, f"--data.data_dir={mnist_dir}", *TINY_NETS, "--trainer.limit_test_batches=1",
            f"--ckpt_path={last}", f"--model.output_dir={tmp_path / 'test_out'}")
    assert (tmp_path / "test_out" / "a2b_0000.png").is_file()


def test_test_writes_grids_and_predict_translates_a_folder(mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run_cli("test", "-c", CONFIG, f"--data.data_dir={mnist_dir}", *TINY_NETS, "--trainer.limit_test_batches=2",
            f"--model.output_dir={tmp_path / 'test_out'}")
    names = sorted(p.name for p in (tmp_path / "test_out").iterdir())
    assert names == ["a2b_0000.png", "a2b_0001.png", "b2a_0000.png", "b2a_0001.png"]
    with Image.open(tmp_path / "test_out" / "a2b_0000.png") as grid:
        assert grid.size[1] == 3 * 28 + 4 * 2  # rows real / translated / reconstructed with 2 px padding

    folder = tmp_path / "mine"
    folder.mkdir()
    for i in range(3):
        Image.new("L", (40, 40), color=60 * i).save(folder / f"digit{i}.png")
    run_cli("predict", "-c", CONFIG, f"--data.data_dir={mnist_dir}", *TINY_NETS, f"--data.predict_dir={folder}",
            "--data.predict_domain=B", f"--model.output_dir={tmp_path / 'translated'}")
    out = sorted((tmp_path / "translated").iterdir())
    assert [p.name for p in out] == ["digit0.png", "digit1.png", "digit2.png"]
    with Image.open(out[0]) as img:
        assert img.size == (28, 28)


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ddp_ranks_stay_identical(tmp_path, mnist_dir):
    """Two gloo processes: toggled optimizers leave no unused parameters, and the ranks stay in sync."""
    from tests.test_ddp import assert_ranks_identical_and_trained, run_ddp_ranks

    args = ["-c", CONFIG, f"--data.data_dir={mnist_dir}", *TINY_NETS, "--trainer.max_steps=6",
            "--trainer.max_epochs=1", "--model.n_epochs=1", "--model.n_epochs_decay=0"]
    assert_ranks_identical_and_trained(run_ddp_ranks(tmp_path, {"cyclegan": args})["cyclegan"], "cyclegan")


def test_fit_and_test_on_rgb_image_folders(tmp_path, monkeypatch):
    """The folder config end to end on a toy dataset: resize / crop to 32 px, RGB nets, test grids both ways."""
    monkeypatch.chdir(tmp_path)
    for split, n in (("trainA", 4), ("trainB", 3), ("testA", 2), ("testB", 2)):
        (tmp_path / "toy" / split).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (48, 40), color=(40 * i, 100, 200 - 40 * i)).save(tmp_path / "toy" / split / f"{i}.jpg")
    folder = str(CONFIGS / "cyclegan" / "folder.yaml")
    common = [f"--data.data_dir={tmp_path}", "--data.name=toy", "--data.load_size=36", "--data.crop_size=32",
              "--data.batch_size=2", "--model.discriminator_b.init_args.n_layers=2", *TINY_NETS]
    run_cli("fit", "-c", folder, *common, "--trainer.fast_dev_run=true")
    run_cli("test", "-c", folder, *common, f"--model.output_dir={tmp_path / 'out'}")
    with Image.open(tmp_path / "out" / "b2a_0000.png") as grid:
        assert grid.mode == "RGB" and grid.size == (2 * 32 + 3 * 2, 3 * 32 + 4 * 2)
