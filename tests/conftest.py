"""Shared fixtures (a tiny MNIST in torchvision's raw IDX layout, an in-process CLI runner) and the suite's
time budget.

The README runs the suite on 2 xdist workers (``-n 2``, ``--dist loadgroup`` from pyproject.toml). Tests that
start processes of their own (DDP, signals, the console script) are marked ``xdist_group("processes")`` and run
one after another on one worker. Tests that share a module-scoped fixture (a trained model, a finished run) carry
``xdist_group(<fixture name>)``, so one worker builds it once. The time budget per test is in ``tests/budget.py``.
"""

from __future__ import annotations

import os

# One intra-op thread per process: the tests' models are tiny, and on a loaded 2-core machine extra
# OpenMP threads spin against each other (a 6x slowdown was measured). torch reads it when first imported;
# xdist workers and subprocesses inherit it. This module imports neither torch nor Lightning: the xdist
# controller loads it too, and starts the workers only after (seconds saved per run).
os.environ.setdefault("OMP_NUM_THREADS", "1")

import struct
from pathlib import Path

import numpy as np
import pytest

from tests.budget import (  # noqa: F401  (the time budget's hooks, in a module that tests/test_budget.py runs alone)
    pytest_addoption,
    pytest_configure,
    pytest_runtest_logreport,
    pytest_sessionfinish,
    pytest_terminal_summary,
)

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"


def _checkout_entries() -> set[str]:
    """Top-level entries of the checkout and of its ``runs/`` folder (where a stray run would land)."""
    entries = set(os.listdir(REPO))
    runs = REPO / "runs"
    if runs.is_dir():
        entries |= {f"runs/{name}" for name in os.listdir(runs)}
    return entries


@pytest.fixture(autouse=True)
def leaves_the_checkout_clean():
    """Every test writes into temporary folders only: a test that leaves files in the checkout fails."""
    before = _checkout_entries()
    yield
    new = _checkout_entries() - before - {".pytest_cache"}
    assert not new, f"the test left {sorted(new)} in the checkout; write into tmp_path (monkeypatch.chdir)"


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array in the IDX format that torchvision's MNIST reader parses."""
    magic = {1: 0x0801, 3: 0x0803}[array.ndim]
    with open(path, "wb") as f:
        f.write(struct.pack(">I", magic))
        f.write(struct.pack(f">{array.ndim}I", *array.shape))
        f.write(array.astype(np.uint8).tobytes())


def fake_digits(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` 28x28 uint8 images whose class is readable: label k lights a vertical bar at column 2 + 2k."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, size=n)
    images = rng.integers(0, 40, size=(n, 28, 28))
    for i, k in enumerate(labels):
        images[i, 4:24, 2 + 2 * k : 4 + 2 * k] = 255
    return images.astype(np.uint8), labels.astype(np.uint8)


@pytest.fixture(scope="session")
def mnist_dir(tmp_path_factory) -> Path:
    """A data_dir holding MNIST/raw with 6,000 training and 500 test images (random, but labelled)."""
    root = tmp_path_factory.mktemp("data")
    raw = root / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for split, n, seed in (("train", 6000, 0), ("t10k", 500, 1)):
        images, labels = fake_digits(n, seed)
        write_idx(raw / f"{split}-images-idx3-ubyte", images)
        write_idx(raw / f"{split}-labels-idx1-ubyte", labels)
    return root


def run_cli(*args: str) -> None:
    """Run ``rlgen <args>`` in this process (no subprocess), as the console script would."""
    from rlgen.cli import cli_main

    cli_main(list(args))
