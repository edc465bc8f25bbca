"""Faults lose nothing: NaN losses stop with a message and keep the last good checkpoint; kill -9 and Ctrl-C
leave an intact checkpoint that ``--ckpt_path last`` resumes from."""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from pytorch_lightning import Callback
from pytorch_lightning.demos.boring_classes import BoringModel, RandomDataset

from tests.conftest import REPO, run_cli

# The tests that start a process of their own (kill -9, signals) run one after another on one xdist worker
# (xdist_group "processes", tests/conftest.py); the others run in this process, on either worker.
PROCESSES = pytest.mark.xdist_group("processes")

EVERY_STEP = ("--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.every_n_train_steps=1",
              "--trainer.callbacks.save_last=true")


class NaNAfter(BoringModel):
    """A BoringModel whose loss turns NaN at ``bad_step``."""

    def __init__(self, bad_step: int = 3) -> None:
        super().__init__()
        self.bad_step = bad_step

    def training_step(self, batch, batch_idx):
        loss = self.step(batch)
        if self.global_step >= self.bad_step:
            loss = loss * float("nan")
        self.log("train/loss", loss)
        return loss


class SlowBoring(BoringModel):
    """A BoringModel that takes 50 ms a step, so a test can interrupt it mid-training."""

    def training_step(self, batch, batch_idx):
        time.sleep(0.05)
        return super().training_step(batch, batch_idx)


class SlowBoringWithWorkers(SlowBoring):
    """SlowBoring whose data comes from a DataLoader worker process, as the image configs' does."""

    def train_dataloader(self):
        return torch.utils.data.DataLoader(RandomDataset(32, 64), batch_size=2, num_workers=1)


class WorkerDiesAfter(BoringModel):
    """A BoringModel whose data stops after 3 batches as when a DataLoader worker process died: ``how`` names
    one of torch's two messages, or ``pipe``: the pipe to the worker closes while it hands a batch over."""

    MESSAGES = {"exited": "exited unexpectedly", "killed": "is killed by signal: Terminated. "}

    def __init__(self, how: str = "exited") -> None:
        super().__init__()
        self.how = how

    def train_dataloader(self):
        def batches():
            yield from list(super(WorkerDiesAfter, self).train_dataloader())[:3]
            if self.how == "pipe":  # the real thing: reading from a pipe whose other end closed
                receiving, sending = multiprocessing.Pipe(duplex=False)
                sending.close()
                receiving.recv()
            raise RuntimeError(f"DataLoader worker (pid(s) 4242) {self.MESSAGES[self.how]}")
        return batches()


@pytest.mark.parametrize("how", [*sorted(WorkerDiesAfter.MESSAGES), "pipe"])
def test_a_dead_dataloader_worker_still_saves_the_current_step(tmp_path, how):
    """Any of the three can reach the main process first when a SIGTERM ends the whole process group."""
    with pytest.raises(EOFError if how == "pipe" else RuntimeError):
        run_cli("fit", f"--model={__name__}.WorkerDiesAfter", f"--model.how={how}",
                f"--trainer.default_root_dir={tmp_path}", "--trainer.max_steps=10", "--trainer.limit_val_batches=0",
                "--trainer.enable_progress_bar=false")
    # Lightning fetches one batch ahead, so the error comes while the second step's batch is in hand
    assert torch.load(next(tmp_path.rglob("last.ckpt")), weights_only=False)["global_step"] == 2


def test_an_eof_outside_multiprocessing_is_not_a_dead_worker():
    """Only a pipe to a child process counts: an EOFError of the user's own code is not an interruption."""
    from rlgen.callbacks.faults import _worker_died

    try:
        raise EOFError("a truncated file")
    except EOFError as error:
        assert not _worker_died(error)
    assert not _worker_died(RuntimeError("DataLoader worker (pid 1) raised ValueError"))


def test_nan_loss_stops_with_message_and_keeps_last_good_checkpoint(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("fit", "--model=tests.test_faults.NaNAfter", f"--trainer.default_root_dir={tmp_path}",
                "--trainer.max_epochs=1", "--trainer.limit_train_batches=10", "--trainer.enable_progress_bar=false",
                *EVERY_STEP)
    assert exit_info.value.code == 1
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("rlgen: error: train/loss became nan at step 4"), line
    last = next(tmp_path.rglob("last.ckpt"))
    assert str(last) in line
    ckpt = torch.load(last, weights_only=False)
    assert ckpt["global_step"] == 3
    assert all(torch.isfinite(v).all() for v in ckpt["state_dict"].values()), "the kept checkpoint must be good"


def _start_slow_fit(root: Path, *extra: str, model: str = "SlowBoring") -> subprocess.Popen:
    # BoringModel's epoch is 32 batches (1.6 s at 50 ms a step): many epochs, so that the run is still
    # training whenever the test interrupts it, however slow a loaded machine makes the start-up
    args = [sys.executable, "-m", "rlgen", "fit", f"--model=tests.test_faults.{model}",
            f"--trainer.default_root_dir={root}", "--trainer.max_epochs=1000",
            "--trainer.limit_val_batches=0", "--trainer.enable_progress_bar=false", *EVERY_STEP, *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    # Its own process group, so that a test can signal the run and its DataLoader workers together.
    return subprocess.Popen(args, cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def wait_until_training(root: Path, proc: subprocess.Popen, timeout: float = 120) -> None:
    """Wait until the run wrote its config.yaml (signal handlers are set by then), plus a few steps."""
    deadline = time.time() + timeout
    while not list(root.rglob("config.yaml")):
        assert proc.poll() is None, proc.communicate()
        assert time.time() < deadline, "training did not start"
        time.sleep(0.1)
    time.sleep(1.5)


def _wait_for_checkpoint(root: Path, proc: subprocess.Popen, min_step: int = 5, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        assert proc.poll() is None, proc.communicate()
        last = list(root.rglob("last.ckpt"))
        if last:
            try:
                if torch.load(last[0], weights_only=False)["global_step"] >= min_step:
                    return
            except Exception:
                pass  # being replaced at this very moment: try again
        time.sleep(0.1)
    raise AssertionError("no checkpoint appeared")


def _resume_steps(root: Path) -> int:
    last = next(root.rglob("last.ckpt"))
    saved = torch.load(last, weights_only=False)["global_step"]
    from rlgen.cli import run

    cli = run(["fit", "--model=tests.test_faults.SlowBoring", f"--trainer.default_root_dir={root}",
               "--ckpt_path=last", f"--trainer.max_steps={saved + 3}", "--trainer.limit_val_batches=0",
               "--trainer.enable_progress_bar=false"])
    assert cli.trainer.global_step == saved + 3, "resume must continue from the saved step"
    return saved


@PROCESSES
def test_kill_9_leaves_an_intact_checkpoint_that_resumes(tmp_path):
    proc = _start_slow_fit(tmp_path)
    try:
        _wait_for_checkpoint(tmp_path, proc)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        proc.kill()
    killed_dir = next(tmp_path.rglob("last.ckpt")).parent
    assert _resume_steps(tmp_path) >= 5
    # A kill -9 in the middle of a write can leave a temporary file in the killed run's directory (the next
    # save there removes it); the resumed run writes elsewhere and leaves none of its own.
    assert all(p.parent == killed_dir for p in tmp_path.rglob("*.tmp*")), list(tmp_path.rglob("*.tmp*"))


class CtrlCAt(Callback):
    """Sends this process a real SIGINT (what Ctrl-C in a terminal does) after training step ``step``."""

    def __init__(self, step: int = 3) -> None:
        self.step = step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), signal.SIGINT)


def test_ctrl_c_saves_a_checkpoint_at_the_current_step(tmp_path, caplog):
    """SIGINT to the run, in this process (Lightning ignores further SIGINTs while it shuts down: the test puts
    the handler back); SIGTERM is sent to a run's whole process group below (what scancel does)."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)  # Python's own, as in a terminal
    try:
        with pytest.raises(SystemExit):
            run_cli("fit", "--model=tests.test_faults.SlowBoring", f"--trainer.default_root_dir={tmp_path}",
                    "--trainer.max_epochs=1000", "--trainer.limit_val_batches=0", "--trainer.enable_progress_bar=false",
                    "--trainer.callbacks+=tests.test_faults.CtrlCAt")  # no periodic checkpoint is due before then
    finally:
        signal.signal(signal.SIGINT, previous)
    assert "Interrupted (KeyboardInterrupt): saved" in caplog.text and "--ckpt_path last" in caplog.text
    assert torch.load(next(tmp_path.rglob("last.ckpt")), weights_only=False)["global_step"] == 3


@PROCESSES
def test_sigterm_to_the_process_group_saves_a_checkpoint(tmp_path):
    """scancel and ``kill -TERM -<pgid>`` end the DataLoader workers as well as the run: still saved."""
    proc = _start_slow_fit(tmp_path, "--trainer.callbacks.every_n_train_steps=1000", model="SlowBoringWithWorkers")
    try:
        wait_until_training(tmp_path, proc)
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert "saved" in err and "--ckpt_path last" in err, err[-2000:]
    assert torch.load(next(tmp_path.rglob("last.ckpt")), weights_only=False)["global_step"] > 0


def test_checkpoint_write_failure_keeps_the_previous_file(tmp_path, monkeypatch):
    from rlgen.checkpoints import AtomicCheckpointIO

    io = AtomicCheckpointIO()
    path = tmp_path / "last.ckpt"
    io.save_checkpoint({"global_step": 1}, path)

    def disk_full(obj, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError):
        io.save_checkpoint({"global_step": 2}, path)
    monkeypatch.undo()
    assert torch.load(path, weights_only=False) == {"global_step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"], "no temporary file may stay behind"


class CrashingEnv(gym.Env):
    """A CartPole-shaped env whose ``step`` raises after ``crash_after`` steps (episodes last 20 steps)."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (4,), np.float32)
    action_space = gym.spaces.Discrete(2)

    def __init__(self, crash_after: int = 300) -> None:
        self.crash_after, self.steps, self.t = crash_after, 0, 0

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(4, np.float32), {}

    def step(self, action):
        self.steps += 1
        self.t += 1
        if self.steps > self.crash_after:
            raise RuntimeError("simulator lost its connection")
        return np.zeros(4, np.float32), 1.0, self.t >= 20, False, {}


def test_env_crash_names_env_and_step_and_keeps_checkpoints(tmp_path, monkeypatch):
    gym.register("rlgen-test/Crash-v0", entry_point=CrashingEnv)
    monkeypatch.chdir(tmp_path)
    from rlgen.cli import run

    with pytest.raises(RuntimeError, match="simulator lost its connection") as info:
        run(["fit", "-c", str(REPO / "configs" / "dqn" / "cartpole.yaml"), "--model.env_id=rlgen-test/Crash-v0",
             "--model.warm_start_steps=64", "--model.train_frequency=4", "--model.gradient_steps=1",
             "--model.eval_episodes=1", "--trainer.val_check_interval=5", "--trainer.max_steps=1000",
             "--trainer.enable_progress_bar=false"])
    notes = " ".join(getattr(info.value, "__notes__", []))
    assert "rlgen-test/Crash-v0" in notes and "step" in notes, notes
    last = next(tmp_path.rglob("last.ckpt"))
    assert torch.load(last, weights_only=False)["global_step"] >= 5, "checkpoints written before the crash stay"


def test_the_end_of_training_is_saved_between_periodic_checkpoints(tmp_path):
    """max_steps (or max_time) can end a run between two periodic checkpoints: last.ckpt still holds
    the final step, so `--ckpt_path last` tests or resumes what was trained."""
    run_cli("fit", "--model=BoringModel", f"--trainer.default_root_dir={tmp_path}", "--trainer.max_steps=7",
            "--trainer.enable_progress_bar=false", "--trainer.callbacks+=ModelCheckpoint",
            "--trainer.callbacks.every_n_train_steps=5", "--trainer.callbacks.save_last=true")
    assert torch.load(next(tmp_path.rglob("last.ckpt")), weights_only=False)["global_step"] == 7


def test_a_run_shorter_than_the_checkpoint_interval_leaves_one_last_checkpoint(tmp_path):
    """Before its first periodic save, the run's end is saved once: last.ckpt, with no last-v1.ckpt beside it
    (two files named last make `--ckpt_path last` ambiguous)."""
    run_cli("fit", "--model=BoringModel", f"--trainer.default_root_dir={tmp_path}", "--trainer.max_steps=3",
            "--trainer.enable_progress_bar=false", "--trainer.callbacks+=ModelCheckpoint",
            "--trainer.callbacks.every_n_train_steps=5", "--trainer.callbacks.save_last=true")
    lasts = sorted(p.name for p in tmp_path.rglob("last*.ckpt"))
    assert lasts == ["last.ckpt"], lasts
    assert torch.load(next(tmp_path.rglob("last.ckpt")), weights_only=False)["global_step"] == 3
