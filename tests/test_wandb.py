"""W&B offline: the run directory holds the full config, the scalar history and images; runs never collide."""

from __future__ import annotations

import torch
from pytorch_lightning.demos.boring_classes import BoringModel

from rlgen.cli import run
from rlgen.media.images import log_image
from tests.conftest import CONFIGS


class ImageBoring(BoringModel):
    """Logs a scalar every step and an image grid every epoch."""

    def training_step(self, batch, batch_idx):
        out = super().training_step(batch, batch_idx)
        self.log("train/loss", out["loss"])
        return out

    def on_train_epoch_end(self):
        log_image(self.trainer, "val/samples", torch.rand(3, 16, 16))


def test_offline_wandb_run_has_config_history_and_images(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    args = ["fit", "--model=tests.test_wandb.ImageBoring", "-c", str(CONFIGS / "logger" / "wandb.yaml"),
            "--trainer.max_epochs=2", "--trainer.limit_train_batches=3", "--trainer.limit_val_batches=1",
            "--trainer.log_every_n_steps=1", "--trainer.enable_progress_bar=false"]
    run(args)
    run(args)
    offline = sorted((tmp_path / "runs" / "wandb" / "wandb").glob("offline-run-*"))
    assert len(offline) == 2
    log = next(offline[0].glob("run-*.wandb")).read_bytes()
    # Trainer settings only reach W&B through the config rlgen passes at init (the model has no hparams).
    for key in (b"limit_train_batches", b"log_every_n_steps", b"ImageBoring", b"train/loss", b"val/samples"):
        assert key in log, key
    assert list((offline[0] / "files" / "media" / "images").rglob("*.png"))
    run_dirs = sorted(p.parent for p in (tmp_path / "runs" / "wandb" / "rlgen").glob("*/config.yaml"))
    assert len(run_dirs) == 2, "each run writes its own config.yaml"
    for run_dir in run_dirs:
        saved = (run_dir / "config.yaml").read_text()
        assert saved.count("seed_everything") == 1, "config.yaml holds no second copy of the config (W&B's)"
        assert (run_dir / "checkpoints" / "last.ckpt").is_file()
        assert list((run_dir / "images" / "val_samples").glob("*.png"))


def test_a_slurm_job_keeps_one_wandb_run_across_requeues(tmp_path, monkeypatch):
    """Under SLURM the W&B run id is derived from the job id (resume allowed), so that a requeued job,
    started again with the same SLURM_JOB_ID, writes into the same W&B run."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    monkeypatch.setenv("SLURM_JOB_ID", "4242")
    run(["fit", "--model=tests.test_wandb.ImageBoring", "-c", str(CONFIGS / "logger" / "wandb.yaml"),
         "--trainer.max_steps=2", "--trainer.limit_val_batches=0", "--trainer.enable_progress_bar=false"])
    (offline,) = (tmp_path / "runs" / "wandb" / "wandb").glob("offline-run-*")
    assert offline.name.endswith("-slurm-4242"), offline.name


def test_online_wandb_without_an_api_key_is_one_line_and_keeps_the_run_directory(tmp_path, monkeypatch, capsys):
    """W&B online with no key (a new user who never ran `wandb login`): one line that says how to log in or log
    offline, instead of wandb's 40-line traceback; the run directory rlgen made stays."""
    import wandb

    from tests.test_cli import expect_error

    wandb.teardown()  # an earlier offline run in this process keeps W&B's settings (mode) in its singleton
    monkeypatch.chdir(tmp_path)
    for name in ("WANDB_MODE", "WANDB_API_KEY", "WANDB_SILENT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("WANDB_MODE", "online")
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc, no saved key
    monkeypatch.setenv("WANDB_CONFIG_DIR", str(tmp_path / "wandb_config"))
    overlay = str(CONFIGS / "logger" / "wandb.yaml")
    line = expect_error(capsys, ["fit", "--model=tests.test_wandb.ImageBoring", "-c", overlay, "--trainer.max_epochs=1",
                                 "--trainer.limit_train_batches=2", "--trainer.enable_progress_bar=false"],
                        "Weights & Biases could not start the run", "wandb login", "WANDB_MODE=offline")
    assert "API key" in line
    assert (tmp_path / "runs" / "wandb").is_dir(), "the run directory is kept"
    wandb.teardown()
