"""The CLI: composition of configs, per-run directories, and one-line errors for every bad input."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from jsonargparse import Namespace
from pytorch_lightning.demos.boring_classes import BoringModel

from rlgen.cli import run
from rlgen.errors import RlgenError
from tests.conftest import CONFIGS, REPO, run_cli

BORING = "pytorch_lightning.demos.boring_classes.BoringModel"
FAST = ["--trainer.max_epochs=1", "--trainer.limit_train_batches=4", "--trainer.limit_val_batches=2",
        "--trainer.enable_progress_bar=false"]


class WiderBoring(BoringModel):
    """BoringModel with another layer size, to produce a mismatched checkpoint."""

    def __init__(self, width: int = 3) -> None:
        super().__init__()
        if width < 1:
            raise RlgenError(f"model.width must be >= 1, got {width}")
        self.save_hyperparameters()
        self.layer = torch.nn.Linear(32, width)

    def training_step(self, batch, batch_idx):
        return {"loss": self.layer(batch).sum()}


def fit_boring(tmp_path: Path, *extra: str) -> Path:
    run_cli("fit", f"--model={BORING}", f"--trainer.default_root_dir={tmp_path}", *FAST, *extra)
    ckpts = sorted(tmp_path.rglob("last.ckpt"))
    assert ckpts, "fit must write last.ckpt"
    return ckpts[-1]


def expect_error(capsys, args: list[str], *fragments: str, status: int = 1) -> str:
    with pytest.raises(SystemExit) as exit_info:
        run_cli(*args)
    assert exit_info.value.code == status
    err = capsys.readouterr().err.strip().splitlines()
    line = err[-1]
    assert line.startswith("rlgen: error: "), err
    for fragment in fragments:
        assert fragment in line, line
    return line


def test_two_runs_get_separate_directories_with_config_and_checkpoints(tmp_path):
    first = fit_boring(tmp_path)
    second = fit_boring(tmp_path)
    assert first.parent.parent != second.parent.parent
    for ckpt in (first, second):
        assert (ckpt.parent.parent / "config.yaml").is_file()


def test_configs_compose_later_files_win(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.yaml").write_text(f"model:\n  class_path: {BORING}\ntrainer:\n  max_epochs: 5\n")
    (tmp_path / "b.yaml").write_text("trainer:\n  max_epochs: 1\n  limit_train_batches: 2\n  limit_val_batches: 1\n")
    cli = run(["fit", "-c", "a.yaml", "-c", "b.yaml", "--trainer.enable_progress_bar=false"])
    assert cli.trainer.max_epochs == 1 and cli.trainer.global_step == 2


def test_a_run_builds_only_its_subcommand_and_help_lists_all(tmp_path, capsys):
    cli = run(["fit", f"--model={BORING}", f"--trainer.default_root_dir={tmp_path}", *FAST])
    assert list(cli.subcommands()) == ["fit"] and cli.trainer.global_step == 4
    with pytest.raises(SystemExit) as exit_info:
        run_cli("--help")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert all(sub in out for sub in ("fit", "validate", "test", "predict")), out
    expect_error(capsys, ["fitt", f"--model={BORING}"], "fitt", "validate", status=2)


def test_print_config_exits_cleanly(capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_cli("fit", f"--model={BORING}", "--print_config")
    assert exit_info.value.code == 0
    assert "BoringModel" in capsys.readouterr().out


@pytest.mark.parametrize(
    "yaml_text, fragments",
    [
        ("model: [\n", ["Problems parsing config"]),
        (f"model:\n  class_path: {BORING}\ntrainer:\n  max_epoch: 3\n", ["does not accept option", "max_epoch"]),
        (f"model:\n  class_path: {BORING}\ntrainer:\n  max_epochs: abc\n", ["trainer.max_epochs", "abc"]),
        ("model:\n  class_path: NoSuchModel\n", ["NoSuchModel"]),
    ],
    ids=["malformed-yaml", "unknown-key", "wrong-type", "unknown-class"],
)
def test_bad_configs_give_one_line(tmp_path, capsys, yaml_text, fragments):
    config = tmp_path / "bad.yaml"
    config.write_text(yaml_text)
    expect_error(capsys, ["fit", "-c", str(config)], *fragments, status=2)


def test_missing_checkpoint(tmp_path, capsys):
    expect_error(capsys, ["test", f"--model={BORING}", "--ckpt_path", str(tmp_path / "nope.ckpt")],
                 "checkpoint not found", "nope.ckpt")


def test_truncated_checkpoint(tmp_path, capsys):
    ckpt = fit_boring(tmp_path)
    broken = tmp_path / "broken.ckpt"
    broken.write_bytes(ckpt.read_bytes()[:2000])
    expect_error(capsys, ["test", f"--model={BORING}", "--ckpt_path", str(broken)], "corrupt or truncated")


def test_checkpoint_of_another_model_class(tmp_path, capsys):
    run_cli("fit", "--model=tests.test_cli.WiderBoring", f"--trainer.default_root_dir={tmp_path}", *FAST)
    ckpt = next(tmp_path.rglob("last.ckpt"))
    expect_error(capsys, ["test", f"--model={BORING}", "--ckpt_path", str(ckpt)],
                 "holds a WiderBoring", "builds a BoringModel")


def test_checkpoint_of_a_model_built_in_python_with_network_objects(tmp_path, capsys):
    """A GAN given network objects in Python saves them pickled in its hyperparameters: unpickling them could run
    code, so the CLI refuses the file in one line naming the classes, and says how to load it from Python."""
    from rlgen.lightning_modules.gan import GAN
    from rlgen.nets.gan import MLPDiscriminator, MLPGenerator

    model = GAN(generator=MLPGenerator(hidden=(8,)), discriminator=MLPDiscriminator(hidden=(8,)))
    ckpt = tmp_path / "python.ckpt"
    torch.save({"state_dict": model.state_dict(), "hyper_parameters": dict(model.hparams)}, ckpt)
    line = expect_error(capsys, ["predict", "-c", str(CONFIGS / "gan" / "mnist.yaml"), "--ckpt_path", str(ckpt)],
                        "holds Python objects (", "rlgen.nets.gan.MLP",
                        "load_from_checkpoint(path, weights_only=False)")
    assert str(ckpt) in line


def test_checkpoint_with_other_layer_sizes_names_the_keys(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the evaluation's logger writes below the working directory
    run_cli("fit", "--model=tests.test_cli.WiderBoring", "--model.width=3",
            f"--trainer.default_root_dir={tmp_path}", *FAST)
    ckpt = next(tmp_path.rglob("last.ckpt"))
    # Strip the saved hyperparameters so that the config's width=5 is used, as with a hand-made checkpoint.
    state = torch.load(ckpt, weights_only=False)
    state.pop("hyper_parameters", None)
    torch.save(state, ckpt)
    expect_error(capsys, ["test", "--model=tests.test_cli.WiderBoring", "--model.width=5", "--ckpt_path", str(ckpt),
                          "--trainer.enable_progress_bar=false"],
                 "does not fit this model", "layer.weight is [3, 32] in the checkpoint but [5, 32]")


def test_ckpt_path_last_finds_the_previous_run_and_continues(tmp_path):
    fit_boring(tmp_path)
    cli = run(["fit", f"--model={BORING}", f"--trainer.default_root_dir={tmp_path}", "--ckpt_path", "last",
               "--trainer.max_epochs=2", "--trainer.limit_train_batches=4", "--trainer.limit_val_batches=2",
               "--trainer.enable_progress_bar=false"])
    assert cli.trainer.global_step == 8, "resuming must continue from step 4, not restart"


def test_ckpt_path_last_without_runs(tmp_path, capsys):
    expect_error(capsys, ["fit", f"--model={BORING}", f"--trainer.default_root_dir={tmp_path}", "--ckpt_path", "last"],
                 "no last.ckpt found", str(tmp_path))


def test_ckpt_path_best_needs_a_checkpoint_that_monitors_a_metric(tmp_path, capsys):
    fit_boring(tmp_path)  # its only ModelCheckpoint is rlgen's default, which keeps last.ckpt
    expect_error(capsys, ["test", f"--model={BORING}", f"--trainer.default_root_dir={tmp_path}", "--ckpt_path", "best"],
                 "--ckpt_path best: this config has no ModelCheckpoint that monitors a metric")
    monitored = ["--trainer.callbacks+=ModelCheckpoint", "--trainer.callbacks.monitor=val/nothing_logged",
                 "--trainer.callbacks.filename=best-{step}"]
    expect_error(capsys, ["test", f"--model={BORING}", f"--trainer.default_root_dir={tmp_path}", *monitored,
                          "--ckpt_path", "best"], "--ckpt_path best: no best-*.ckpt in", "checkpoints")


@pytest.mark.parametrize("filename, auto_insert", [("best-{step}", True), (None, True),
                                                    ("epoch{epoch:03d}-neg_elbo{val/neg_elbo:.2f}", False)])
def test_best_checkpoint_globs_match_the_names_lightning_writes(filename, auto_insert):
    import fnmatch

    from pytorch_lightning.callbacks import ModelCheckpoint

    from rlgen.cli.config import best_checkpoint_globs

    entry = {"class_path": "pytorch_lightning.callbacks.ModelCheckpoint",
             "init_args": {"monitor": "val/neg_elbo", "filename": filename, "auto_insert_metric_name": auto_insert}}
    latest = {"class_path": "pytorch_lightning.callbacks.ModelCheckpoint", "init_args": {"filename": "latest-{step}"}}
    (glob,) = best_checkpoint_globs(Namespace(trainer=Namespace(callbacks=[entry, latest])))
    written = ModelCheckpoint(dirpath="ckpts", filename=filename, auto_insert_metric_name=auto_insert)
    metrics = {"epoch": torch.tensor(7), "step": torch.tensor(1200), "val/neg_elbo": torch.tensor(95.125)}
    assert fnmatch.fnmatch(Path(written.format_checkpoint_name(metrics)).name, glob + ".ckpt")
    assert not fnmatch.fnmatch("latest-step=1200.ckpt", glob + ".ckpt"), "the newest-state checkpoints are not it"


def test_unwritable_log_directory(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    expect_error(capsys, ["fit", f"--model={BORING}", f"--trainer.default_root_dir={blocker / 'runs'}"],
                 "cannot write to the log directory")


@pytest.mark.xdist_group("processes")
def test_console_script_exit_status_and_single_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "rlgen", "fit", f"--model={BORING}", "--trainer.max_epohcs=1"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "rlgen: error: unrecognized arguments: --trainer.max_epohcs=1 "
        "(run `rlgen <subcommand> --help` for the accepted keys and types)"
    ]


def test_contradictory_trainer_settings(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `fit` checks that its log directory is writable by creating it
    expect_error(capsys, ["fit", f"--model={BORING}", "--trainer.enable_checkpointing=false",
                          "--trainer.callbacks+=ModelCheckpoint"],
                 "enable_checkpointing=False", status=2)


class WorseningBoring(BoringModel):
    """Its validation loss grows every epoch, so a monitored checkpoint saves only after the first one."""

    def validation_step(self, batch, batch_idx):
        self.log("val/loss", float(self.current_epoch))


def test_last_ckpt_is_the_newest_state_even_when_the_metric_stops_improving(tmp_path, capsys):
    run_cli("fit", "--model=tests.test_cli.WorseningBoring", f"--trainer.default_root_dir={tmp_path}",
            "--trainer.max_epochs=3", "--trainer.limit_train_batches=2", "--trainer.limit_val_batches=1",
            "--trainer.enable_progress_bar=false", "--trainer.callbacks+=ModelCheckpoint",
            "--trainer.callbacks.monitor=val/loss", "--trainer.callbacks.save_last=true")
    last = torch.load(next(tmp_path.rglob("last.ckpt")), weights_only=False)
    assert last["global_step"] == 6 and last["epoch"] == 2
    best = [p.name for p in tmp_path.rglob("*.ckpt") if p.name.startswith("epoch=")]
    assert best == ["epoch=0-step=2.ckpt"], best
    # rlgen turned the user's save_last off (its own checkpoint writes last.ckpt), and said so, once
    assert capsys.readouterr().err.count("save_last of ModelCheckpoint(monitor=val/loss) is off") == 1


def test_errors_raised_in_a_model_init_are_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # `fit` checks that its log directory is writable by creating it
    expect_error(capsys, ["fit", "--model=tests.test_cli.WiderBoring", "--model.width=-1"], "width")


def test_command_line_model_arguments_win_over_the_checkpoints_hyperparameters(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the evaluation's logger writes below the working directory
    model = "--model=tests.test_cli.WiderBoring"
    run_cli("fit", model, "--model.width=4", f"--trainer.default_root_dir={tmp_path}", *FAST)
    ckpt = str(next(tmp_path.rglob("last.ckpt")))
    quiet = "--trainer.enable_progress_bar=false"
    # Without an explicit value the checkpoint's width (4) is restored over the class default (3).
    assert run(["test", model, "--ckpt_path", ckpt, quiet]).model.layer.out_features == 4
    # An explicit --model.width beats the saved one: the model is built with 5 and the checkpoint no longer fits.
    expect_error(capsys, ["test", model, "--model.width=5", "--ckpt_path", ckpt, quiet],
                 "layer.weight is [4, 32] in the checkpoint but [5, 32]")


def test_runs_are_named_after_their_config_which_names_no_logger(tmp_path, monkeypatch):
    import yaml

    from rlgen.cli.config import run_name
    from tests.test_configs import ALGO_CONFIGS

    for config in ALGO_CONFIGS:  # the logger lives in one place: rlgen's default
        assert "logger" not in (yaml.safe_load(config.read_text()).get("trainer") or {}), config
    overlay, clusters = REPO / "configs" / "trainer" / "ddp.yaml", REPO / "configs" / "dcgan" / "mnist_clusters.yaml"
    assert run_name(["fit", "-c", str(overlay), "-c", str(clusters)]) == "dcgan_mnist_clusters"
    assert run_name(["fit", f"--model={BORING}"]) == "rlgen"
    monkeypatch.chdir(tmp_path)
    jump_chain = ["fit", "-c", str(REPO / "configs" / "qlearning" / "jump_chain.yaml"), "--trainer.max_steps=2",
                  "--trainer.enable_progress_bar=false"]
    run_cli(*jump_chain)
    assert (tmp_path / "runs" / "qlearning_jump_chain" / "version_0" / "config.yaml").is_file()
    run_cli(*jump_chain, "--trainer.default_root_dir=elsewhere")  # the default logger follows it, as Lightning's
    assert (tmp_path / "elsewhere" / "qlearning_jump_chain" / "version_0" / "checkpoints" / "last.ckpt").is_file()
    run_cli(*jump_chain, "--trainer.log_every_n_steps=1", "-c", str(REPO / "configs" / "logger" / "csv.yaml"))
    assert (tmp_path / "runs" / "qlearning_jump_chain" / "version_1" / "metrics.csv").is_file(), "overlays keep names"
