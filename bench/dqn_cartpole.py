"""DQN on CartPole-v1, several seeds: environment steps until solved, and the agent a run ends with.

    python -m bench.dqn_cartpole                              # 5 seeds of the default job
    python -m bench.dqn_cartpole --smoke --out-dir /tmp/x     # seconds

Runs ``configs/dqn/cartpole.yaml`` as it is for each seed: the greedy policy plays 20 evaluation
episodes every 2,560 env steps, and the config's ``EarlyStopping`` ends the run at the first
evaluation whose mean exceeds 475 ("solved"). Then ``rlgen test`` plays 20 fresh episodes with the
run's ``last.ckpt``, as a user does next. Writes ``<out-dir>/dqn_cartpole.json`` (steps to solve,
final evaluation, test return of last.ckpt, wall times, curves) and ``<out-dir>/dqn_cartpole.png``
(greedy evaluation return against env steps: every seed, the median and the min-max band).
Targets: solved within 50,000 env steps (issue 3) and a final evaluation >= 475 (issue 16), 5/5 seeds.
Extra arguments go to rlgen, e.g. ``--model.double_dqn=true``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from bench._common import bench_parser, plt, save_figure
from bench._rl import plot_spread, solve_seeds

CONFIG = "configs/dqn/cartpole.yaml"
THRESHOLD = 475.0  # "solved"; the config stops above 495


def plot(summary: dict, eval_episodes: int, path: Path) -> None:
    """Greedy evaluation return against env steps: every seed, the median and the min-max band."""
    fig, ax = plt.subplots(figsize=(7, 4))
    curves = [(np.array([p[0] for p in r["evaluations"]]), np.array([p[2] for p in r["evaluations"]]))
              for r in summary["runs"]]
    plot_spread(ax, curves, np.linspace(0, 50_000, 101), "greedy eval return")
    ax.axhline(THRESHOLD, color="gray", linestyle="--", linewidth=1, label="475")
    held = " (a run stops once solved; its last value is held)"
    ax.set(xlabel="environment steps", ylabel=f"mean return ({eval_episodes} greedy episodes)",
           title=f"DQN CartPole-v1, {len(summary['runs'])} seeds, solved {summary['seeds_solved']}{held}")
    ax.title.set_fontsize(9)
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__)
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--smoke", action="store_true", help="1 seed, a few hundred env steps (seconds)")
    args, overrides = parser.parse_known_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.seeds = 1
        overrides = ["--model.warm_start_steps=200", "--trainer.max_steps=100", "--trainer.val_check_interval=1",
                     "--model.eval_episodes=2", "--model.test_episodes=2", *overrides]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    summary = solve_seeds(CONFIG, args.seeds, overrides, THRESHOLD, "env_steps")
    summary.update(threads=args.threads, smoke=args.smoke,
                   target="solved within 50,000 env steps and a final evaluation >= 475, 5/5 seeds")
    (out / "dqn_cartpole.json").write_text(json.dumps(summary, indent=1))

    plot(summary, 20, out / "dqn_cartpole.png")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))
    return summary


if __name__ == "__main__":
    main()
