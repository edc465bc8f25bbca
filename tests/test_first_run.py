"""A new user's first ten minutes: the README's first config end to end, the closing summary, evaluation
runs that log inside the run they evaluate, predict's default folder, --version, `rlgen list`, the hints
of --help and of a missing -c, the thread default, and plain progress lines in a log file."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from rlgen.callbacks.progress import ProgressLines, default_progress
from rlgen.cli import cli_main
from rlgen.cli.listing import OVERLAY_DIRS, list_configs
from rlgen.cli.summary import rebuild_args
from tests.conftest import CONFIGS, REPO

CARTPOLE = str(CONFIGS / "dqn" / "cartpole.yaml")
TINY_DQN = ["--trainer.max_steps=64", "--model.warm_start_steps=64", "--model.train_frequency=32",
            "--model.gradient_steps=16", "--trainer.val_check_interval=2", "--model.eval_episodes=2",
            "--model.test_episodes=2"]


def summary_rows(text: str) -> dict[str, str]:
    """``{label: value}`` of a closing summary's indented rows (continuation rows join their label's value)."""
    rows: dict[str, str] = {}
    label = ""
    for line in text[text.index("rlgen: "):].splitlines()[1:]:
        match = re.match(r"^  (\S.{0,15}?)\s{2,}(\S.*)$|^ {19}(\S.*)$", line)
        if not match:
            break
        if match.group(3):
            rows[label] += "\n" + match.group(3)
        else:
            label = match.group(1).strip()
            rows[label] = match.group(2)
    return rows


def test_default_job_ends_with_a_summary_and_test_logs_inside_its_run(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", "-c", CARTPOLE, *TINY_DQN])
    out = capsys.readouterr().out
    assert "rlgen: fit finished after 64 steps in" in out
    rows = summary_rows(out[out.index("rlgen: fit finished"):])
    run_dir = Path(rows["run directory"])
    assert run_dir == Path("runs/dqn_cartpole/version_0") and (run_dir / "config.yaml").is_file()
    assert rows["last checkpoint"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert Path(rows["last checkpoint"]).is_file()
    best = rows["best checkpoint"]
    assert best.startswith(str(run_dir / "checkpoints" / "best-step=")) and "(val/episodic_return " in best
    assert Path(best.split(" (")[0]).is_file()
    assert re.search(r"val/episodic_return \d", rows["final"])
    assert rows["next"].splitlines()[0] == f"rlgen test -c {CARTPOLE} --ckpt_path last"
    assert rows["next"].splitlines()[1].startswith(f"rlgen test -c {CARTPOLE} --ckpt_path best   #")

    # The next command the summary gives: it logs inside the training run, not as a new run beside it.
    cli_main(["test", "-c", CARTPOLE, "--ckpt_path", "last", "--model.test_episodes=2"])
    captured = capsys.readouterr()
    assert f"rlgen: using {run_dir / 'checkpoints' / 'last.ckpt'}" in captured.err
    rows = summary_rows(captured.out[captured.out.index("rlgen: test finished"):])
    assert Path(rows["run directory"]) == (tmp_path / run_dir / "test" / "version_0")
    assert re.search(r"test/episodic_return \d", rows["final"])
    assert sorted(p.name for p in Path("runs/dqn_cartpole").iterdir()) == ["version_0"]
    assert "last checkpoint" not in rows, "an evaluation writes no checkpoints"

    # --ckpt_path best: the checkpoint of the best evaluation that the summary named, found in a new process
    cli_main(["test", "-c", CARTPOLE, "--ckpt_path", "best", "--model.test_episodes=1"])
    assert f"rlgen: using {best.split(' (')[0]}" in capsys.readouterr().err


def test_the_next_commands_repeat_the_model_class_the_data_and_the_root_folder_of_the_command_line():
    """A checkpoint restores its model's arguments but not its class, nor where the data and the run are."""
    args = ["fit", "-c", "configs/vae/mnist.yaml", "--model", "rlgen.lightning_modules.vae.VAE", "--model.lr=1e-3",
            "--data.data_dir=../shared/data", "--data.batch_size", "64", "--trainer.max_steps=5",
            "--trainer.default_root_dir=my runs"]
    assert rebuild_args(args) == ["--model=rlgen.lightning_modules.vae.VAE", "--data.data_dir=../shared/data",
                                  "--data.batch_size=64", "--trainer.default_root_dir='my runs'"]


def test_evaluation_of_a_checkpoint_outside_a_run_logs_under_the_config_name(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    cli_main(["fit", "-c", CARTPOLE, *TINY_DQN, "--trainer.enable_progress_bar=false"])
    exported = tmp_path / "agent.ckpt"
    exported.write_bytes(Path("runs/dqn_cartpole/version_0/checkpoints/last.ckpt").read_bytes())
    cli_main(["validate", "-c", CARTPOLE, f"--ckpt_path={exported}", "--model.eval_episodes=1",
              "--trainer.enable_progress_bar=false"])
    assert Path("runs/dqn_cartpole/validate/version_0/config.yaml").is_file()


def test_predict_writes_into_its_run_by_default_and_says_where(tmp_path, monkeypatch, capsys, mnist_dir):
    monkeypatch.chdir(tmp_path)
    tiny = [f"--data.data_dir={mnist_dir}", "--trainer.max_epochs=1", "--trainer.limit_train_batches=2",
            "--trainer.limit_val_batches=1", "--trainer.limit_predict_batches=2", "--trainer.enable_progress_bar=false",
            "--data.num_workers=0"]
    vae = str(CONFIGS / "vae" / "mnist.yaml")
    cli_main(["fit", "-c", vae, *tiny])
    capsys.readouterr()
    cli_main(["predict", "-c", vae, *tiny, "--ckpt_path", "last"])
    out = capsys.readouterr().out
    rows = summary_rows(out[out.index("rlgen: predict finished"):])
    grids = sorted(Path("runs/vae_mnist/version_0/predict/version_0/predictions").glob("*.png"))
    assert [g.name for g in grids] == ["samples_0000.png", "samples_0001.png"]
    assert rows["files written"] == ", ".join(str(Path(rows["run directory"]) / "predictions" / g.name) for g in grids)


def test_predict_on_a_family_without_predictions_says_what_to_run_instead(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as done:
        cli_main(["predict", "-c", CARTPOLE, "--trainer.enable_progress_bar=false"])
    assert done.value.code == 1
    err = capsys.readouterr().err.strip()
    assert err == ("rlgen: error: DQN has no predict step; `rlgen test -c <config> --ckpt_path ...` evaluates it "
                   "(and records videos with --model.video_dir)")


def test_version_names_rlgen_and_its_main_dependencies(capsys):
    with pytest.raises(SystemExit) as done:
        cli_main(["--version"])
    assert done.value.code == 0
    out = capsys.readouterr().out.strip()
    assert re.fullmatch(r"rlgen \d+\.\d+\.\d+ \(pytorch-lightning \S+, torch \S+\)", out)


def test_list_shows_every_config_with_the_expected_result_and_wall_time_of_its_header(capsys):
    cli_main(["list"])
    out = capsys.readouterr().out
    assert out == list_configs() + "\n"
    configs = sorted(p for p in CONFIGS.glob("*/*.yaml") if p.parent.name not in OVERLAY_DIRS)
    assert len(configs) >= 15
    for config in configs:
        name = f"{config.parent.name}/{config.name}"
        block = out[out.index(f"{name}  ("):].split("\n    wall time:")[0]
        assert "not stated" not in block, f"{name}: its header states no expected result"
    # the DQN CartPole entry reads its header, word for word
    header = (CONFIGS / "dqn" / "cartpole.yaml").read_text()
    first_words = re.search(r"# Expected: (.{30})", header).group(1)
    assert first_words in out[out.index("dqn/cartpole.yaml"):]


@pytest.mark.xdist_group("processes")
def test_version_and_list_answer_without_importing_torch_or_lightning():
    """They only print text: the console script answers them before the seconds-long imports."""
    code = ("import sys\nfrom rlgen.cli.console import main\nmain(['list'])\n"
            "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('torch', 'pytorch_lightning', 'lightning', 'gymnasium') if m in sys.modules)\n"
            "print('IMPORTED', heavy)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "IMPORTED []" in proc.stdout and re.search(r"^rlgen \d+\.\d+\.\d+ \(", proc.stdout, re.M), proc.stdout[-500:]


def test_missing_config_and_missing_subcommand_suggest_the_configs(capsys):
    for args in (["fit"], []):
        with pytest.raises(SystemExit) as done:
            cli_main(args)
        assert done.value.code == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("rlgen: error: ") and "\n" not in err
        assert "rlgen fit -c configs/dqn/cartpole.yaml" in err and "rlgen list" in err


def test_help_of_a_config_points_to_its_models_options(capsys):
    with pytest.raises(SystemExit) as done:
        cli_main(["fit", "-c", str(CONFIGS / "vae" / "mnist.yaml"), "--help"])
    assert done.value.code == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    assert last.startswith("The model's own options (VAE): rlgen fit -c ") and last.endswith("--model.help VAE")


def test_small_networks_default_to_one_thread_and_the_caller_keeps_its_threads(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    before = torch.get_num_threads()
    calls = []
    real = torch.set_num_threads
    monkeypatch.setattr(torch, "set_num_threads", lambda n: (calls.append(n), real(n)))
    quiet = [*TINY_DQN, "--trainer.enable_progress_bar=false", "--trainer.val_check_interval=100"]
    cli_main(["fit", "-c", CARTPOLE, *quiet])
    assert calls == [1, before], "CartPole's MLP runs on one thread; the caller's count comes back"
    calls.clear()
    cli_main(["fit", "-c", CARTPOLE, *quiet, "--threads=3"])
    assert calls == [3, before]
    calls.clear()
    monkeypatch.setenv("OMP_NUM_THREADS", "2")  # the user's own choice wins over the model's default
    cli_main(["fit", "-c", CARTPOLE, *quiet])
    assert calls == [before]
    assert torch.get_num_threads() == before


def test_progress_lines_in_a_log_file_count_the_step_budget(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert isinstance(default_progress(), ProgressLines), "pytest's captured stdout is not a terminal"
    monkeypatch.setattr("rlgen.cli.app.default_progress", lambda: ProgressLines(every_s=0.0))  # a line every batch
    cli_main(["fit", "-c", CARTPOLE, *TINY_DQN])
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("step ")]
    steps = [int(re.match(r"step (\d+)/64 \(", ln).group(1)) for ln in lines]
    assert steps and steps == sorted(steps) and steps[-1] == 64, lines
    assert any("| eval return " in ln for ln in lines), "lines after an evaluation show its return"
    assert all(re.search(r"\| \d+ s(, ETA \d+ s)? ", ln + " ") for ln in lines), lines

