"""Real 2-process DDP runs on the CPU (gloo): the ranks' parameters stay identical after training steps.

The RL families here (their data comes from environments in each process, DQN and SAC step their optimizers by hand),
both in one pair of rank processes started the way torchrun starts them (``LOCAL_RANK``, ``WORLD_SIZE``, ...
in the environment, so Lightning launches nothing itself): each process start costs seconds of imports. An
image model (a DataModule, automatic optimization) through Lightning's own launcher: bench/scaling.py's smoke
(tests/test_bench_scaling.py); the GANs' two optimizers: test_gan.py, marked slow."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
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
    """Saves every rank's parameters, before and after training, to ``out_dir/rank<r>_{start,end}.pt``, and the
    state that is not parameters (the normalization statistics) at the end to ``rank<r>_end.extra``."""

    def __init__(self, out_dir: str = "params") -> None:
        self.out_dir = Path(out_dir)

    def _dump(self, trainer: Trainer, pl_module: LightningModule, when: str) -> None:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        params = {k: v.detach().cpu().clone() for k, v in pl_module.named_parameters()}
        torch.save(params, self.out_dir / f"rank{trainer.global_rank}_{when}.pt")
        extra = {k: v for k, v in pl_module.state_dict().items() if k.endswith("_extra_state")}
        if when == "end" and extra:
            torch.save(extra, self.out_dir / f"rank{trainer.global_rank}_end.extra")

    def on_train_start(self, trainer, pl_module):
        self._dump(trainer, pl_module, "start")

    def on_fit_end(self, trainer, pl_module):  # after the module's on_train_end
        self._dump(trainer, pl_module, "end")


# rlgen fit of each RL config for 4 steps on small budgets; DQN's gradient_steps=2 makes two manual backward
# passes (two all-reduces) in each training_step
RUNS = {"dqn": ["-c", str(CONFIGS / "dqn" / "cartpole.yaml"), "--model.warm_start_steps=64",
                "--model.train_frequency=4", "--model.gradient_steps=2", "--trainer.max_steps=4"],
        "reinforce": ["-c", str(CONFIGS / "reinforce" / "cartpole.yaml"), "--model.episodes_per_batch=2",
                      "--trainer.max_steps=4"],
        # PPO: minibatch steps of one rollout; SAC: two optimizers stepped by hand (strategy: ddp becomes
        # ddp_find_unused_parameters_true, its declared ddp_strategy), 2 gradient steps of 2 optimizer steps
        # with the normalization statistics, which each rank gathers from its own envs and the ranks then merge
        "ppo": ["-c", str(CONFIGS / "ppo" / "cartpole.yaml"), "--trainer.max_steps=4", "--model.normalize_obs=true",
                "--model.normalize_reward=true"],
        "sac": ["-c", str(CONFIGS / "sac" / "pendulum.yaml"), "--model.batch_size=32", "--model.warm_start_steps=64",
                "--model.actor.init_args.hidden_sizes=[16]", "--model.critic.init_args.hidden_sizes=[16]",
                "--trainer.max_steps=4"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_ddp_ranks(tmp_path: Path, runs: dict[str, list[str]]) -> dict[str, dict[str, dict[str, torch.Tensor]]]:
    """Starts the 2 rank processes; each runs ``rlgen fit`` of every run in ``runs``, one after another (the
    process group stays up between them). Returns each run's parameters by rank and time (``rank0_start``...)."""
    fits = [["fit", *args, *DDP_CPU, f"--trainer.default_root_dir={tmp_path / name}",
             "--trainer.callbacks+=tests.test_ddp.DumpParameters", f"--trainer.callbacks.out_dir={tmp_path / name}"]
            for name, args in runs.items()]
    code = f"from rlgen.cli import cli_main\nfor args in {fits!r}:\n    cli_main(args)\n"
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
           "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2", "NODE_RANK": "0"}
    logs = [tmp_path / f"rank{rank}.log" for rank in (0, 1)]
    procs = [subprocess.Popen([sys.executable, "-c", code], cwd=tmp_path, env={**env, "LOCAL_RANK": str(rank)},
                              stdout=subprocess.DEVNULL, stderr=log.open("w")) for rank, log in enumerate(logs)]
    deadline = time.monotonic() + 540
    try:  # a rank that fails leaves the other waiting for it: stop both
        while any(p.poll() is None for p in procs) and not any(p.poll() for p in procs):
            assert time.monotonic() < deadline, "the DDP ranks did not finish"
            time.sleep(0.2)
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()
    failed = [f"rank {rank} (exit status {proc.returncode}):\n{log.read_text()[-3000:]}"
              for rank, (proc, log) in enumerate(zip(procs, logs, strict=True)) if proc.returncode != 0]
    assert not failed, "\n".join(failed)
    return {name: {p.stem: torch.load(p) for p in (tmp_path / name).glob("*.pt")} for name in runs}


def assert_ranks_identical_and_trained(params: dict[str, dict[str, torch.Tensor]], name: str) -> None:
    assert set(params) == {"rank0_start", "rank1_start", "rank0_end", "rank1_end"}, name
    for key in params["rank0_end"]:
        torch.testing.assert_close(params["rank0_end"][key], params["rank1_end"][key], rtol=0, atol=0,
                                   msg=f"{name}: {key} differs between ranks after training")
    changed = any(not torch.equal(params["rank0_start"][k], params["rank0_end"][k]) for k in params["rank0_end"])
    assert changed, f"{name}: training must have changed the parameters"


@pytest.mark.timeout(600)
def test_ddp_rl_ranks_stay_identical(tmp_path):
    for name, params in run_ddp_ranks(tmp_path, RUNS).items():
        assert_ranks_identical_and_trained(params, name)
    # PPO's statistics: the same on both ranks, and of both ranks' data (one rollout of 8 envs x 32 steps each)
    stats = [torch.load(tmp_path / "ppo" / f"rank{rank}_end.extra", weights_only=False) for rank in (0, 1)]
    assert set(stats[0]) == {"obs_rms._extra_state", "reward_scaler.return_rms._extra_state"}
    torch.testing.assert_close(stats[0], stats[1], rtol=0, atol=0)
    assert stats[0]["obs_rms._extra_state"]["count"] == pytest.approx(2 * 8 * 32, abs=0.01)
