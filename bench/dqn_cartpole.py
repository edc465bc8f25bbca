"""DQN on CartPole-v1, several seeds: environment steps until the greedy evaluation mean reaches 475.

    python -m bench.dqn_cartpole                              # 5 seeds x 50,000 env steps
    python -m bench.dqn_cartpole --smoke --out-dir /tmp/x     # seconds

Runs ``configs/dqn/cartpole.yaml`` through rlgen for each seed. Every ``--eval-every`` env steps the
greedy policy plays 20 evaluation episodes; "solved" is the first evaluation whose mean return is
>= 475. Writes ``<out-dir>/dqn_cartpole.json`` (steps to solve, wall times, curves) and
``<out-dir>/dqn_cartpole.png`` (greedy evaluation return against env steps: every seed, the median
and the min-max band). Target (issue 3): solved within 50,000 env steps for 5/5 seeds.
Extra arguments go to rlgen, e.g. ``--model.double_dqn=true``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/dqn_cartpole.py` works too
from bench._rl import REPO, plot_spread, plt, save_figure, train_seed  # noqa: E402

CONFIG = "configs/dqn/cartpole.yaml"
THRESHOLD = 475.0
WARM_START, TRAIN_FREQUENCY, GRADIENT_STEPS = 1000, 256, 128  # as in the config


def plot(summary: dict, eval_episodes: int, path: Path) -> None:
    """Greedy evaluation return against env steps: every seed, the median and the min-max band."""
    fig, ax = plt.subplots(figsize=(7, 4))
    curves = [(np.array([p[0] for p in r["evaluations"]]), np.array([p[2] for p in r["evaluations"]]))
              for r in summary["runs"]]
    plot_spread(ax, curves, np.linspace(0, summary["env_steps_budget"], 101), "greedy eval return")
    ax.axhline(THRESHOLD, color="gray", linestyle="--", linewidth=1, label="475")
    held = " (a run stops once solved; its last value is held)" if summary["stopped_when_solved"] else ""
    ax.set(xlabel="environment steps", ylabel=f"mean return ({eval_episodes} greedy episodes)",
           title=f"DQN CartPole-v1, {len(summary['runs'])} seeds, solved {summary['seeds_solved']}{held}")
    ax.title.set_fontsize(9)
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--env-steps", type=int, default=50_000, help="environment steps per seed")
    parser.add_argument("--eval-every", type=int, default=2_560,
                        help="env steps between evaluations (rounded to whole collection phases of 256)")
    parser.add_argument("--eval-episodes", type=int, default=20, help="greedy episodes per evaluation")
    parser.add_argument("--full", action="store_true", help="train the whole budget even once solved")
    parser.add_argument("--out-dir", default=str(REPO / "bench" / "results"), help="where JSON and PNG go")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--smoke", action="store_true", help="1 seed, a few hundred env steps (seconds)")
    args, overrides = parser.parse_known_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.seeds, args.env_steps, args.eval_every, args.eval_episodes = 1, 1_200, 256, 2
        overrides = ["--model.warm_start_steps=200", *overrides]
        warm = 200
    else:
        warm = WARM_START
    ratio = TRAIN_FREQUENCY / GRADIENT_STEPS  # env steps per gradient step
    budget = [f"--trainer.max_steps={int((args.env_steps - warm) / ratio)}",  # gradient steps
              # DQN trains on one batch per collection phase: val_check_interval counts phases
              f"--trainer.val_check_interval={max(1, round(args.eval_every / TRAIN_FREQUENCY))}",
              f"--model.eval_episodes={args.eval_episodes}", *overrides]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    runs = []
    for seed in range(args.seeds):
        stop = [] if args.full else [f"--trainer.callbacks.stop_at={THRESHOLD}"]
        result = train_seed(CONFIG, seed, [*budget, *stop])
        solved = next((p for p in result["evaluations"] if p[2] >= THRESHOLD), None)
        result["steps_to_solve"] = solved[0] if solved else None
        runs.append(result)
        print(f"seed {seed}: env steps to solve {result['steps_to_solve']}, wall {result['wall_s']} s "
              f"({result['env_steps']} env steps)", flush=True)

    solved = [r["steps_to_solve"] for r in runs if r["steps_to_solve"] is not None]
    summary = {
        "config": CONFIG,
        "overrides": overrides,
        "env_steps_budget": args.env_steps,
        "criterion": f"greedy evaluation mean over {args.eval_episodes} episodes >= {THRESHOLD}",
        "seeds_solved": f"{len(solved)}/{args.seeds}",
        "median_steps_to_solve": float(np.median(solved)) if solved else None,
        "max_steps_to_solve": max(solved) if solved else None,
        "median_wall_s": float(np.median([r["wall_s"] for r in runs])),
        "stopped_when_solved": not args.full,
        "target": "<= 50,000 env steps for 5/5 seeds",
        "smoke": args.smoke,
        "runs": runs,
    }
    (out / "dqn_cartpole.json").write_text(json.dumps(summary, indent=1))

    plot(summary, args.eval_episodes, out / "dqn_cartpole.png")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))
    return summary


if __name__ == "__main__":
    main()
