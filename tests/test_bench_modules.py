"""Every benchmark runs the documented way, ``python -m bench.<name>`` from the repository root."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

# Starts processes of its own: these tests run one after another on one xdist worker (tests/conftest.py).
pytestmark = pytest.mark.xdist_group("processes")

SCRIPTS = sorted(p.stem for p in (REPO / "bench").glob("*.py") if not p.stem.startswith("_"))


def run_python(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_benchmarks_run_as_modules_from_the_repository_root():
    # One interpreter (each start costs seconds): -c puts the working directory first on sys.path, as -m does, so
    # every benchmark must import from there; then one runs as `python -m bench.dqn_atari --help` would (runpy).
    code = (f"import importlib, runpy, sys\nfor name in {SCRIPTS!r}: importlib.import_module('bench.' + name)\n"
            "sys.argv = ['bench.dqn_atari', '--help']\nrunpy.run_module('bench.dqn_atari', run_name='__main__')")
    helped = run_python("-c", code)
    assert helped.returncode == 0 and helped.stdout.startswith("usage:"), helped.stderr[-2000:]
