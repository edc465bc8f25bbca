"""Shared pieces of the RL benchmarks: train one seed through rlgen, plot curves with the seeds' spread,
and the whole CartPole "steps to solve" benchmark that DQN and REINFORCE share."""

from __future__ import annotations

import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pytorch_lightning.callbacks import EarlyStopping

from bench._common import REPO, bench_parser, config_args, machine, plt, save_figure, write_results
from rlgen.callbacks.rl import ReturnCurve
from rlgen.cli import run


def train_seed(config: str, seed: int, overrides: list[str]) -> dict[str, Any]:
    """``rlgen fit -c <config>`` for one seed (logs in a temp dir), then ``rlgen test`` of its ``last.ckpt``:
    what a user who runs the config and then tests ``--ckpt_path last`` gets. Returns the curves, the
    final evaluation, the test return of ``last.ckpt`` and the wall time of the training."""
    with tempfile.TemporaryDirectory() as runs:
        common = [f"--seed_everything={seed}", f"--trainer.default_root_dir={runs}",
                  f"--trainer.logger.init_args.save_dir={runs}", "--trainer.enable_progress_bar=false",
                  "--trainer.enable_model_summary=false"]
        start = time.perf_counter()
        cli = run(["fit", "-c", str(REPO / config), *common, "--trainer.callbacks+=rlgen.callbacks.rl.ReturnCurve",
                   *overrides])
        wall = time.perf_counter() - start
        last = next(c.last_model_path for c in cli.trainer.checkpoint_callbacks if c.last_model_path)
        tested = run(["test", "-c", str(REPO / config), *common, f"--ckpt_path={last}", *overrides])
    curve = next(c for c in cli.trainer.callbacks if isinstance(c, ReturnCurve))
    stops = [c.stopping_reason_message for c in cli.trainer.callbacks
             if isinstance(c, EarlyStopping) and c.stopping_reason_message]
    return {
        "seed": seed,
        "wall_s": round(wall, 1),
        "eval_s": round(curve.eval_seconds, 2),  # the greedy evaluations' part of wall_s
        "machine": machine(),  # where wall_s was taken
        "env_steps": cli.model.rollout.env_steps,
        "episodes": cli.model.rollout.episodes,
        "gradient_steps": cli.trainer.global_step,
        "stopped": stops[0] if stops else "budget used up",
        "final_eval": curve.evaluations[-1][2] if curve.evaluations else None,
        "last_ckpt_test_return": float(tested.trainer.callback_metrics["test/episodic_return"]),
        "last_ckpt_test_episodes": len(tested.model.eval_returns),
        "last_ckpt_test_episode_length": float(tested.trainer.callback_metrics["test/episode_length"]),
        "evaluations": [list(p) for p in curve.evaluations],  # (env_steps, episodes, val/episodic_return)
        "episode_returns": [list(p) for p in cli.model.rollout.history],  # (env_steps at the end, return)
    }


def solve_seeds(config: str, seeds: int, overrides: list[str], threshold: float, unit: str) -> dict[str, Any]:
    """``train_seed`` for seeds 0..N-1 of a config that stops once solved; the summary of when each
    solved (``unit``: ``env_steps`` or ``episodes`` at the first evaluation above ``threshold``) and of
    the agent each ended with (its final evaluation and ``rlgen test`` of its ``last.ckpt``)."""
    index = {"env_steps": 0, "episodes": 1}[unit]
    runs = []
    for seed in range(seeds):
        result = train_seed(config, seed, overrides)
        solved = next((p for p in result["evaluations"] if p[2] > threshold), None)
        result[f"{unit}_to_solve"] = solved[index] if solved else None
        runs.append(result)
        print(f"seed {seed}: {unit} to solve {result[f'{unit}_to_solve']}, final evaluation {result['final_eval']}, "
              f"last.ckpt tested {result['last_ckpt_test_return']:.1f}, wall {result['wall_s']} s", flush=True)
    solved = [r[f"{unit}_to_solve"] for r in runs if r[f"{unit}_to_solve"] is not None]
    eval_episodes = config_args(config)["eval_episodes"]  # unless an override changed it
    ending_solved = sum(r["final_eval"] is not None and r["final_eval"] >= threshold for r in runs)
    return {
        "config": config,
        "overrides": overrides,
        "eval_episodes": eval_episodes,
        "criterion": f"greedy evaluation mean over {eval_episodes} episodes > {threshold}",
        "seeds_solved": f"{len(solved)}/{seeds}",
        f"median_{unit}_to_solve": float(np.median(solved)) if solved else None,
        f"max_{unit}_to_solve": max(solved) if solved else None,
        "final_evals": [r["final_eval"] for r in runs],
        "seeds_ending_solved": f"{ending_solved}/{seeds}",
        "last_ckpt_test_returns": [r["last_ckpt_test_return"] for r in runs],
        "median_wall_s": float(np.median([r["wall_s"] for r in runs])),
        "runs": runs,
    }


def plot_spread(ax: Any, curves: list[tuple[np.ndarray, np.ndarray]], grid: np.ndarray, label: str) -> None:
    """Median and min-max band over seeds of step curves ``(x, y)`` resampled on ``grid``."""
    ys = []
    for x, y in curves:
        idx = np.searchsorted(x, grid, side="right") - 1  # last value at or before each grid point
        ys.append(np.where(idx >= 0, y[np.clip(idx, 0, None)] if len(y) else np.nan, np.nan))
    ys = np.array(ys, dtype=float)
    with warnings.catch_warnings():  # grid points before the first evaluation are all NaN
        warnings.simplefilter("ignore", RuntimeWarning)
        median, low, high = np.nanmedian(ys, axis=0), np.nanmin(ys, axis=0), np.nanmax(ys, axis=0)
    for x, y in curves:
        ax.plot(x, y, color="tab:blue", alpha=0.25, linewidth=0.8)
    ax.plot(grid, median, color="tab:blue", linewidth=2, label=f"{label} (median)")
    ax.fill_between(grid, low, high, color="tab:blue", alpha=0.15,
                    label="min-max over seeds")


CARTPOLE_SOLVED = 475.0  # CartPole-v1's "solved"; the configs stop above 495
UNITS = {"env_steps": (0, "environment steps"), "episodes": (1, "training episodes")}


def seeds_parser(doc: str) -> Any:
    """``bench_parser`` with ``--seeds`` and ``--smoke``: the options of the multi-seed RL benchmarks."""
    parser = bench_parser(doc)
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--smoke", action="store_true", help="1 seed, a tiny budget (seconds)")
    return parser


def cartpole_bench(argv: list[str] | None, doc: str, name: str, config: str, unit: str, budget: int,
                   smoke: list[str]) -> dict[str, Any]:
    """The benchmark ``bench/<name>.py``: ``config`` for ``--seeds`` seeds, each stopped once solved and
    then tested; ``<name>.json`` and ``<name>.png`` (the greedy evaluation return against ``unit``, up to
    ``budget``: every seed, the median and the min-max band). ``smoke``: overrides of ``--smoke``; the
    arguments the bench does not know go to rlgen, e.g. ``--model.lr=0.005``."""
    args, overrides = seeds_parser(doc).parse_known_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.seeds, overrides = 1, [*smoke, *overrides]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    summary = solve_seeds(config, args.seeds, overrides, CARTPOLE_SOLVED, unit)
    summary.update(threads=args.threads, smoke=args.smoke, target=f"solved within {budget:,} {UNITS[unit][1]} "
                   f"and a final evaluation >= {CARTPOLE_SOLVED:.0f}, 5/5 seeds")
    write_results(out, name, summary)

    fig, ax = plt.subplots(figsize=(7, 4))
    index, xlabel = UNITS[unit]
    curves = [(np.array([p[index] for p in r["evaluations"]]), np.array([p[2] for p in r["evaluations"]]))
              for r in summary["runs"]]
    plot_spread(ax, curves, np.linspace(0, budget, 101), "greedy eval return")
    ax.axhline(CARTPOLE_SOLVED, color="gray", linestyle="--", linewidth=1, label=f"{CARTPOLE_SOLVED:.0f}")
    ax.set(xlabel=xlabel, ylabel=f"mean return ({summary['eval_episodes']} greedy episodes)",
           title=f"{name.split('_')[0].upper()} CartPole-v1, {args.seeds} seeds, solved {summary['seeds_solved']} "
                 "(a run stops once solved; its last value is held)")
    ax.title.set_fontsize(9)
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, out / f"{name}.png")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))  # after the figure
    return summary
