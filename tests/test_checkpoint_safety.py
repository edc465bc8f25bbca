"""Checkpoints are data, not code: a file whose unpickling would run code is refused in one line at every
entry point, nothing in it runs, and everything rlgen writes or ships loads with ``weights_only=True``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from rlgen.callbacks.faults import _saved_step
from rlgen.checkpoints import read_checkpoint
from rlgen.errors import RlgenError
from rlgen.lightning_modules.classifier import load_classifier
from tests.conftest import CONFIGS, REPO
from tests.test_cli import BORING, FAST, expect_error, fit_boring


class RunsCode:
    """What an attacker pickles: unpickling it calls ``os.system`` (here: creates a marker file)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch {self.marker}",)


def crafted(path: Path, marker: Path, honest: Path | None = None) -> Path:
    """A Lightning checkpoint (an honest one's contents when given) with a code-running object inside."""
    state = torch.load(honest, weights_only=True) if honest else {"state_dict": {}, "hyper_parameters": {}}
    state["callbacks"] = {"innocent looking": RunsCode(marker)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@pytest.fixture
def marker(tmp_path) -> Path:
    path = tmp_path / "code_ran"
    yield path
    assert not path.exists(), "the checkpoint's code ran"


def test_the_crafted_file_would_run_code_if_unpickled(tmp_path):
    """The fixture is a real attack: an unrestricted load creates the marker (which is why rlgen never does one)."""
    marker = tmp_path / "ran"
    torch.load(crafted(tmp_path / "evil.ckpt", marker), weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("subcommand", ["fit", "validate", "test", "predict"])
def test_ckpt_path_refuses_code_in_one_line(subcommand, tmp_path, marker, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = crafted(tmp_path / "shared" / "agent.ckpt", marker)
    line = expect_error(capsys, [subcommand, "-c", str(CONFIGS / "dqn" / "cartpole.yaml"), "--ckpt_path", str(evil)],
                        str(evil), "holds Python objects (posix.system", "would run code", "--trust_checkpoint true")
    assert "Traceback" not in line


def test_ckpt_path_last_refuses_a_crafted_last_ckpt(tmp_path, marker, capsys):
    honest = fit_boring(tmp_path)
    crafted(honest, marker, honest=honest)  # replaced in place, inside the run directory
    expect_error(capsys, ["fit", f"--model={BORING}", f"--trainer.default_root_dir={tmp_path}", *FAST,
                          "--ckpt_path", "last"], str(honest), "would run code")


def test_the_fault_guard_reads_a_crafted_last_ckpt_as_unreadable(tmp_path, marker):
    """FaultGuard reads the step of an existing last.ckpt at the end of fit: a crafted one is unreadable (then
    overwritten by a fresh save), never unpickled."""
    assert _saved_step(crafted(tmp_path / "last.ckpt", marker)) is None


def test_load_classifier_refuses_code(tmp_path, marker):
    evil = crafted(tmp_path / "classifier.ckpt", marker)
    with pytest.raises(RlgenError, match="would run code") as info:
        load_classifier(evil)
    assert "\n" not in str(info.value) and "classifier_ckpt null" in str(info.value)


def test_read_checkpoint_refuses_code(tmp_path, marker):
    """The function rlgen's own scripts (bench scoring, export) load checkpoints with."""
    with pytest.raises(RlgenError, match="would run code"):
        read_checkpoint(crafted(tmp_path / "evil.ckpt", marker))


def with_numpy_scalar(tmp_path: Path) -> Path:
    """An honest fit's checkpoint with a numpy scalar in a callback's state (a user's callback that kept
    ``np.float64`` scores): harmless, but a Python object, so loading it needs the user's say-so."""
    state = torch.load(fit_boring(tmp_path / "fit"), weights_only=True)
    state["callbacks"]["MyCallback"] = {"best": np.float64(0.5)}
    torch.save(state, tmp_path / "numpy.ckpt")
    return tmp_path / "numpy.ckpt"


@pytest.mark.parametrize("trust", [["--trust_checkpoint", "true"], ["--weights_only", "false"]],
                         ids=["trust_checkpoint", "weights_only_false"])
def test_a_trusted_checkpoint_with_python_objects_loads_through_the_cli(trust, tmp_path, capsys, monkeypatch):
    from rlgen.cli import run

    monkeypatch.chdir(tmp_path)
    args = ["test", f"--model={BORING}", "--ckpt_path", str(with_numpy_scalar(tmp_path)),
            "--trainer.enable_progress_bar=false", "--trainer.limit_test_batches=2"]
    expect_error(capsys, args, "numpy", "would run code", "--trust_checkpoint true")
    cli = run([*args, *trust])
    assert cli.trainer.state.finished and cli.trainer.global_step == 0


def test_a_model_built_in_python_loads_from_python_with_trust(tmp_path):
    """Networks passed as objects are pickled into the hyperparameters: the CLI refuses such a file (test_cli), and
    the trust option of the message, ``load_from_checkpoint(path, weights_only=False)``, loads it."""
    from rlgen.lightning_modules.gan import GAN
    from rlgen.nets.gan import MLPDiscriminator, MLPGenerator

    model = GAN(generator=MLPGenerator(hidden=(8,)), discriminator=MLPDiscriminator(hidden=(8,)))
    path = tmp_path / "python.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams),
                "pytorch-lightning_version": "2.6.4"}, path)
    with pytest.raises(RlgenError, match="would run code"):
        read_checkpoint(path)
    loaded = GAN.load_from_checkpoint(path, weights_only=False)
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_shipped_checkpoints_are_plain_data():
    shipped = sorted((REPO / "bench" / "results").glob("*.ckpt"))
    assert len(shipped) >= 3
    for path in shipped:
        state = torch.load(path, map_location="cpu", weights_only=True)
        assert state["state_dict"], path
