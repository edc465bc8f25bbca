"""Same seed, same run: two CPU runs log identical losses, step for step, for their first 60 steps."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from tests.conftest import CONFIGS, run_cli

COMMON = ["-c", str(CONFIGS / "logger" / "csv.yaml"), "--trainer.max_steps=60", "--trainer.log_every_n_steps=1",
          "--trainer.enable_progress_bar=false", "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0",
          "--trainer.callbacks=[]"]


def logged(root: Path, key: str) -> list[tuple[int, str]]:
    rows = list(csv.DictReader(open(next(root.rglob("metrics.csv")))))
    values = [(int(r["step"]), r[key]) for r in rows if r.get(key)]
    assert len(values) >= 50, f"expected a {key} value for (nearly) every one of 60 steps, got {len(values)}"
    return values


@pytest.mark.parametrize(
    "config, key, extra",
    [
        ("vae/mnist.yaml", "train/loss", ["--data.num_workers=0", "--data.batch_size=16"]),
        ("dqn/cartpole.yaml", "train/loss", ["--model.warm_start_steps=64", "--model.train_frequency=4",
                                                 "--model.gradient_steps=1"]),
    ],
    ids=["vae", "dqn-cartpole"],
)
def test_same_seed_same_losses(tmp_path, monkeypatch, mnist_dir, config, key, extra):
    runs = []
    for name in ("a", "b"):
        root = tmp_path / name
        root.mkdir()
        monkeypatch.chdir(root)
        data = [f"--data.data_dir={mnist_dir}"] if config.startswith("vae") else []
        run_cli("fit", "-c", str(CONFIGS / config), *COMMON, *data, *extra, "--seed_everything=7")
        runs.append(logged(root, key))
    assert runs[0] == runs[1]
    assert len({v for _, v in runs[0]}) > 10, "the loss must change over the run"
