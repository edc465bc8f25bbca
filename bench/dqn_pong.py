"""DQN on Pong from pixels: learning curve, final score on whole games, and the agent as a checkpoint.

    python -m bench.dqn_pong                                  # trains configs/dqn/pong.yaml, then scores
    python -m bench.dqn_pong --run-dir runs/dqn_pong/version_0   # scores and plots a finished run
    python -m bench.dqn_pong --smoke --out-dir /tmp/x         # seconds

The final agent (the run's last.ckpt, or ``--ckpt``) plays ``--games`` whole games of ALE/Pong-v5
(sticky actions 0.25, unclipped score, epsilon 0.05: the config's evaluation). The curves come from
the run's TensorBoard events: the training episodes' return (``rollout/episodic_return``, whole games
at the exploration epsilon) and the periodic evaluations (``val/episodic_return``), against agent
steps and wall minutes. Writes ``<out-dir>/dqn_pong.{json,png}`` and the agent as a weights-only
checkpoint (the online network alone; loading rebuilds the target network) at ``--export``.
Target (issue 14): greedy mean >= 18 within 500,000 agent steps and 100 minutes.
Extra arguments go to ``rlgen fit``.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import torch

from bench import _pong
from rlgen.checkpoints import read_checkpoint

CONFIG = "configs/dqn/pong.yaml"
TARGET = 18.0
SMOKE = ["--trainer.max_steps=80", "--trainer.log_every_n_steps=1", "--model.warm_start_steps=500",
         "--trainer.val_check_interval=5", "--model.eval_episodes=1", "--model.buffer_size=2000",
         "--model.env_options.max_episode_steps=100"]


def main(argv: list[str] | None = None) -> dict:
    args, overrides = _pong.parser(__doc__, "dqn_pong").parse_known_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        overrides = [*SMOKE, *overrides]
    run_dir = Path(args.run_dir) if args.run_dir else _pong.train(CONFIG, args.save_dir, overrides)
    ckpt = args.ckpt or str(run_dir / "checkpoints" / "last.ckpt")
    test_overrides = ["--model.env_options.max_episode_steps=100"] if args.smoke else []
    final = _pong.score(CONFIG, ckpt, args.games, test_overrides)
    curves = _pong.read_curves(run_dir)
    train_returns = _pong.with_env_steps(curves, "rollout/episodic_return")
    evaluations = _pong.with_env_steps(curves, "val/episodic_return")
    env_steps = int(curves["rollout/env_steps"][-1][2])
    minutes = max(points[-1][1] for points in curves.values())
    saved = read_checkpoint(ckpt)
    env_id = saved["hyper_parameters"]["env_id"]  # what the agent was trained and scored on (it may be overridden)
    sticky = gym.spec(env_id).kwargs.get("repeat_action_probability", 0.0)
    summary = {
        "config": CONFIG,
        "overrides": overrides,
        "run_dir": str(run_dir),
        "env_id": f"{env_id} (sticky actions {sticky:g})",
        "agent_steps": env_steps,
        "gradient_steps": saved.get("global_step"),
        "training_wall_minutes": minutes,
        "agent_steps_per_s": _pong.step_rates(train_returns),
        "final": final,
        "criterion": f"mean score of {final['games']} whole games, unclipped, epsilon 0.05",
        "target": f">= {TARGET} within 500,000 agent steps and 100 minutes",
        "met": final["mean"] >= TARGET and env_steps <= 500_000 and minutes <= 100,
        "best_evaluation": max(evaluations, key=lambda p: p[2]) if evaluations else None,
        "smoke": args.smoke,
        "curves": {"train_episodic_return": train_returns, "val_episodic_return": evaluations},
    }
    out = Path(args.out_dir)
    summary["frames"] = _pong.frame_strip(CONFIG, ckpt, out / "dqn_pong_frames.png", test_overrides)
    if args.export:
        summary["exported"] = {"path": args.export,
                               "bytes": _pong.export_weights(ckpt, Path(args.export), drop=("target_net.",))}
    _pong.write(out, "dqn_pong", summary)
    _pong.plot(out / "dqn_pong.png",
               f"DQN, {env_id} from 4 stacked frames: final {final['mean']:.1f} over {final['games']} games "
               f"after {env_steps:,} agent steps, {minutes:.0f} min",
               [("training episodes (epsilon-greedy)", train_returns, dict(color="tab:blue", alpha=0.6)),
                ("evaluation (epsilon 0.05)", evaluations, dict(color="tab:red", marker="o"))],
               TARGET, f"target {TARGET:g}")
    return summary


if __name__ == "__main__":
    main()
