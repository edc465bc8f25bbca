"""What every benchmark shares: the repository root, the results folder, the common options, and figures."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"


def bench_parser(doc: str, threads: bool = True) -> argparse.ArgumentParser:
    """An argument parser described by the first line of ``doc``, with ``--out-dir`` (where the JSON and PNG
    go) and, unless ``threads`` is False, ``--threads`` (torch intra-op threads, 1 by default: the fastest
    on 2 shared cores)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out-dir", default=str(RESULTS), help="where the JSON and PNG go")
    if threads:
        parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    return parser


def save_figure(fig: Any, path: Path) -> None:
    """Write ``fig`` to ``path`` (PNG) and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
