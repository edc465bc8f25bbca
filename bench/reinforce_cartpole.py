"""REINFORCE on CartPole-v1, several seeds: episodes until solved, and the agent a run ends with.

    python -m bench.reinforce_cartpole                       # 5 seeds of the default job (a few minutes)
    python -m bench.reinforce_cartpole --smoke --out-dir /tmp/x  # seconds

Runs ``configs/reinforce/cartpole.yaml`` as it is for each seed: the greedy policy plays 20
evaluation episodes every 25 training episodes, and the config's ``EarlyStopping`` ends the run at
the first evaluation whose mean exceeds 475 ("solved"). Then ``rlgen test`` plays 20 fresh episodes
with the run's ``last.ckpt``, as a user does next. Writes ``<out-dir>/reinforce_cartpole.json`` and
``<out-dir>/reinforce_cartpole.png`` (greedy evaluation return against training episodes: every
seed, the median and the min-max band). Targets: solved within 500 episodes (issue 3) and a final
evaluation >= 475 (issue 16), 5/5 seeds.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from bench._common import bench_parser, plt, save_figure
from bench._rl import plot_spread, solve_seeds

CONFIG = "configs/reinforce/cartpole.yaml"
THRESHOLD = 475.0  # "solved"; the config stops above 495


def plot(summary: dict, path: Path) -> None:
    """Greedy evaluation return against training episodes: every seed, the median and the band."""
    fig, ax = plt.subplots(figsize=(7, 4))
    curves = [(np.array([p[1] for p in r["evaluations"]]), np.array([p[2] for p in r["evaluations"]]))
              for r in summary["runs"]]
    plot_spread(ax, curves, np.arange(0, 501, 5), "greedy eval return")
    ax.axhline(THRESHOLD, color="gray", linestyle="--", linewidth=1, label="475")
    ax.set(xlabel="training episodes", ylabel="mean return (20 greedy episodes)",
           title=f"REINFORCE CartPole-v1, {len(summary['runs'])} seeds, solved {summary['seeds_solved']} "
                 "(a run stops once solved; its last value is held)")
    ax.title.set_fontsize(9)
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--smoke", action="store_true", help="1 seed, 6 episodes (seconds)")
    args, overrides = parser.parse_known_args(argv)  # the rest goes to rlgen, e.g. --model.lr=0.005
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.seeds = 1
        overrides = ["--trainer.max_steps=6", "--trainer.val_check_interval=3", "--model.eval_episodes=2",
                     "--model.test_episodes=2", *overrides]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    summary = solve_seeds(CONFIG, args.seeds, overrides, THRESHOLD, "episodes")
    summary.update(threads=args.threads, smoke=args.smoke,
                   target="solved within 500 episodes and a final evaluation >= 475, 5/5 seeds")
    (out / "reinforce_cartpole.json").write_text(json.dumps(summary, indent=1))

    plot(summary, out / "reinforce_cartpole.png")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))
    return summary


if __name__ == "__main__":
    main()
