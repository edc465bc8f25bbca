"""Shared pieces of the image-model benchmarks (VAE, autoencoders, overhead): arguments and an rlgen fit."""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import torch

from bench._common import REPO, bench_parser
from rlgen.cli import RlgenCLI, run


def image_bench_parser(doc: str, epochs: int) -> argparse.ArgumentParser:
    """The options every image benchmark takes: data, output folder, epochs, threads, smoke mode."""
    parser = bench_parser(doc, data=True)
    parser.add_argument("--epochs", type=int, default=epochs, help="training epochs (per model)")
    parser.add_argument("--smoke", action="store_true", help="a few steps on whatever data is given (seconds)")
    return parser


def max_time(minutes: float) -> str:
    """``--trainer.max_time`` value (``DD:HH:MM:SS``) for a budget in minutes."""
    s = int(minutes * 60)
    return f"00:{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def setup(args: argparse.Namespace) -> Path:
    """Apply ``--threads``, seed torch and create ``--out-dir``; returns the output folder.

    The seed makes a scored checkpoint score the same every time: noise, samples and metric splits."""
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    return out


def rlgen_fit(config: str, data_dir: str, runs: str, *overrides: str) -> RlgenCLI:
    """``rlgen fit -c configs/<config>/mnist.yaml`` with logs under ``runs`` and no progress bar."""
    return run([
        "fit", "-c", str(REPO / "configs" / config / "mnist.yaml"), f"--data.data_dir={data_dir}",
        f"--trainer.default_root_dir={runs}", f"--trainer.logger.init_args.save_dir={runs}",
        "--trainer.enable_progress_bar=false", *overrides,
    ])


def show_grid(ax: plt.Axes, grid: torch.Tensor, title: str) -> None:
    """Draw a ``(C, H, W)`` image grid in [0, 1] on ``ax`` without axes."""
    ax.imshow(grid.permute(1, 2, 0).cpu())
    ax.set_title(title, fontsize=9)
    ax.axis("off")

