"""The suite's machinery: its time budget (tests/budget.py) names slow default tests and fails the run past the
limit; ``--dist loadgroup`` keeps each ``xdist_group`` on one worker."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

# Starts a pytest process of its own: one after another on one xdist worker (tests/conftest.py).
pytestmark = pytest.mark.xdist_group("processes")

INNER = '''
import time
import pytest

def test_quick():
    pass

def test_slow_default():
    time.sleep(0.5)

@pytest.mark.slow
def test_marked_slow():
    time.sleep(0.5)
'''


def inner_run(tmp_path, *options: str) -> subprocess.CompletedProcess:
    (tmp_path / "conftest.py").write_text("from tests.budget import *  # noqa: F403\n")
    (tmp_path / "test_inner.py").write_text(INNER)
    (tmp_path / "pytest.ini").write_text("[pytest]\nmarkers =\n    slow: long\n")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-p", "no:xdist", *options],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


def test_a_default_test_over_the_limit_fails_the_run_and_is_named(tmp_path):
    proc = inner_run(tmp_path, "--max-test-seconds", "0.3")
    assert proc.returncode == 1, proc.stdout
    assert "3 passed" in proc.stdout and "over 0.3 s fails the run" in proc.stdout
    named = proc.stdout.split("budget")[-1]
    assert "test_slow_default" in named and "test_marked_slow" not in named and "test_quick" not in named


GROUPED = '''
import os
import pytest

@pytest.mark.xdist_group("processes")
@pytest.mark.parametrize("i", range(4))
def test_grouped(i):
    with open(os.path.join(os.environ["GROUPED_OUT"], f"ran{i}"), "w") as f:
        f.write(os.environ["PYTEST_XDIST_WORKER"])
'''


def test_xdist_groups_run_on_one_worker(tmp_path):
    """Without working groups (pytest 9.2 with pytest-xdist 3.8 loses them silently: pytest-xdist#1386), xdist
    deals these 4 tests out 2 and 2, and the tests that start processes would share the cores."""
    (tmp_path / "test_inner.py").write_text(GROUPED)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-n", "2", "--dist", "loadgroup"],
                          cwd=tmp_path, env={**os.environ, "GROUPED_OUT": str(tmp_path)}, capture_output=True,
                          text=True, timeout=120)
    assert "4 passed" in proc.stdout, proc.stdout[-2000:]
    workers = {(tmp_path / f"ran{i}").read_text() for i in range(4)}
    assert len(workers) == 1, f"one xdist_group ran on workers {sorted(workers)}"
