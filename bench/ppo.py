"""PPO and A2C, several seeds: CartPole-v1 env steps until solved, or the greedy return against env steps.

    python -m bench.ppo                                   # PPO CartPole, 5 seeds (minutes)
    python -m bench.ppo --task hopper --seeds 3           # PPO Hopper-v5, 1,000,000 env steps a seed
    python -m bench.ppo --task a2c_pendulum --seeds 5     # A2C Pendulum-v1, 1,000,000 env steps a seed
    python -m bench.ppo --smoke --out-dir /tmp/x          # seconds (add --task <one of those> for its smoke)

CartPole runs ``configs/ppo/cartpole.yaml`` as it is for each seed: the greedy policy plays 20 evaluation
episodes every 200 gradient steps (2,560 env steps), the config's ``EarlyStopping`` ends the run at the first
evaluation above 495, then ``rlgen test`` plays 20 fresh episodes with the run's ``last.ckpt``. Writes
``<out-dir>/ppo_cartpole.json`` and ``.png``. Target (issue 33): solved (>= 475) within 100,000 env steps, 5/5 seeds.

Hopper runs ``configs/ppo/hopper.yaml`` (1,000,000 env steps, greedy evaluation of 10 episodes every 51,200
env steps) and writes ``<out-dir>/ppo_hopper.json`` and ``.png``. Target (issue 33): median of 3 seeds >= 2,400,
every seed >= 1,800, <= 15 min a seed. ``--task a2c_pendulum`` runs ``configs/a2c/pendulum.yaml`` the same way
(greedy evaluation of 20 episodes every 40,000 env steps, last.ckpt tested on 50) and writes ``a2c_pendulum.json``
and ``.png``; target (issue 33): beat RL Zoo's A2C Pendulum-v1, -163 at 1,000,000 env steps. These files give
each seed's wall time and env steps per second; ``--first-seed`` and ``--join`` run seeds as separate processes
and join their files, and ``--note`` records how the machine was shared. Arguments the bench does not know go
to ``rlgen fit`` and ``rlgen test``, e.g. ``--model.lr=0.0005``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench._common import common_machine, config_args, plt, save_figure, write_results
from bench._rl import cartpole_bench, plot_spread, seeds_parser, train_seed

CARTPOLE_SMOKE = ["--trainer.max_steps=40", "--trainer.val_check_interval=20", "--model.eval_episodes=2",
                  "--model.test_episodes=2"]
HOPPER_SMOKE = ["--trainer.max_steps=8", "--trainer.val_check_interval=4", "--model.num_steps=64",
                "--model.num_minibatches=2", "--model.update_epochs=2", "--model.eval_episodes=1",
                "--model.test_episodes=1"]
# The tasks of a whole env step budget: --task -> the results name, config, budget, target and published anchors.
BUDGET_TASKS: dict[str, dict[str, Any]] = {
    "hopper": {
        "name": "ppo_hopper",
        "algo": "PPO",
        "config": "configs/ppo/hopper.yaml",
        "budget": 1_000_000,
        "target": ("median of 3 seeds >= 2,400 greedy within 1,000,000 env steps, every seed >= 1,800, <= 15 min a "
                   "seed"),
        "anchors": {"CleanRL PPO Hopper-v4, 1M steps (3 seeds)": 2383.0, "RL Zoo PPO Hopper-v3, 1M steps": 2410.4},
        "smoke": HOPPER_SMOKE,
    },
    "a2c_pendulum": {
        "name": "a2c_pendulum",
        "algo": "A2C",
        "config": "configs/a2c/pendulum.yaml",
        "budget": 1_000_000,
        "target": ("beat RL Zoo's A2C Pendulum-v1, -163 at 1,000,000 env steps (median final greedy return of the "
                   "seeds)"),
        "anchors": {"RL Zoo A2C Pendulum-v1 (gSDE), 1M steps": -163.0},
        "smoke": ["--trainer.max_steps=8", "--trainer.val_check_interval=4", "--model.num_envs=2",
                  "--model.eval_episodes=1", "--model.test_episodes=1"],
    },
}


def speed(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Each seed's env steps per second of training wall time (evaluations included)."""
    return {"env_steps_per_s": [round(r["env_steps"] / r["wall_s"], 1) for r in runs]}


def cartpole(argv: list[str]) -> dict[str, Any]:
    summary = cartpole_bench(argv, __doc__, "ppo_cartpole", "configs/ppo/cartpole.yaml", unit="env_steps",
                             budget=100_000, smoke=CARTPOLE_SMOKE)
    summary.update(speed(summary["runs"]))
    args, _ = seeds_parser(__doc__).parse_known_args(argv)
    write_results(Path(args.out_dir), "ppo_cartpole", summary)  # cartpole_bench's file, with the speeds
    print(json.dumps({"env_steps_per_s": summary["env_steps_per_s"]}))
    return summary


def budget_task(argv: list[str], task: str) -> dict[str, Any]:
    """One of ``BUDGET_TASKS``: its config for ``--seeds`` seeds of the whole env step budget, each then tested
    with its ``last.ckpt``; writes ``<name>.json`` and ``<name>.png``."""
    spec = BUDGET_TASKS[task]
    name = spec["name"]
    parser = seeds_parser(__doc__)
    parser.add_argument("--first-seed", type=int, default=0, help="the first seed (seeds first, first + 1, ...)")
    parser.add_argument("--join", nargs="+", default=None, metavar="JSON",
                        help="train nothing: join the runs of these results files of the task (seeds run as "
                             "separate processes, e.g. one a core) into one summary")
    parser.add_argument("--note", default=None,
                        help="how the machine was shared while this ran (stored as the JSON's note)")
    args, overrides = parser.parse_known_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.seeds, overrides = 1, [*spec["smoke"], *overrides]
    runs = []
    notes = [args.note] if args.note else []
    if args.join:
        joined = [json.loads(Path(path).read_text()) for path in args.join]
        runs = sorted((run for part in joined for run in part["runs"]), key=lambda run: run["seed"])
        overrides, args.threads = joined[0]["overrides"], joined[0]["threads"]
        notes = list(dict.fromkeys([*(part["note"] for part in joined if part.get("note")), *notes]))
    for seed in range(args.first_seed, args.first_seed + args.seeds) if not args.join else ():
        run = train_seed(spec["config"], seed, overrides)
        run["episode_returns"] = [[steps, round(ret, 2)] for steps, ret in run["episode_returns"]]
        runs.append(run)
        print(f"{task} seed {seed}: final evaluation {run['final_eval']}, env steps {run['env_steps']}, last.ckpt "
              f"tested {run['last_ckpt_test_return']:.1f}, wall {run['wall_s']} s", flush=True)
    finals = [r["final_eval"] for r in runs]
    evaluated = [f for f in finals if f is not None]
    summary: dict[str, Any] = {
        "config": spec["config"],
        "env_id": config_args(spec["config"])["env_id"],
        "overrides": overrides,
        "eval_episodes": config_args(spec["config"])["eval_episodes"],
        "env_step_budget": spec["budget"],
        "target": spec["target"],
        "anchors": spec["anchors"],
        "final_evals": finals,
        "median_final_eval": float(np.median(evaluated)) if evaluated else None,
        "best_evals": [max((p[2] for p in r["evaluations"]), default=None) for r in runs],
        "last_ckpt_test_returns": [r["last_ckpt_test_return"] for r in runs],
        "wall_s": [r["wall_s"] for r in runs],
        "median_wall_s": float(np.median([r["wall_s"] for r in runs])),
        "eval_s": [r.get("eval_s") for r in runs],  # the greedy evaluations' part of wall_s (None: not recorded)
        **speed(runs),
        "threads": args.threads,
        "smoke": args.smoke,
        **({"note": "; ".join(notes)} if notes else {}),
        "runs": runs,
    }
    if args.join:  # the runs were timed where they ran: the file names their machine if they share one
        summary["machine"] = common_machine(runs)
    out = Path(args.out_dir)
    write_results(out, name, summary)
    fig, ax = plt.subplots(figsize=(7, 4))
    curves = [(np.array([p[0] for p in r["evaluations"]]), np.array([p[2] for p in r["evaluations"]])) for r in runs]
    plot_spread(ax, curves, np.linspace(0, spec["budget"], 101), "greedy eval return")
    for (label, value), style in zip(summary["anchors"].items(), ("--", ":"), strict=False):
        ax.axhline(value, color="gray", linestyle=style, linewidth=1, label=label)
    ax.set(xlabel="environment steps", ylabel=f"mean return ({summary['eval_episodes']} greedy episodes)",
           title=f"{spec['algo']} {summary['env_id']}, {len(runs)} seed(s)")
    ax.legend(loc="best", fontsize=7)
    save_figure(fig, out / f"{name}.png")
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))
    return summary


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import sys

    argv = list(sys.argv[1:] if argv is None else argv)
    task = "cartpole"
    if "--task" in argv:
        i = argv.index("--task")
        task = argv[i + 1]
        del argv[i:i + 2]
    if task not in ("cartpole", *BUDGET_TASKS):
        raise SystemExit(f"--task must be one of cartpole, {', '.join(BUDGET_TASKS)}; got {task}")
    return cartpole(argv) if task == "cartpole" else budget_task(argv, task)


if __name__ == "__main__":
    main()
