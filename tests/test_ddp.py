"""Real 2-process DDP runs on the CPU (gloo): the ranks' parameters stay identical after training steps.

The RL families here (their data comes from environments in each process, DQN steps its optimizer by hand);
an image model (a DataModule, automatic optimization): bench/scaling.py's smoke (tests/test_bench_scaling.py);
the GANs' two optimizers: test_gan.py, marked slow. Each real DDP run costs ~20 s of process starts."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from pytorch_lightning import Callback, LightningModule, Trainer

from tests.conftest import CONFIGS, REPO

# Starts processes of its own: these tests run one after another on one xdist worker (tests/conftest.py).
pytestmark = pytest.mark.xdist_group("processes")

DDP_CPU = ["-c", str(CONFIGS / "trainer" / "ddp.yaml"), "--trainer.accelerator=cpu", "--trainer.devices=2",
           "--trainer.enable_progress_bar=false", "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0"]


class DumpParameters(Callback):
    """Saves every rank's parameters, before and after training, to ``out_dir/rank<r>_{start,end}.pt``."""

    def __init__(self, out_dir: str = "params") -> None:
        self.out_dir = Path(out_dir)

    def _dump(self, trainer: Trainer, pl_module: LightningModule, when: str) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        params = {k: v.detach().cpu().clone() for k, v in pl_module.named_parameters()}
        torch.save(params, self.out_dir / f"rank{trainer.global_rank}_{when}.pt")

    def on_train_start(self, trainer, pl_module):
        self._dump(trainer, pl_module, "start")

    def on_train_end(self, trainer, pl_module):
        self._dump(trainer, pl_module, "end")


def run_ddp(tmp_path: Path, *args: str) -> dict[str, dict[str, torch.Tensor]]:
    out = tmp_path / "params"
    cmd = [sys.executable, "-m", "rlgen", "fit", *args, *DDP_CPU, f"--trainer.default_root_dir={tmp_path}",
           "--trainer.callbacks+=tests.test_ddp.DumpParameters", f"--trainer.callbacks.out_dir={out}"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return {p.stem: torch.load(p) for p in out.glob("*.pt")}


def assert_ranks_identical_and_trained(params: dict[str, dict[str, torch.Tensor]]) -> None:
    assert set(params) == {"rank0_start", "rank1_start", "rank0_end", "rank1_end"}
    for key in params["rank0_end"]:
        torch.testing.assert_close(params["rank0_end"][key], params["rank1_end"][key], rtol=0, atol=0,
                                   msg=f"{key} differs between ranks after training")
    changed = any(not torch.equal(params["rank0_start"][k], params["rank0_end"][k]) for k in params["rank0_end"])
    assert changed, "training must have changed the parameters"


@pytest.mark.timeout(600)
@pytest.mark.parametrize(
    "config, extra",
    [("dqn/cartpole.yaml", ["--model.warm_start_steps=64", "--model.train_frequency=4", "--model.gradient_steps=2"]),
     ("reinforce/cartpole.yaml", ["--model.episodes_per_batch=2"])],
    ids=["dqn", "reinforce"],
)
def test_ddp_rl_ranks_stay_identical(config, extra, tmp_path):
    # DQN: gradient_steps=2 makes two manual backward passes (two all-reduces) in each training_step
    params = run_ddp(tmp_path, "-c", str(CONFIGS / config), "--trainer.max_steps=4", *extra)
    assert_ranks_identical_and_trained(params)
