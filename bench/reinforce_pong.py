"""REINFORCE on Pong from pixel differences: running mean return, final score, the agent as a checkpoint.

    python -m bench.reinforce_pong                                       # trains configs/reinforce/pong.yaml
    python -m bench.reinforce_pong --run-dir runs/reinforce_pong/version_0   # scores and plots a finished run
    python -m bench.reinforce_pong --smoke --out-dir /tmp/x              # seconds

The curve is the running mean return of the last 100 training episodes (``rollout/return_last100``:
whole games of ALE/Pong-v5, the sampled policy, unclipped) against agent steps and wall minutes,
read from the run's TensorBoard events; the greedy evaluations (``val/episodic_return``) are shown
too. The final agent (the run's last.ckpt, or ``--ckpt``) then plays ``--games`` whole games with its
most likely action. A run resumed with ``--ckpt_path last`` logs into a new version directory: pass
every directory of the run to ``--run-dir`` (comma-separated) and the curves are joined.
Writes ``<out-dir>/reinforce_pong.{json,png}`` and the agent as a weights-only checkpoint at ``--export``
(default ``<out-dir>/reinforce_pong.ckpt``).
Target (issue 14): running mean over 100 episodes >= -10 within 2 hours of training (stretch: >= 0).
Extra arguments go to ``rlgen fit``.
"""

from __future__ import annotations

from pathlib import Path

import torch

from bench import _runs
from bench._common import shown_path

CONFIG = "configs/reinforce/pong.yaml"
TARGET, STRETCH = -10.0, 0.0
SMOKE = ["--trainer.max_steps=2", "--trainer.val_check_interval=1", "--model.eval_episodes=1", "--model.num_envs=2",
         "--model.episodes_per_batch=2", "--model.env_options.max_episode_steps=100"]


def main(argv: list[str] | None = None) -> dict:
    args, overrides = _runs.parser(__doc__, "reinforce_pong").parse_known_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        overrides = [*SMOKE, *overrides]
    run_dirs = args.run_dir or [_runs.train(CONFIG, args.save_dir, overrides)]
    ckpt = args.ckpt or str(run_dirs[-1] / "checkpoints" / "last.ckpt")
    test_overrides = ["--model.env_options.max_episode_steps=100"] if args.smoke else []
    final = _runs.score(CONFIG, ckpt, args.games, test_overrides)
    curves = _runs.joined_curves(run_dirs, ("rollout/return_last100", "val/episodic_return"))
    running, evaluations = curves["rollout/return_last100"], curves["val/episodic_return"]
    reached = next((p for p in running if p[2] >= TARGET), None)
    best = max(running, key=lambda p: p[2])
    summary = {
        "config": CONFIG,
        "overrides": overrides,
        "run_dirs": [shown_path(d) for d in run_dirs],
        "env_id": "ALE/Pong-v5 (sticky actions 0.25), actions UP/DOWN, 80x80 frame differences",
        "agent_steps": running[-1][0],
        "training_wall_minutes": running[-1][1],
        "agent_steps_per_s": _runs.step_rates(running),  # target (issue 14): >= 2,500 on this CPU
        "final_running_mean_100": running[-1][2],
        "best_running_mean_100": {"agent_steps": best[0], "wall_minutes": best[1], "value": best[2]},
        "reached_target_at": {"agent_steps": reached[0], "wall_minutes": reached[1]} if reached else None,
        "target": f"running mean over 100 episodes >= {TARGET:g} within 120 minutes (stretch >= {STRETCH:g})",
        "met": reached is not None and reached[1] <= 120,
        "stretch_met": any(v >= STRETCH and m <= 120 for _, m, v in running),
        "final_greedy": final,
        "smoke": args.smoke,
        "curves": {"return_last100": running, "val_episodic_return": evaluations},
    }
    out = Path(args.out_dir)
    summary["frames"] = _runs.frame_strip(CONFIG, ckpt, out / "reinforce_pong_frames.png", test_overrides,
                                          "one game of the trained agent (right, green paddle)")
    export = _runs.export_path(args.export, "reinforce_pong", out)
    if export:
        summary["exported"] = {"path": shown_path(export), "bytes": _runs.export_weights(ckpt, Path(export))}
    _runs.write(out, "reinforce_pong", summary)
    _runs.plot(out / "reinforce_pong.png",
               f"REINFORCE, Pong from pixel differences: running mean {running[-1][2]:.1f} after "
               f"{running[-1][0]:,} agent steps, {running[-1][1]:.0f} min",
               [("running mean of 100 training episodes", running, dict(color="tab:blue")),
                ("greedy evaluation (3 games)", evaluations, dict(color="tab:red", marker="o", linestyle=""))],
               TARGET, f"target {TARGET:g}")
    return summary


if __name__ == "__main__":
    main()
