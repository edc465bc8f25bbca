"""Every family resumes from ``--ckpt_path last`` where it stopped, and validate/test/predict accept its checkpoint
(one short fit per family serves them all)."""

from __future__ import annotations

import pytest
import torch
import yaml

from rlgen.cli import run
from tests.conftest import CONFIGS
from tests.test_configs import SMOKE

FAMILIES = ["ae/mnist.yaml", "vae/mnist.yaml", "gan/mnist.yaml", "textgan/mnist.yaml", "cyclegan/mnist.yaml",
            "qlearning/jump_chain.yaml", "dqn/cartpole.yaml", "reinforce/cartpole.yaml"]
PREDICTS_IMAGES = {"ae/mnist.yaml", "vae/mnist.yaml", "gan/mnist.yaml"}  # predict writes PNG grids
QUIET = ["--trainer.enable_progress_bar=false", "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0"]


def base_args(rel: str, mnist_dir) -> list[str]:
    config = CONFIGS / rel
    args = ["-c", str(config), *SMOKE.get(rel, [])]
    if "data_dir" in ((yaml.safe_load(config.read_text()).get("data") or {}).get("init_args") or {}):
        args += [f"--data.data_dir={mnist_dir}", "--data.num_workers=0", "--data.batch_size=8"]
    return args


@pytest.mark.parametrize("rel", [f for f in FAMILIES if (CONFIGS / f).is_file()])
def test_resume_continues_and_checkpoint_serves_every_subcommand(rel, mnist_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = base_args(rel, mnist_dir)
    first = run(["fit", *args, *QUIET, "--trainer.max_steps=2"])
    assert first.trainer.global_step == 2
    resumed = run(["fit", *args, *QUIET, "--trainer.max_steps=4", "--ckpt_path=last"])
    assert resumed.trainer.global_step == 4, "resuming must continue from step 2"
    for optimizer in resumed.trainer.optimizers:
        stateless = isinstance(optimizer, torch.optim.SGD) and not optimizer.defaults.get("momentum")
        assert stateless or optimizer.state, "the optimizer state must be restored and updated"
    run(["validate", *args, "--trainer.enable_progress_bar=false", "--trainer.limit_val_batches=1",
         "--ckpt_path=last"])
    run(["test", *args, "--trainer.enable_progress_bar=false", "--trainer.limit_test_batches=1", "--ckpt_path=last"])
    if rel in PREDICTS_IMAGES:
        run(["predict", *args, "--trainer.enable_progress_bar=false", "--trainer.limit_predict_batches=2",
             "--ckpt_path=last", f"--model.predict_dir={tmp_path / 'predictions'}"])
        assert len(list((tmp_path / "predictions").glob("*.png"))) >= 1
