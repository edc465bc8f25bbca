"""Shared pieces of the benchmarks of long runs, trained in the background and scored afterwards
(``bench/dqn_atari.py``, ``bench/reinforce_pong.py``, ``bench/sac_hopper.py``): train a config, read its
learning curves back from TensorBoard, score a checkpoint on whole episodes (Atari: whole games), export the
agent as a small weights-only checkpoint, and plot return against agent steps and wall minutes."""

from __future__ import annotations

import argparse
import bisect
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from bench._common import REPO, bench_parser, plt, save_figure, shown_path, write_results
from rlgen.checkpoints import read_checkpoint
from rlgen.cli import run


def parser(doc: str, name: str) -> argparse.ArgumentParser:
    p = bench_parser(doc)
    p.add_argument("--run-dir", type=run_dirs, help="score and plot this finished run (runs/<name>/version_N) "
                   "instead of training; a resumed run: its directories in order, comma-separated")
    p.add_argument("--ckpt", help="checkpoint to score (default: the run's last.ckpt)")
    p.add_argument("--save-dir", default="runs", help="logger save_dir of the training run")
    p.add_argument("--games", type=int, default=10, help="whole games the final agent plays")
    p.add_argument("--export", help=f"write the scored agent here as a weights-only checkpoint (default "
                   f"<out-dir>/{name}.ckpt, beside the results; '' skips)")
    p.add_argument("--smoke", action="store_true", help="a few hundred steps and short games (seconds)")
    return p


def export_path(export: str | None, name: str, out_dir: str | Path) -> str:
    """``--export``: the path given ('' skips the export), or ``<out_dir>/<name>.ckpt``, beside the results: the
    shipped agent in ``bench/results`` is replaced only by a run scored into ``bench/results``."""
    return str(Path(out_dir) / f"{name}.ckpt") if export is None else export


def train(config: str, save_dir: str, overrides: list[str]) -> Path:
    """``rlgen fit -c <config>``; returns the run's directory (``<save_dir>/<name>/version_N``)."""
    cli = run(["fit", "-c", str(REPO / config), f"--trainer.logger.init_args.save_dir={save_dir}",
               "--trainer.enable_progress_bar=false", *overrides])
    return Path(cli.trainer.logger.log_dir)


def read_curves(run_dir: Path) -> dict[str, list[tuple[int, float, float]]]:
    """Every scalar of the run's TensorBoard events as ``(step, wall minutes since the first event, value)``."""
    acc = EventAccumulator(str(run_dir), size_guidance={"scalars": 0})
    acc.Reload()
    events = {tag: acc.Scalars(tag) for tag in acc.Tags()["scalars"]}
    if not events:
        raise SystemExit(f"no TensorBoard scalars under {run_dir}")
    start = min(e[0].wall_time for e in events.values() if e)
    return {tag: [(e.step, round((e.wall_time - start) / 60, 3), e.value) for e in evs] for tag, evs in events.items()}


def run_dirs(text: str) -> list[Path]:
    """``--run-dir``: one run directory, or a run and its resumptions in order, comma-separated."""
    dirs = [Path(d) for d in text.split(",")]
    missing = [str(d) for d in dirs if not d.is_dir()]
    if missing:
        raise argparse.ArgumentTypeError(f"no run directory {', '.join(missing)}: give runs/<name>/version_N")
    return dirs


def joined_curves(dirs: list[Path], tags: tuple[str, ...]) -> dict[str, list[tuple[int, float, float]]]:
    """``tags``' points as ``(env steps, wall minutes, value)`` over a run and its resumptions (``dirs`` in order).
    A resumption continues the env-step counter from its checkpoint: what the interrupted part logged past that
    point is dropped (the resumption did that work again), and wall minutes add up without the pause between the
    parts. With one directory these are ``with_env_steps`` of its curves."""
    parts = [{tag: with_env_steps(curves, tag) for tag in tags}
             for curves in (read_curves(d) for d in dirs)]
    joined: dict[str, list[tuple[int, float, float]]] = {tag: [] for tag in tags}
    offset = 0.0
    for part, following in zip(parts, [*parts[1:], {}], strict=True):
        resumed_at = min((points[0][0] for points in following.values() if points), default=None)
        kept = {tag: [p for p in points if resumed_at is None or p[0] < resumed_at] for tag, points in part.items()}
        for tag, points in kept.items():
            joined[tag] += [(s, m + offset, v) for s, m, v in points]
        offset += max((points[-1][1] for points in kept.values() if points), default=0.0)
    return joined


def with_env_steps(curves: dict, tag: str) -> list[tuple[int, float, float]]:
    """``tag``'s points as ``(env steps, wall minutes, value)``: rollout metrics share their logging step
    with ``rollout/env_steps``; a validation point gets the env steps of the last rollout log before it."""
    logged = [s for s, _, _ in curves["rollout/env_steps"]]  # logging steps, increasing
    env_steps = [int(v) for _, _, v in curves["rollout/env_steps"]]
    out = []
    for step, minutes, value in curves.get(tag, []):
        i = bisect.bisect_right(logged, step)  # rollout logs at or before this step
        out.append((env_steps[i - 1] if i else 0, minutes, value))
    return out


def step_rates(points: list[tuple[int, float, float]]) -> dict[str, float | None]:
    """Agent steps per second of training, collection included, from curve points ``(agent steps, wall
    minutes, value)``: over the whole curve, and the median over the intervals between its points (the
    usual rate, without the pauses for evaluation games)."""
    steps, minutes = np.array([p[0] for p in points], float), np.array([p[1] for p in points], float)
    keep = np.diff(minutes) > 0
    if len(points) < 2 or not keep.any():
        return {"overall": None, "median_between_logs": None}
    between = np.diff(steps)[keep] / (np.diff(minutes)[keep] * 60)
    return {"overall": round(float((steps[-1] - steps[0]) / ((minutes[-1] - minutes[0]) * 60)), 1),
            "median_between_logs": round(float(np.median(between)), 1)}


def score(config: str, ckpt: str, games: int, overrides: list[str]) -> dict[str, Any]:
    """``rlgen test`` of ``ckpt`` for ``games`` whole games (the config's evaluation: unclipped scores). Its
    config.yaml goes to a temporary folder (without a logger it would land in the working directory's runs/)."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as root:
        cli = run(["test", "-c", str(REPO / config), f"--ckpt_path={ckpt}", f"--model.test_episodes={games}",
                   "--trainer.logger=false", "--trainer.enable_progress_bar=false",
                   f"--trainer.default_root_dir={root}", *overrides])
    returns = [float(r) for r in cli.model.eval_returns]
    return {"ckpt": shown_path(ckpt), "model": type(cli.model).__name__, "games": len(returns), "returns": returns,
            "mean": sum(returns) / len(returns), "min": min(returns), "max": max(returns),
            "wall_s": round(time.perf_counter() - start, 1)}


def frame_strip(config: str, ckpt: str, path: Path, overrides: list[str],
                caption: str = "one game of the trained agent", frames: int = 8) -> dict[str, Any]:
    """Record one game of ``ckpt`` with ``rlgen test --model.video_dir`` and save ``frames`` of it, evenly
    spaced over the game, side by side as a PNG under ``caption`` and the game's score (the score board at
    the top shows the game's course)."""
    from moviepy import VideoFileClip

    with tempfile.TemporaryDirectory() as videos:
        cli = run(["test", "-c", str(REPO / config), f"--ckpt_path={ckpt}", "--model.test_episodes=1",
                   f"--model.video_dir={videos}", "--trainer.logger=false", "--trainer.enable_progress_bar=false",
                   f"--trainer.default_root_dir={videos}", *overrides])  # its config.yaml goes there too
        (video,) = Path(videos).glob("*.mp4")
        with VideoFileClip(str(video)) as clip:
            game = [np.asarray(f) for f in clip.iter_frames()]
    picks = np.linspace(0, len(game) - 1, frames).round().astype(int)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, axes = plt.subplots(1, frames, figsize=(1.6 * frames, 2.4))
    for ax, i in zip(axes, picks, strict=True):
        ax.imshow(game[i])
        ax.set_axis_off()
        ax.set_title(f"step {i}", fontsize=7)
    score = cli.model.eval_returns[0]
    fig.suptitle(f"{caption}: final score {score:+g}", fontsize=9)
    save_figure(fig, path)
    steps = int(cli.trainer.callback_metrics["test/episode_length"])
    return {"png": shown_path(path), "game_return": score, "game_steps": steps, "video_frames": len(game)}


def export_weights(ckpt: str, path: Path, drop: tuple[str, ...] = ()) -> int:
    """Write ``ckpt`` without optimizer, loop and callback states, without a saved replay buffer (and without
    the ``drop``-prefixed weights, e.g. a target network that loading rebuilds); returns the file's size in bytes."""
    full = read_checkpoint(ckpt)
    keep = ("epoch", "global_step", "pytorch-lightning_version", "hyper_parameters", "hparams_name", "rl_state")
    small = {k: full[k] for k in keep if k in full}
    if "rl_state" in small:  # the counters stay; the replay buffer (0.7 GB for Pong) is for resuming only
        small["rl_state"] = {k: v for k, v in small["rl_state"].items() if k != "replay_buffer"}
    small["state_dict"] = {k: v for k, v in full["state_dict"].items() if not k.startswith(drop)}
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(small, path)
    return path.stat().st_size


def plot(path: Path, title: str, series: list[tuple[str, list[tuple[int, float, float]], dict]],
         target: float | None, target_label: str,
         published: list[tuple[str, list[tuple[int, float]], dict]] = ()) -> None:
    """Two panels, return against agent steps and against wall minutes, for each ``(label, points, style)``;
    ``published`` points ``(agent steps, return)`` of other implementations go on the agent-steps panel."""
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for label, points, style in published:
        axes[0].plot([p[0] for p in points], [p[1] for p in points], label=label, linestyle="none", **style)
    for ax, x_index, xlabel in ((axes[0], 0, "agent steps"), (axes[1], 1, "wall minutes")):
        for label, points, style in series:
            if points:
                ax.plot([p[x_index] for p in points], [p[2] for p in points], label=label, **style)
        if target is not None:
            ax.axhline(target, color="gray", linestyle="--", linewidth=1, label=target_label)
        ax.set(xlabel=xlabel)
        ax.grid(alpha=0.3)
    axes[0].set(ylabel="return (whole games, unclipped)")
    axes[0].legend(loc="upper left", fontsize=8)
    fig.suptitle(title, fontsize=10)
    save_figure(fig, path)


def write(out_dir: Path, name: str, summary: dict) -> None:
    write_results(out_dir, name, summary, echo=True, omit=("curves",))
