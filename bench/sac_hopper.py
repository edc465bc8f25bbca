"""SAC on Hopper-v5: score a finished run of ``configs/sac/hopper.yaml`` (or train one) against issue 33's target.

    OMP_NUM_THREADS=2 rlgen fit -c configs/sac/hopper.yaml --threads 2     # 175,000 env steps, under nohup
    python -m bench.sac_hopper --run-dir runs/sac_hopper/version_0          # then score it (minutes)
    python -m bench.sac_hopper --smoke --out-dir /tmp/x                     # a tiny fit, then the same (seconds)

Reads the run's TensorBoard events (its greedy evaluations, 10 whole episodes every 10,000 env steps, and the
training returns, against env steps and wall minutes), tests its ``last.ckpt`` with ``rlgen test`` on 10 fresh
episodes (and its best-evaluated checkpoint, ``best-*.ckpt``, the same way), and
writes ``<out-dir>/sac_hopper.json`` and ``.png``. A run directory per seed: ``--run-dir`` takes several, and
``--join`` adds the scored runs of earlier files (seeds trained and scored in different sessions, whose run
directories are gone). Target (issue 33): median of 3 seeds >= 2,500 within 300,000 env steps, every seed >= 2,000,
<= 45 min a seed (CleanRL's SAC: about 2,350 at 300k, 3 seeds), read from each seed's final evaluation, which must be
on its last step (the final agent: at this budget a greedy return swings by 2,000 within 10,000 env steps).

Then, unless ``--speed-steps 0``, it times 1,000 gradient steps of rlgen's SAC on the config against the same
update in a plain PyTorch loop on Hopper-v5 (``bench.sac``'s speed check, ``SPEED_PAIRS`` alternating pairs, at
``--threads``): the ratio is what Lightning and rlgen's data path add (target: <= 1.15).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import yaml

from bench._common import (
    REPO,
    bench_parser,
    common_machine,
    init_args,
    machine,
    plt,
    save_figure,
    shown_path,
    write_results,
)
from bench._runs import read_curves, score, train, with_env_steps
from bench.sac import SPEED_PAIRS, speed, speed_entries
from rlgen.cli.checks import find_best_checkpoint
from rlgen.cli.config import best_checkpoint_globs
from rlgen.cli.listing import read_config

CONFIG = "configs/sac/hopper.yaml"
NAME = "sac_hopper"
TARGET = ("median of 3 seeds >= 2,500 greedy within 300,000 env steps, every seed >= 2,000, <= 45 min a seed")
ANCHORS = {"CleanRL SAC Hopper, 300k steps (3 seeds)": 2350.0}
LIMIT = 300_000  # the target's env steps: every run's final evaluation within them
SMOKE = ["--trainer.max_steps=30", "--trainer.val_check_interval=5", "--trainer.log_every_n_steps=2",
         "--model.warm_start_steps=256",
         "--model.eval_episodes=1", "--model.actor.init_args.hidden_sizes=[16]",
         "--model.critic.init_args.hidden_sizes=[16]", "--model.env_options.max_episode_steps=50"]


def env_step_budget(config: str = CONFIG) -> int:
    """The env steps of a run of ``config``: the warm-up, then ``max_steps`` optimizer steps, two a gradient step,
    ``train_frequency`` env steps a phase of ``gradient_steps`` gradient steps."""
    from rlgen.lightning_modules.sac import SAC

    spec = read_config(REPO / config)
    hp = init_args(spec["model"])
    gradient_steps = spec["trainer"]["max_steps"] // SAC.OPTIMIZER_STEPS_PER_GRADIENT_STEP
    return hp["warm_start_steps"] + gradient_steps * hp["train_frequency"] // hp["gradient_steps"]


BUDGET = env_step_budget()  # the shipped config's env steps: a run that stopped short of them is incomplete


def seed_summary(run_dir: Path, test_episodes: int, overrides: list[str]) -> dict[str, Any]:
    """One run: its evaluations and training returns against env steps, its wall time, its last.ckpt tested, and the
    machine that scores it (a run is scored in the session that trained it, on the same machine: its wall time is
    that machine's)."""
    curves = read_curves(run_dir)
    evaluations = with_env_steps(curves, "val/episodic_return")  # (env steps, wall minutes, return)
    training = with_env_steps(curves, "rollout/episodic_return")
    last = run_dir / "checkpoints" / "last.ckpt"
    tested = score(CONFIG, str(last), test_episodes, overrides)
    # the agent of the best evaluation, found as `rlgen test --ckpt_path best` finds it, tested the same way
    best = find_best_checkpoint([run_dir], best_checkpoint_globs(read_config(REPO / CONFIG)))
    best_tested = score(CONFIG, str(best), test_episodes, overrides)
    env_steps = int(curves["rollout/env_steps"][-1][2])
    minutes = max(points[-1][1] for points in curves.values() if points)
    config = yaml.safe_load((run_dir / "config.yaml").read_text())  # what the run was started with
    return {
        "run_dir": shown_path(run_dir),
        "seed": config.get("seed_everything"),
        "training_threads": config.get("threads"),  # rlgen's --threads (null: the model's default)
        "env_steps": env_steps,
        "wall_minutes": round(minutes, 1),
        "env_steps_per_s": round(env_steps / (minutes * 60), 1) if minutes else None,
        "machine": machine(),
        "final_eval": evaluations[-1][2] if evaluations else None,
        "final_eval_env_steps": evaluations[-1][0] if evaluations else None,
        "best_eval": max((p[2] for p in evaluations), default=None),
        "last_ckpt_test": tested,
        "best_ckpt_test": best_tested,
        "evaluations": [[s, m, round(v, 2)] for s, m, v in evaluations],
        "training_returns": [[s, m, round(v, 2)] for s, m, v in training],
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = bench_parser(__doc__)
    parser.add_argument("--run-dir", nargs="+", type=Path, default=None,
                        help="the version directories of finished runs of the config (one a seed)")
    parser.add_argument("--join", nargs="+", type=Path, default=[], metavar="JSON",
                        help="sac_hopper.json files of earlier scorings: their runs join these (one a seed)")
    parser.add_argument("--test-episodes", type=int, default=10, help="episodes of the last.ckpt test")
    parser.add_argument("--smoke", action="store_true", help="train a tiny run first, then score it (seconds)")
    parser.add_argument("--note", default=None, help="what else ran on the machine, stored in the JSON")
    parser.add_argument("--previous", type=Path, default=None,
                        help="an earlier sac_hopper.json that these runs replace: its figures are kept as `previous`")
    parser.add_argument("--speed-steps", type=int, default=1_000,
                        help="gradient steps of the speed check against a plain PyTorch loop on Hopper, at --threads "
                             "(0: skip it)")
    args, overrides = parser.parse_known_args(argv)
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as scratch:
        if args.smoke:
            overrides = [*SMOKE, *overrides]
            args.run_dir, args.test_episodes = [train(CONFIG, scratch, overrides)], 1
        if not args.run_dir and not args.join:
            parser.error("give --run-dir (the version directory of a finished `rlgen fit -c configs/sac/hopper.yaml`)"
                         " or --join (earlier sac_hopper.json files)")
        runs = [seed_summary(Path(d), args.test_episodes, overrides) for d in args.run_dir or []]
    joined = [json.loads(path.read_text()) for path in args.join]
    runs += [run for part in joined for run in part["runs"]]
    seeds = [run.get("seed") for run in runs]
    if None not in seeds and len(set(seeds)) < len(seeds):
        parser.error(f"each run must be another seed, got seeds {seeds}")
    runs.sort(key=lambda run: -1 if run.get("seed") is None else run["seed"])
    finals = [r["final_eval"] for r in runs if r["final_eval"] is not None]
    complete = all(r["env_steps"] >= BUDGET for r in runs)  # every run used its budget (evaluated within it)
    summary: dict[str, Any] = {
        "config": CONFIG, "target": TARGET, "anchors": ANCHORS, "env_step_budget": BUDGET,
        "seeds": len(runs),
        "trained_seeds": [run.get("seed") for run in runs],  # seed_everything of each run (null: not recorded)
        "final_evals": finals,
        "median_final_eval": float(np.median(finals)) if finals else None,
        "final_eval_env_steps": [r["final_eval_env_steps"] for r in runs],
        "last_ckpt_test_returns": [r["last_ckpt_test"]["mean"] for r in runs],
        # the best-evaluated agent of each seed (its checkpoint), tested: what `rlgen test --ckpt_path <it>` plays
        "best_ckpt_test_returns": [r["best_ckpt_test"]["mean"] for r in runs],
        "wall_minutes": [r["wall_minutes"] for r in runs],
        "env_steps_per_s": [r["env_steps_per_s"] for r in runs],
        "complete": complete,
        "met": bool(complete and len(finals) >= 3 and np.median(finals) >= 2500 and min(finals) >= 2000
                    and all(r["env_steps"] == r["final_eval_env_steps"] <= LIMIT for r in runs)  # the final agent
                    and max(r["wall_minutes"] for r in runs) <= 45),
        "training_threads": [r["training_threads"] for r in runs],
        "machine": common_machine(runs),  # each run's is in `runs` (null: they differ, or some were not recorded)
        # the joined files' notes (how their seeds ran), then this scoring's
        "note": "; ".join(dict.fromkeys(n for n in [*(part.get("note") for part in joined), args.note] if n)) or None,
        "smoke": args.smoke, "scoring_threads": args.threads,
        "runs": runs,
    }
    for key in ("previous", "exported"):  # a joined file's replaced results and shipped agent stay
        kept = next((part[key] for part in joined if part.get(key)), None)
        if kept:
            summary[key] = kept  # --previous below replaces a kept previous
    if args.previous:  # the replaced results, in brief (their runs stay in the git history)
        old = json.loads(args.previous.read_text())
        summary["previous"] = {k: old.get(k) for k in ("final_evals", "last_ckpt_test_returns",
                                                       "best_ckpt_test_returns", "wall_minutes",
                                                       "training_threads", "note", "speed")}
    check = None
    if args.speed_steps:  # in this process, at --threads torch threads (the training's own count if equal)
        speed_overrides = ["--model.warm_start_steps=256"] if args.smoke else []
        check = speed(min(args.speed_steps, 20) if args.smoke else args.speed_steps, speed_overrides, CONFIG,
                      pairs=2 if args.smoke else SPEED_PAIRS)
    summary.update(speed_entries(joined, check))  # the joined files' checks stay (beside a new one)
    out = Path(args.out_dir)
    write_results(out, NAME, summary, echo=True, omit=("runs",))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for i, r in enumerate(runs):
        for ax, x in ((axes[0], 0), (axes[1], 1)):
            ax.plot([p[x] for p in r["evaluations"]], [p[2] for p in r["evaluations"]], marker=".",
                    label=f"run {i}: greedy evaluation")
            ax.plot([p[x] for p in r["training_returns"]], [p[2] for p in r["training_returns"]], alpha=0.4,
                    label=f"run {i}: training episodes")
    for (label, value) in ANCHORS.items():
        axes[0].axhline(value, color="gray", linestyle="--", linewidth=1, label=label)
    axes[0].set(xlabel="environment steps", ylabel="return")
    axes[1].set(xlabel="wall minutes")
    axes[0].legend(fontsize=7)
    fig.suptitle(f"SAC Hopper-v5, {len(runs)} run(s)")
    save_figure(fig, out / f"{NAME}.png")
    return summary


if __name__ == "__main__":
    main()
