"""REINFORCE on CartPole-v1, several seeds: episodes until the mean return reaches 475.

    python -m bench.reinforce_cartpole                       # 5 seeds x 500 episodes (a few minutes)
    python -m bench.reinforce_cartpole --smoke --out-dir /tmp/x  # seconds

Runs ``configs/reinforce/cartpole.yaml`` through rlgen for each seed. "Solved" is the first episode
at which the mean return of the last ``--window`` training episodes (sampled policy) reaches 475.
Writes ``<out-dir>/reinforce_cartpole.json`` and ``<out-dir>/reinforce_cartpole.png`` (return per
episode: median and min-max band over the seeds). Target (issue 3): <= 500 episodes for >= 4/5 seeds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/reinforce_cartpole.py` works too
from bench._rl import REPO, plot_spread, plt, save_figure, train_seed  # noqa: E402

CONFIG = "configs/reinforce/cartpole.yaml"
THRESHOLD = 475.0


def episodes_to_solve(returns: list[float], window: int, threshold: float = THRESHOLD) -> int | None:
    """1-based index of the first episode after which the mean of the last ``window`` returns >= threshold."""
    r = np.asarray(returns, dtype=float)
    for end in range(window, len(r) + 1):
        if r[end - window:end].mean() >= threshold:
            return end
    return None


def plot(summary: dict, window: int, path: Path) -> None:
    """Moving mean (``window`` episodes) of the training returns: every seed, the median and the band."""
    fig, ax = plt.subplots(figsize=(7, 4))
    curves = []
    for r in summary["runs"]:
        returns = np.array([v for _, v in r["episode_returns"]], dtype=float)
        smooth = np.array([returns[max(0, i + 1 - window):i + 1].mean() for i in range(len(returns))])
        curves.append((np.arange(1, len(returns) + 1), smooth))
    plot_spread(ax, curves, np.arange(1, summary["episodes"] + 1), f"mean of last {window} episodes")
    ax.axhline(THRESHOLD, color="gray", linestyle="--", linewidth=1, label="475")
    ax.set(xlabel="episode", ylabel="training return (sampled policy)",
           title=f"REINFORCE CartPole-v1, {len(summary['runs'])} seeds, solved {summary['seeds_solved']}")
    ax.legend(loc="upper left", fontsize=8)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="number of seeds (0, 1, ...)")
    parser.add_argument("--episodes", type=int, default=500, help="training episodes per seed")
    parser.add_argument("--window", type=int, default=20, help="episodes averaged for the solve criterion")
    parser.add_argument("--out-dir", default=str(REPO / "bench" / "results"), help="where JSON and PNG go")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--smoke", action="store_true", help="1 seed, 6 episodes (seconds)")
    args, args.overrides = parser.parse_known_args(argv)  # the rest goes to rlgen, e.g. --model.lr=0.005
    torch.set_num_threads(args.threads)
    seeds, episodes = (1, 6) if args.smoke else (args.seeds, args.episodes)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    runs = []
    for seed in range(seeds):
        result = train_seed(CONFIG, seed, [f"--trainer.max_steps={episodes}",
                                           f"--trainer.val_check_interval={3 if args.smoke else 25}",
                                           "--model.eval_episodes=2" if args.smoke else "--model.eval_episodes=10",
                                           *args.overrides])
        returns = [r for _, r in result["episode_returns"]][:episodes]
        result["episodes_to_solve"] = episodes_to_solve(returns, min(args.window, len(returns)))
        runs.append(result)
        print(f"seed {seed}: episodes to solve {result['episodes_to_solve']}, wall {result['wall_s']} s, "
              f"last-{args.window} mean {np.mean(returns[-args.window:]):.1f}", flush=True)

    solved = [r["episodes_to_solve"] for r in runs if r["episodes_to_solve"] is not None]
    summary = {
        "config": CONFIG,
        "overrides": args.overrides,
        "episodes": episodes,
        "criterion": f"mean return of the last {args.window} training episodes >= {THRESHOLD}",
        "seeds_solved": f"{len(solved)}/{seeds}",
        "median_episodes_to_solve": float(np.median(solved)) if solved else None,
        "median_wall_s": float(np.median([r["wall_s"] for r in runs])),
        "target": "<= 500 episodes for >= 4/5 seeds",
        "smoke": args.smoke,
        "runs": runs,
    }
    (out / "reinforce_cartpole.json").write_text(json.dumps(summary, indent=1))

    plot(summary, args.window, out / "reinforce_cartpole.png")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))
    return summary


if __name__ == "__main__":
    main()
