"""SLURM preemption, simulated in one process: SIGUSR1 -> checkpoint + `scontrol requeue`, then the
requeued job resumes from that checkpoint and its step counter continues."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from rlgen.cli import run
from tests.conftest import CONFIGS, REPO
from tests.test_faults import wait_until_training

# Starts processes of its own: these tests run one after another on one xdist worker (tests/conftest.py).
pytestmark = pytest.mark.xdist_group("processes")

SLURM_ENV = {"SLURM_NTASKS": "1", "SLURM_NTASKS_PER_NODE": "1", "SLURM_JOB_NAME": "rlgen-test",
             "SLURM_JOB_ID": "4242", "SLURM_NODEID": "0", "SLURM_PROCID": "0", "SLURM_LOCALID": "0",
             "SLURM_NODELIST": "localhost"}


def test_sigusr1_checkpoints_requeues_and_resumes(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "scontrol.log"
    scontrol = bin_dir / "scontrol"
    scontrol.write_text(f"#!/bin/sh\necho \"$@\" >> {calls}\n")
    scontrol.chmod(0o755)
    root = tmp_path / "job"
    env = {**os.environ, **SLURM_ENV, "PYTHONPATH": str(REPO), "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    common = ["--model=tests.test_faults.SlowBoring", "-c", str(CONFIGS / "trainer" / "slurm.yaml"),
              f"--trainer.default_root_dir={root}", "--trainer.limit_val_batches=0",
              "--trainer.enable_progress_bar=false", "--trainer.devices=1", "--trainer.accelerator=cpu"]
    proc = subprocess.Popen([sys.executable, "-m", "rlgen", "fit", *common, "--trainer.max_steps=2000"],
                            cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_until_training(root, proc)
        proc.send_signal(signal.SIGUSR1)
        deadline = time.time() + 60
        while time.time() < deadline and not (calls.exists() and list(root.glob("hpc_ckpt_*.ckpt"))):
            time.sleep(0.2)
    finally:
        proc.kill()  # SLURM would now stop the job and start it again
        out = proc.communicate()[0]
    assert calls.exists(), out[-3000:]
    assert calls.read_text().split() == ["requeue", "4242"]
    hpc = next(root.glob("hpc_ckpt_*.ckpt"))
    saved = torch.load(hpc, weights_only=False)["global_step"]
    assert saved > 0

    for key, value in SLURM_ENV.items():
        monkeypatch.setenv(key, value)
    cli = run(["fit", *common, f"--trainer.max_steps={saved + 3}"])
    assert cli.trainer.global_step == saved + 3, "the requeued job must resume from the HPC checkpoint"
