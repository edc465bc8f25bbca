"""DQN on Pong from pixels: learning curve, final score on whole games, and the agent as a checkpoint.

    python -m bench.dqn_pong                                  # trains configs/dqn/pong.yaml, then scores
    python -m bench.dqn_pong --run-dir runs/dqn_pong/version_0   # scores and plots a finished run
    python -m bench.dqn_pong --smoke --out-dir /tmp/x         # seconds

The final agent (the run's last.ckpt, or ``--ckpt``) plays ``--games`` whole games of the environment it
was trained on (unclipped score, the config's evaluation epsilon), and as many of the other Pong: an
agent of ``PongNoFrameskip-v4`` also plays ALE/Pong-v5 (sticky actions 0.25), and one of ALE/Pong-v5
also plays ``PongNoFrameskip-v4``. The curves come from
the run's TensorBoard events: the training episodes' return (``rollout/episodic_return``, whole games
at the exploration epsilon) and the periodic evaluations (``val/episodic_return``), against agent
steps and wall minutes. Writes ``<out-dir>/dqn_pong.{json,png}`` and the agent as a weights-only
checkpoint (the online network alone; loading rebuilds the target network) at ``--export``.
Target (issue 26): a mean >= 18 over 10 whole games within 1.2M agent steps, 120k gradient steps and 120
minutes of training. Published points of the same recipe (one gradient step per 10 agent steps) are drawn
on the agent-steps axis. Extra arguments go to ``rlgen fit``.
"""

from __future__ import annotations

from pathlib import Path

import gymnasium as gym
import torch

from bench import _pong
from bench._common import shown_path
from rlgen.checkpoints import read_checkpoint

CONFIG = "configs/dqn/pong.yaml"
TARGET = 18.0
BUDGET = {"agent_steps": 1_200_000, "gradient_steps": 120_000, "minutes": 120}
# Test returns logged by other implementations on PongNoFrameskip-v4 (no sticky actions), batch 32, one gradient
# step per 10 agent steps: Tianshou's examples/atari (dqn/test_rew.csv, qrdqn), one seed each.
STICKY_ENV = "ALE/Pong-v5"  # the environment: sticky actions 0.25
PLAIN_ENV = "PongNoFrameskip-v4"  # the published runs' environment: no sticky actions
PUBLISHED = {"Tianshou DQN (n-step 3)": [(700_000, 12.0), (900_000, 19.9)],
             "Tianshou QR-DQN": [(800_000, 19.8)]}
SMOKE = ["--trainer.max_steps=40", "--trainer.log_every_n_steps=1", "--model.warm_start_steps=200",
         "--trainer.val_check_interval=5", "--model.eval_episodes=1", "--model.buffer_size=2000",
         "--model.env_options.max_episode_steps=50", "--model.num_envs=2"]


def gradient_steps_at(saved: dict, agent_steps: int) -> int:
    """Gradient steps taken by the time of ``agent_steps``, from the run's replay ratio: none during the
    warm-up, then ``gradient_steps`` per ``train_frequency`` agent steps."""
    hp = saved["hyper_parameters"]
    return max(0, agent_steps - hp["warm_start_steps"]) * hp["gradient_steps"] // hp["train_frequency"]


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
    epsilon = saved["hyper_parameters"]["eval_epsilon"]
    # the agent also plays the other Pong, scored beside: with sticky actions if it trained without, and back
    other = PLAIN_ENV if env_id == STICKY_ENV else STICKY_ENV
    final_other = _pong.score(CONFIG, ckpt, args.games, [*test_overrides, f"--model.env_id={other}"])
    gradient_steps = int(saved.get("global_step", 0))
    reached = next((p for p in evaluations if p[2] >= TARGET), None)
    summary = {
        "config": CONFIG,
        "overrides": overrides,
        "run_dir": shown_path(run_dir),
        "env_id": f"{env_id} (sticky actions {sticky:g})",
        "agent_steps": env_steps,
        "gradient_steps": gradient_steps,
        "training_wall_minutes": minutes,
        "agent_steps_per_s": _pong.step_rates(train_returns),
        "final": final,
        # on ALE/Pong-v5 and on PongNoFrameskip-v4 (null: trained there, `final` is it)
        "final_with_sticky_actions": final_other if other == STICKY_ENV else None,
        "final_without_sticky_actions": final_other if other == PLAIN_ENV else None,
        "criterion": f"mean score of {final['games']} whole games, unclipped, epsilon {epsilon:g}",
        "target": f">= {TARGET} within {BUDGET['agent_steps']:,} agent steps, {BUDGET['gradient_steps']:,} "
                  f"gradient steps and {BUDGET['minutes']} minutes",
        "met": (final["mean"] >= TARGET and env_steps <= BUDGET["agent_steps"]
                and gradient_steps <= BUDGET["gradient_steps"] and minutes <= BUDGET["minutes"]),
        "best_evaluation": max(evaluations, key=lambda p: p[2]) if evaluations else None,
        "first_evaluation_at_target": reached,  # (agent steps, wall minutes, return), or null
        "published": PUBLISHED,
        "smoke": args.smoke,
        "curves": {"train_episodic_return": train_returns, "val_episodic_return": evaluations,
                   "val_episodic_return_by_gradient_step": [(gradient_steps_at(saved, s), m, v)
                                                            for s, m, v in evaluations]},
    }
    out = Path(args.out_dir)
    summary["frames"] = _pong.frame_strip(CONFIG, ckpt, out / "dqn_pong_frames.png", test_overrides)
    if args.export:
        summary["exported"] = {"path": shown_path(args.export),
                               "bytes": _pong.export_weights(ckpt, Path(args.export), drop=("target_net.",))}
    _pong.write(out, "dqn_pong", summary)
    _pong.plot(out / "dqn_pong.png",
               f"DQN, {env_id} from 4 stacked frames: final {final['mean']:.1f} over {final['games']} games "
               f"after {env_steps:,} agent steps, {minutes:.0f} min",
               [("training episodes (epsilon-greedy)", train_returns, dict(color="tab:blue", alpha=0.6)),
                (f"evaluation (epsilon {epsilon:g})", evaluations, dict(color="tab:red", marker="o"))],
               TARGET, f"target {TARGET:g}",
               [(label, points, dict(marker=marker, color="black", markersize=7))
                for (label, points), marker in zip(PUBLISHED.items(), ("^", "s"), strict=True)])
    return summary


if __name__ == "__main__":
    main()
