"""GAN / DCGAN: loss values, the k-step schedule, step counting, sample grids, metrics, bad inputs."""

from __future__ import annotations

import functools
import math
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

from rlgen.cli import run
from rlgen.errors import RlgenError
from rlgen.lightning_modules.classifier import Classifier
from rlgen.lightning_modules.gan import GAN
from rlgen.lightning_modules.gan_system import discriminator_loss, generator_loss, kmeans, mode_seeking_loss
from rlgen.nets.gan import DCGANDiscriminator, DCGANGenerator, Maxout, MLPDiscriminator, MLPGenerator
from tests.test_classifier import save_classifier


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path, monkeypatch):
    """Trainers without a logger write their sample PNGs under the working directory: keep them out of the repo."""
    monkeypatch.chdir(tmp_path)


def logit(p: float) -> float:
    return math.log(p / (1 - p))


def tiny_gan(**kwargs) -> GAN:
    return GAN(generator=MLPGenerator(latent_dim=8, hidden=(16,)),
               discriminator=MLPDiscriminator(hidden=(16,), maxout_pieces=2), **kwargs)


def image_loader(n: int = 48, batch_size: int = 8) -> DataLoader:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g))
    return DataLoader(data, batch_size=batch_size)


def quiet_trainer(**kwargs) -> pl.Trainer:
    defaults = {"logger": False, "enable_checkpointing": False, "enable_progress_bar": False,
                "enable_model_summary": False, "max_epochs": 1}
    return pl.Trainer(**{**defaults, **kwargs})


def test_losses_on_hand_computed_outputs():
    # D(x) = 0.8 on the real images, D(G(z)) = 0.25 on the fakes
    real, fake = torch.full((4,), logit(0.8)), torch.full((4,), logit(0.25))
    assert discriminator_loss(real, fake).item() == pytest.approx(-math.log(0.8) - math.log(1 - 0.25), rel=1e-5)
    assert generator_loss(fake, "minimax").item() == pytest.approx(math.log(1 - 0.25), rel=1e-5)
    assert generator_loss(fake, "non_saturating").item() == pytest.approx(-math.log(0.25), rel=1e-5)
    # the batch mean of mixed outputs
    mixed = torch.tensor([logit(0.5), logit(0.9)])
    assert generator_loss(mixed, "non_saturating").item() == pytest.approx(
        -(math.log(0.5) + math.log(0.9)) / 2, rel=1e-5)


def test_top_k_generator_loss_uses_the_fakes_d_rates_most_real():
    logits = torch.tensor([logit(0.1), logit(0.9), logit(0.5), logit(0.8)])
    assert generator_loss(logits, "non_saturating", top_k=0.5).item() == pytest.approx(
        -(math.log(0.9) + math.log(0.8)) / 2, rel=1e-5)
    assert generator_loss(logits, "hinge", top_k=0.25).item() == pytest.approx(-logit(0.9), rel=1e-5)
    # top_k = 1: every fake counts, log(1 - D) averaged over all four
    assert generator_loss(logits, "minimax", top_k=1.0).item() == pytest.approx(
        sum(math.log(1 - p) for p in (0.1, 0.9, 0.5, 0.8)) / 4, rel=1e-5)
    for bad in (0.0, 1.5):
        with pytest.raises(RlgenError, match="top_k"):
            tiny_gan(top_k=bad)


def test_hinge_losses_on_hand_computed_logits():
    real, fake = torch.tensor([2.0, 0.5]), torch.tensor([-3.0, 0.25])
    # D: mean(max(0, 1 - real)) + mean(max(0, 1 + fake)) = (0 + 0.5) / 2 + (0 + 1.25) / 2
    assert discriminator_loss(real, fake, "hinge").item() == pytest.approx(0.25 + 0.625)
    assert generator_loss(fake, "hinge").item() == pytest.approx(-(-3.0 + 0.25) / 2)


def test_generator_moving_average_follows_the_generator_and_makes_the_samples():
    decay = 0.9
    model = tiny_gan(ema_decay=decay)
    steps: list[list[torch.Tensor]] = []

    class RecordG(pl.Callback):
        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
            steps.append([p.detach().clone() for p in pl_module.generator.parameters()])

    quiet_trainer(limit_val_batches=0, callbacks=[RecordG()]).fit(model, train_dataloaders=image_loader(n=24))
    # first G step copies G, each later one moves the average by (1 - decay) towards G
    expected = steps[0]
    for params in steps[1:]:
        expected = [decay * e + (1 - decay) * p for e, p in zip(expected, params, strict=True)]
    for e, a in zip(expected, model.generator_ema.module.parameters(), strict=True):
        torch.testing.assert_close(a, e)
    assert not any(p.requires_grad for p in model.generator_ema.parameters())
    assert model.sampler is model.generator_ema.module
    z = torch.randn(3, model.latent_dim)
    model.eval()
    torch.testing.assert_close(model(z), (model.generator_ema.module(z) + 1) / 2)
    assert not torch.allclose(model(z), (model.generator(z) + 1) / 2)
    with pytest.raises(RlgenError, match="ema_decay"):
        tiny_gan(ema_decay=1.0)


def test_spectral_norm_discriminator_has_unit_spectral_norms_and_no_batchnorm():
    torch.manual_seed(0)
    d = DCGANDiscriminator(channels=8, spectral_norm=True)
    for _ in range(20):  # power iterations run in training-mode forward passes
        d(torch.rand(4, 1, 28, 28))
    d.eval()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in d.modules())
    weights = [m.weight for m in d.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert len(weights) == 3
    for w in weights:
        assert torch.linalg.matrix_norm(w.flatten(1), ord=2).item() == pytest.approx(1.0, abs=0.05)


def test_minimax_saturates_where_non_saturating_does_not():
    # When D confidently rejects the fakes (D(G(z)) ~ 0), log(1 - D) has a vanishing gradient.
    l_mm = torch.tensor([logit(1e-4)], requires_grad=True)
    l_ns = torch.tensor([logit(1e-4)], requires_grad=True)
    generator_loss(l_mm, "minimax").backward()
    generator_loss(l_ns, "non_saturating").backward()
    assert abs(l_mm.grad.item()) < 1e-3 < abs(l_ns.grad.item())


@pytest.mark.parametrize("k", [1, 3])
def test_k_discriminator_steps_per_generator_step(k):
    calls: list[str] = []

    class Recording(torch.optim.SGD):
        def __init__(self, params, name):
            super().__init__(params, lr=0.01)
            self.name = name

        def step(self, closure=None):
            calls.append(self.name)
            return super().step(closure)

    model = tiny_gan(k=k, optimizer_d=functools.partial(Recording, name="D"),
                     optimizer_g=functools.partial(Recording, name="G"))
    trainer = quiet_trainer(limit_val_batches=0)
    trainer.fit(model, train_dataloaders=image_loader(n=48, batch_size=8))  # 6 batches
    assert calls == (["D"] * k + ["G"]) * (6 // k)
    # global_step counts both optimizers' steps: k + 1 per k batches
    assert trainer.global_step == 6 + 6 // k == len(calls)
    assert model.batches_seen == 6


def test_max_steps_counts_optimizer_steps():
    model = tiny_gan(k=1)
    trainer = quiet_trainer(max_steps=6, max_epochs=-1, limit_val_batches=0)
    trainer.fit(model, train_dataloaders=image_loader(n=80))
    assert trainer.global_step == 6 and model.batches_seen == 3


def test_training_changes_only_the_stepping_network():
    model = tiny_gan(k=2)
    g0 = [p.detach().clone() for p in model.generator.parameters()]
    d0 = [p.detach().clone() for p in model.discriminator.parameters()]
    quiet_trainer(limit_val_batches=0).fit(model, train_dataloaders=image_loader(n=8))  # one batch: D only
    assert all(torch.equal(a, b) for a, b in zip(g0, model.generator.parameters(), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(d0, model.discriminator.parameters(), strict=True))
    assert all(p.requires_grad for p in model.parameters()), "untoggle_optimizer must restore requires_grad"


def test_fixed_z_grid_is_written_each_epoch(tmp_path):
    model = tiny_gan(num_samples=16, sample_every_n_epochs=1)
    z0 = model.fixed_z.clone()
    trainer = quiet_trainer(max_epochs=2, limit_val_batches=0, logger=TensorBoardLogger(tmp_path, name="gan"))
    trainer.fit(model, train_dataloaders=image_loader(n=16))
    pngs = sorted((tmp_path / "gan" / "version_0" / "images" / "images_samples").glob("*.png"))
    # named after the scalars' x axis, training batches (2 an epoch), not global_step (2 optimizer steps a batch)
    assert [p.name for p in pngs] == ["step_00000002.png", "step_00000004.png"]
    assert torch.equal(model.fixed_z, z0), "the sample grid must always use the same noise"
    # a second GAN with the same sample_seed has the same fixed noise (comparable grids across runs)
    torch.testing.assert_close(tiny_gan(num_samples=16).fixed_z, z0)


def test_validation_logs_fid_and_inception_score(tmp_path):
    torch.manual_seed(0)
    ckpt = tmp_path / "clf.ckpt"
    save_classifier(Classifier(width=8), ckpt)
    model = tiny_gan(classifier_ckpt=str(ckpt))
    trainer = quiet_trainer(limit_train_batches=2)
    trainer.fit(model, train_dataloaders=image_loader(n=16), val_dataloaders=image_loader(n=32))
    metrics = trainer.callback_metrics
    assert {"val/fid", "val/is", "val/d_real", "val/d_fake", "train/d_loss", "train/g_loss"} <= set(metrics)
    assert metrics["val/fid"] >= 0 and 1.0 <= metrics["val/is"] <= 10.0
    assert not any(k.startswith("quality") or "classifier" in k for k in model.state_dict()), (
        "the frozen classifier must not end up in GAN checkpoints")


def test_without_classifier_a_val_fid_checkpoint_keeps_the_latest(tmp_path, monkeypatch, capsys, mnist_dir):
    """The config's ModelCheckpoint monitors val/fid; without a classifier rlgen builds it unmonitored (the
    latest checkpoints) and says so, instead of failing on a metric that is never logged."""
    from tests.conftest import CONFIGS

    monkeypatch.chdir(tmp_path)
    cli = run(["fit", "-c", str(CONFIGS / "gan" / "mnist.yaml"), f"--data.data_dir={mnist_dir}",
               "--data.num_workers=0", "--model.classifier_ckpt=null", "--trainer.max_epochs=2",
               "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
               "--trainer.enable_progress_bar=false"])
    assert "ModelCheckpoint keeps the latest checkpoints instead of the best" in capsys.readouterr().err
    assert [c.monitor for c in cli.trainer.checkpoint_callbacks] == [None]
    folder = cli.trainer.checkpoint_callback.dirpath
    assert sorted(p.name for p in Path(folder).glob("*.ckpt")) == ["epoch=1-step=8.ckpt", "last.ckpt"]


def test_missing_classifier_checkpoint_is_a_clear_error(tmp_path):
    model = tiny_gan(classifier_ckpt=str(tmp_path / "nope.ckpt"))
    with pytest.raises(RlgenError, match="python -m bench.classifier"):
        quiet_trainer(limit_train_batches=1).fit(model, image_loader(n=8), image_loader(n=8))


@pytest.mark.parametrize("kwargs", [
    {"k": 0}, {"loss": "wasserstein"}, {"num_samples": 0}, {"sample_every_n_epochs": 0}, {"clusters": -1},
    {"mode_seeking": -0.5},
    {"optimizer_d": functools.partial(torch.optim.Adam, lr=-1e-3)},
    {"optimizer_g": functools.partial(torch.optim.Adam, lr=2e-4, betas=(1.5, 0.9))},
])
def test_bad_arguments(kwargs):
    with pytest.raises(RlgenError):
        tiny_gan(**kwargs)


def test_network_shapes():
    z = torch.randn(3, 100)
    nets = ((MLPGenerator(), MLPDiscriminator()), (DCGANGenerator(), DCGANDiscriminator()),
            (DCGANGenerator(channels=8, hidden=32), DCGANDiscriminator(channels=8, hidden=32)),
            (DCGANGenerator(channels=8, hidden=32), DCGANDiscriminator(channels=8, hidden=32, spectral_norm=True)))
    for g, d in nets:
        x = g(z)
        assert x.shape == (3, 1, 28, 28) and x.abs().max() <= 1
        assert d(x).shape == (3,)
    # hidden: one fully connected layer more in each (InfoGAN's MNIST networks)
    assert [m.out_features for m in nets[2][0].modules() if isinstance(m, torch.nn.Linear)] == [32, 4 * 8 * 7 * 7]
    assert [m.out_features for m in nets[2][1].modules() if isinstance(m, torch.nn.Linear)] == [32, 1]
    m = Maxout(4, 2, 3)
    h = torch.randn(5, 4)
    torch.testing.assert_close(m(h), m.linear(h).view(5, 2, 3).max(2).values)


def test_kmeans_finds_separated_groups():
    centres = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    sizes = torch.tensor([5, 3, 2])
    g = torch.Generator().manual_seed(0)
    x = torch.cat([c + 0.1 * torch.randn(n, 2, generator=g) for c, n in zip(centres, sizes.tolist(), strict=True)])
    centroids, counts = kmeans(x, 3)
    nearest = torch.cdist(centres, centroids).argmin(dim=1)  # the centroid that found each group
    assert sorted(nearest.tolist()) == [0, 1, 2]
    torch.testing.assert_close(centroids[nearest], torch.stack([x[:5].mean(0), x[5:8].mean(0), x[8:].mean(0)]))
    assert counts[nearest].tolist() == [5.0, 3.0, 2.0]
    with pytest.raises(RlgenError, match="only 2 images"):
        kmeans(x[:2], 3)


def clustered_gan(clusters: int = 3, **kwargs) -> GAN:
    return GAN(generator=DCGANGenerator(latent_dim=8, channels=4, cond_dim=clusters),
               discriminator=DCGANDiscriminator(channels=4, cond_dim=clusters), clusters=clusters, **kwargs)


def test_clusters_condition_g_and_d_on_the_nearest_centroid_and_survive_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    model = clustered_gan(num_samples=6)
    checkpoint = ModelCheckpoint(dirpath=tmp_path, save_last=True)
    trainer = quiet_trainer(limit_val_batches=1, enable_checkpointing=True, callbacks=[checkpoint])
    train = DataLoader(image_loader(n=48).dataset, batch_size=8, num_workers=1, persistent_workers=True)
    trainer.fit(model, train, image_loader(n=8))  # the sanity check already needs the clusters
    assert model.clusters.centroids.shape == (3, 28 * 28) and model.clusters.shares.sum().item() == pytest.approx(1.0)
    assert model.batches_seen == 6, "finding the clusters must not use up batches of the first epoch"
    x = torch.rand(4, 1, 28, 28)
    real, (cond,) = model._unpack((x, torch.zeros(4)))
    expected = torch.cdist((x * 2 - 1).flatten(1), model.clusters.centroids).argmin(dim=1)
    assert torch.equal(cond, torch.nn.functional.one_hot(expected, 3).float())
    images, nrow = model._sample_grid()  # the fixed grid visits the clusters in turn
    assert images.shape == (6, 1, 28, 28) and nrow == 8

    loaded = GAN.load_from_checkpoint(tmp_path / "last.ckpt", weights_only=False).eval()  # nets in hparams
    assert torch.equal(loaded.clusters.centroids, model.clusters.centroids)
    assert torch.equal(loaded.clusters.shares, model.clusters.shares)
    samples = loaded(loaded.noise(5))  # clusters drawn from their shares
    assert samples.shape == (5, 1, 28, 28) and 0 <= samples.min() and samples.max() <= 1

    unconditional = tmp_path / "plain.ckpt"
    trainer = quiet_trainer(limit_train_batches=1, limit_val_batches=0)
    trainer.fit(GAN(generator=DCGANGenerator(latent_dim=8, channels=4),
                    discriminator=DCGANDiscriminator(channels=4)), image_loader(n=8))
    trainer.save_checkpoint(unconditional)
    with pytest.raises(RlgenError, match="no clusters"):
        clustered_gan().on_load_checkpoint(torch.load(unconditional, weights_only=False))


def test_clusters_need_matching_cond_dims():
    with pytest.raises(RlgenError, match="discriminator.init_args.cond_dim to 3"):
        GAN(generator=DCGANGenerator(latent_dim=8, channels=4, cond_dim=3),
            discriminator=DCGANDiscriminator(channels=4), clusters=3)
    with pytest.raises(RlgenError, match="no clusters yet"):
        clustered_gan()._unpack(torch.rand(2, 1, 28, 28))


def test_mode_seeking_loss_on_hand_computed_images():
    # halves 0.5 apart in every pixel, their noises 2 apart: ratio 0.25, loss 1 / 0.25
    fake = torch.cat([torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 0.5), torch.full((1, 1, 2, 2), 9.0)])
    z = torch.cat([torch.zeros(2, 3), torch.full((2, 3), -2.0), torch.full((1, 3), 7.0)])
    assert mode_seeking_loss(fake, z).item() == pytest.approx(4.0, rel=1e-4)  # the odd fifth row is left out
    assert mode_seeking_loss(fake[:4], z[:4]).item() == pytest.approx(4.0, rel=1e-4)
    # identical images for different noises (collapse): the loss is huge, and it falls as the images part
    same = mode_seeking_loss(torch.zeros(4, 1, 2, 2), z[:4]).item()
    assert same == pytest.approx(1e5) and mode_seeking_loss(fake[:4] * 2, z[:4]).item() == pytest.approx(2.0, rel=1e-4)


def test_mode_seeking_gives_both_halves_of_the_generator_batch_one_set_of_conditions():
    torch.manual_seed(0)
    model = clustered_gan(mode_seeking=1.0)
    conds: dict[bool, list[torch.Tensor]] = {True: [], False: []}  # G step (grad) / D step (no grad)
    model.generator.register_forward_pre_hook(
        lambda module, args: conds[torch.is_grad_enabled()].append(args[1].clone()) if module.training else None)
    quiet_trainer(limit_val_batches=0).fit(model, image_loader(n=45))  # 5 batches of 8 and one of 5
    d_conds, g_conds = conds[False], conds[True]
    assert len(g_conds) == len(d_conds) == 6
    for d, g in zip(d_conds, g_conds, strict=True):  # the same batch's clusters, the first half twice
        h = len(d) // 2
        assert torch.equal(g, torch.cat([d[:h], d[:h], d[2 * h:]]))
    assert any(not torch.equal(d[:4], d[4:]) for d in d_conds[:5]), "the real batches' halves differ"


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_ddp_two_ranks_stay_identical(tmp_path, mnist_dir):
    """Two gloo ranks: toggled optimizers leave no unused parameters, and both ranks keep the same weights."""
    from tests.conftest import CONFIGS
    from tests.test_ddp import assert_ranks_identical_and_trained, run_ddp_ranks

    tiny = [f"--data.data_dir={mnist_dir}", "--data.num_workers=0", "--model.classifier_ckpt=null",
            "--trainer.max_steps=6", "--data.batch_size=16", "--model.generator.init_args.channels=4",
            "--model.discriminator.init_args.channels=4"]
    runs = {name: ["-c", str(CONFIGS / name / "mnist.yaml"), *tiny] for name in ("dcgan", "textgan")}
    runs["dcgan_clusters"] = ["-c", str(CONFIGS / "dcgan" / "mnist_clusters.yaml"), *tiny]
    for name, params in run_ddp_ranks(tmp_path, runs).items():
        assert_ranks_identical_and_trained(params, name)


def test_cli_reports_negative_lr_in_one_line(tmp_path, monkeypatch, capsys, mnist_dir):
    from tests.conftest import CONFIGS, run_cli

    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        run_cli("fit", "-c", str(CONFIGS / "dcgan" / "mnist.yaml"), f"--data.data_dir={mnist_dir}",
                "--model.optimizer_d.init_args.lr=-0.1", "--trainer.fast_dev_run=true")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("rlgen: error: model.optimizer_d is invalid: Invalid learning rate: -0.1")


def test_strategy_ddp_becomes_the_strategy_that_finds_unused_parameters(capsys):
    from jsonargparse import Namespace

    from rlgen.cli.config import adapt_to_model as _adapt_to_model

    for class_path in ("rlgen.lightning_modules.gan.GAN", "rlgen.lightning_modules.cyclegan.CycleGAN"):
        cfg = Namespace(model=Namespace(class_path=class_path, init_args=Namespace()),
                        trainer=Namespace(strategy="ddp"))
        _adapt_to_model(cfg)
        assert cfg.trainer.strategy == "ddp_find_unused_parameters_true"
    assert "uses strategy ddp_find_unused_parameters_true" in capsys.readouterr().err
    cfg = Namespace(model=Namespace(class_path="rlgen.lightning_modules.dqn.DQN", init_args=Namespace()),
                    trainer=Namespace(strategy="ddp"))
    _adapt_to_model(cfg)
    assert cfg.trainer.strategy == "ddp", "other families keep plain DDP"


def test_ddp_without_unused_parameter_search_stops_with_the_strategy_to_use(tmp_path):
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from rlgen.lightning_modules.gan_system import check_ddp_for_two_networks

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'rendezvous'}", rank=0, world_size=1)
    try:
        for find_unused, fails in ((False, True), (True, False)):
            wrapped = DistributedDataParallel(torch.nn.Linear(2, 2), find_unused_parameters=find_unused)
            trainer = type("T", (), {"strategy": type("S", (), {"model": wrapped})()})()
            if fails:
                with pytest.raises(RlgenError, match="--trainer.strategy ddp_find_unused_parameters_true"):
                    check_ddp_for_two_networks(trainer)
            else:
                check_ddp_for_two_networks(trainer)
    finally:
        dist.destroy_process_group()
