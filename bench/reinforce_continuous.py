"""REINFORCE with a Gaussian policy on continuous control, several seeds: greedy return against env steps.

    python -m bench.reinforce_continuous                                  # 5 seeds, one after the other
    python -m bench.reinforce_continuous --smoke --out-dir /tmp/x         # seconds

Runs ``configs/reinforce/<name>.yaml`` as it is for each seed (``rlgen fit``, then ``rlgen test`` of the
run's ``last.ckpt`` on 20 fresh episodes, as a user does next) and writes
``<out-dir>/reinforce_<name>.json`` and ``.png`` per config: every seed's greedy evaluations (the mean
action, ``eval_episodes`` episodes each) and training episode returns against env steps, its final
evaluation (the last validation of the run), the ``last.ckpt`` test return and the training wall time;
the figure shows every seed, the median and the min-max band, with the published anchor.
Target (issue 23): InvertedPendulum-v5 1000 for 5/5 seeds within 500,000 env steps, ``last.ckpt`` >= 950,
<= 10 minutes a seed. REINFORCE stays near a random policy on Pendulum-v1 and far below the actor-critic
methods on Hopper-v5 (issue 33), so those tasks are benchmarked with SAC and PPO (bench/sac.py,
bench/sac_hopper.py, bench/ppo.py).
Arguments the bench does not know go to ``rlgen fit`` and ``rlgen test``, e.g. ``--model.lr=0.003``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from bench._common import REPO, config_args, plt, save_figure, write_results
from bench._rl import plot_spread, seeds_parser, train_seed

# Published anchor: the statement of RL Zoo's PPO on InvertedPendulum.
TASKS: dict[str, dict[str, Any]] = {
    "inverted_pendulum": {
        "target": "greedy return 1000 (the maximum) for 5/5 seeds within 500,000 env steps; `rlgen test "
                  "--ckpt_path last` >= 950; <= 10 minutes a seed",
        "last_ckpt_floor": 950.0,
        "anchors": {"RL Zoo PPO (1000 +- 0)": 1000.0},
    },
}
SMOKE = ["--trainer.max_steps=2", "--trainer.val_check_interval=1", "--model.episodes_per_batch=1",
         "--model.eval_episodes=1", "--model.test_episodes=1"]  # 1 seed, seconds


def callback_arg(config: str, class_name: str, arg: str) -> Any:
    """``arg`` of the config's ``trainer.callbacks`` entry of class ``class_name`` (None if absent): the bench
    reads the budget and the stopping threshold from the config instead of copying them."""
    callbacks = yaml.safe_load((REPO / config).read_text())["trainer"].get("callbacks") or []
    return next((c.get("init_args", {}).get(arg) for c in callbacks if c["class_path"].endswith(f".{class_name}")),
                None)


def bench_config(name: str, seeds: int, overrides: list[str]) -> dict[str, Any]:
    """Train and test ``configs/reinforce/<name>.yaml`` for seeds 0..N-1; the summary and every run."""
    config = f"configs/reinforce/{name}.yaml"
    task = TASKS[name]
    threshold = callback_arg(config, "EarlyStopping", "stopping_threshold")
    budget = callback_arg(config, "EnvStepBudget", "max_env_steps")
    runs = []
    for seed in range(seeds):
        run = train_seed(config, seed, overrides)
        run["episode_returns"] = [[steps, round(ret, 2)] for steps, ret in run["episode_returns"]]
        reached = next((p for p in run["evaluations"] if p[2] > threshold), None)
        run["env_steps_to_target"] = reached[0] if reached else None
        runs.append(run)
        print(f"{name} seed {seed}: final evaluation {run['final_eval']}, env steps {run['env_steps']}, "
              f"to target {run['env_steps_to_target']}, last.ckpt tested {run['last_ckpt_test_return']:.1f}, "
              f"wall {run['wall_s']} s", flush=True)
    solved = [r for r in runs if r["env_steps_to_target"] is not None and r["env_steps_to_target"] <= budget]
    at_floor = sum(r["last_ckpt_test_return"] >= task["last_ckpt_floor"] for r in runs)
    finals = [r["final_eval"] for r in runs]
    evaluated = [f for f in finals if f is not None]
    summary: dict[str, Any] = {
        "config": config,
        "env_id": config_args(config)["env_id"],
        "overrides": overrides,
        "eval_episodes": config_args(config)["eval_episodes"],  # unless an override changed it
        "env_step_budget": budget,
        "target": task["target"],
        "anchors": task["anchors"],
        "final_evals": finals,
        "median_final_eval": float(np.median(evaluated)) if evaluated else None,
        "last_ckpt_test_returns": [r["last_ckpt_test_return"] for r in runs],
        "wall_s": [r["wall_s"] for r in runs],
        "median_wall_s": float(np.median([r["wall_s"] for r in runs])),
        "stopping_threshold": threshold,
        "seeds_at_target": f"{len(solved)}/{seeds}",
        "env_steps_to_target": [r["env_steps_to_target"] for r in runs],
        "seeds_last_ckpt_at_floor": f"{at_floor}/{seeds}",
        "runs": runs,
    }
    return summary


def plot(summary: dict[str, Any], path: Path) -> None:
    """Greedy evaluations against env steps: every seed, the median and the min-max band, the anchors."""
    fig, ax = plt.subplots(figsize=(7, 4))
    curves = [(np.array([p[0] for p in r["evaluations"]]), np.array([p[2] for p in r["evaluations"]]))
              for r in summary["runs"]]
    plot_spread(ax, curves, np.linspace(0, summary["env_step_budget"], 101), "greedy eval return")
    for (label, value), style in zip(summary["anchors"].items(), ("--", ":", "-."), strict=False):
        ax.axhline(value, color="gray", linestyle=style, linewidth=1, label=label)
    ax.set(xlabel="environment steps", ylabel=f"mean return ({summary['eval_episodes']} greedy episodes)",
           title=f"REINFORCE (Gaussian policy) {summary['env_id']}, {len(summary['runs'])} seeds, "
                 f"at target {summary['seeds_at_target']}")
    ax.title.set_fontsize(9)
    ax.legend(loc="best", fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict[str, dict]:
    parser = seeds_parser(__doc__)
    parser.add_argument("--configs", nargs="+", choices=list(TASKS), default=list(TASKS),
                        help="configs/reinforce/<name>.yaml to run, one after the other")
    args, overrides = parser.parse_known_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.seeds, overrides = 1, [*SMOKE, *overrides]
    out = Path(args.out_dir)
    results = {}
    for name in args.configs:
        summary = bench_config(name, args.seeds, overrides)
        summary.update(threads=args.threads, smoke=args.smoke)
        write_results(out, f"reinforce_{name}", summary)
        plot(summary, out / f"reinforce_{name}.png")
        print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))  # after the figure
        results[name] = summary
    return results


if __name__ == "__main__":
    main()
