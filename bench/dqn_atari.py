"""DQN on an Atari game from pixels: learning curve, final score on whole games, and the agent as a checkpoint.

Every game trains its algorithm's one recipe, configs/<algo>/atari.yaml (DQN's by default).

    python -m bench.dqn_atari                                  # trains configs/dqn/pong.yaml, then scores
    python -m bench.dqn_atari --game breakout                  # configs/dqn/breakout.yaml, dqn_breakout.*
    python -m bench.dqn_atari --run-dir runs/dqn_pong/version_0   # scores and plots a finished run
    python -m bench.dqn_atari --game breakout --run-dir <run> --more-games 30   # and the spread over 30 games
    python -m bench.dqn_atari --run-dir runs/dqn_pong/version_0,runs/dqn_pong/version_1   # a resumed run
    python -m bench.dqn_atari --algo qrdqn --game boxing       # configs/qrdqn/boxing.yaml, qrdqn_boxing.*
    python -m bench.dqn_atari --smoke --out-dir /tmp/x         # seconds

``--algo`` and ``--game`` name the config ``configs/<algo>/<game>.yaml`` and the results ``<algo>_<game>``. The
final agent (the run's last.ckpt, or ``--ckpt``) plays ``--games`` whole games of the environment it was trained on
(all lives, unclipped score, the config's evaluation epsilon), and as many of the game's other environment: an
agent of ``<Game>NoFrameskip-v4`` also plays ``ALE/<Game>-v5`` (sticky actions 0.25), and back. The curves come
from the run's TensorBoard events: the training episodes' return (``rollout/episodic_return``, whole games at the
exploration epsilon) and the periodic evaluations (``val/episodic_return``), against agent steps and wall minutes.
Writes ``<out-dir>/<algo>_<game>.{json,png}``, one game's frames (``<algo>_<game>_frames.png``) and the agent as
a weights-only checkpoint (the online network alone; loading rebuilds the target network) at ``--export``
(default ``<out-dir>/<algo>_<game>.ckpt``).
Targets (issue 26 for Pong, issue 34 for the others): a mean over 10 whole games within 1.2M agent steps,
120k gradient steps and 120 minutes of training, the same budget for every game. Published points of
other implementations are drawn on the agent-steps axis. Extra arguments go to ``rlgen fit`` and to the scoring's
``rlgen test``, so that the agent is rebuilt as it was trained (e.g. ``--model.q_net.n_quantiles=64``); give them
again with ``--run-dir``.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import NamedTuple

import gymnasium as gym
import torch

from bench import _runs
from bench._common import REPO, shown_path
from rlgen.checkpoints import read_checkpoint

BUDGET = {"agent_steps": 1_200_000, "gradient_steps": 120_000, "minutes": 120}  # every game's


class Game(NamedTuple):
    """A game's target (the mean over 10 whole games) and the published ``(agent steps, return)`` points of other
    implementations, drawn beside its curve."""

    target: float
    published: dict[str, list[tuple[int, float]]]


# Pong: test returns logged by Tianshou's examples/atari on PongNoFrameskip-v4 (no sticky actions), batch 32, one
# gradient step per 10 agent steps (dqn/test_rew.csv, qrdqn), one seed each. Breakout and Boxing (issue 34): read
# off published curves, Tianshou's and CleanRL's without sticky actions, Dopamine's with them ("sticky").
GAMES = {
    "pong": Game(18.0, {"Tianshou DQN (n-step 3)": [(700_000, 12.0), (900_000, 19.9)],
                        "Tianshou QR-DQN": [(800_000, 19.8)]}),
    "breakout": Game(65.0, {"Tianshou DQN (n-step 3)": [(1_000_000, 65.0), (2_000_000, 125.0)],
                            "CleanRL DQN": [(1_000_000, 20.0), (2_000_000, 100.0)],
                            "Dopamine DQN (sticky)": [(1_000_000, 18.9)]}),
    "boxing": Game(50.0, {"Dopamine DQN (sticky)": [(1_000_000, 16.1)],
                          "Dopamine IQN (sticky)": [(1_000_000, 44.4)]}),
}
SMOKE = ["--trainer.max_steps=40", "--trainer.log_every_n_steps=1", "--model.warm_start_steps=200",
         "--trainer.val_check_interval=5", "--model.eval_episodes=1", "--model.buffer_size=2000",
         "--model.env_options.max_episode_steps=50", "--model.num_envs=2"]


def env_ids(game: str) -> tuple[str, str]:
    """The game's two environments: with sticky actions 0.25 (``ALE/Breakout-v5``) and without, as the DQN paper
    and the published runs play it (``BreakoutNoFrameskip-v4``)."""
    name = "".join(part.capitalize() for part in game.split("_"))  # space_invaders -> SpaceInvaders
    return f"ALE/{name}-v5", f"{name}NoFrameskip-v4"


def gradient_steps_at(saved: dict, agent_steps: int) -> int:
    """Gradient steps taken by the time of ``agent_steps``, from the run's replay ratio: none during the
    warm-up, then ``gradient_steps`` per ``train_frequency`` agent steps."""
    hp = saved["hyper_parameters"]
    return max(0, agent_steps - hp["warm_start_steps"]) * hp["gradient_steps"] // hp["train_frequency"]


def main(argv: list[str] | None = None) -> dict:
    parser = _runs.parser(__doc__, "<algo>_<game>")
    parser.add_argument("--game", choices=sorted(GAMES), default="pong", help="which configs/<algo>/<game>.yaml")
    parser.add_argument("--algo", choices=("dqn", "qrdqn"), default="dqn", help="which configs/<algo>/<game>.yaml")
    parser.add_argument("--more-games", type=int, default=0, help="also score the final agent on this many whole "
                        "games (the first --games of them the same), to size the spread of the --games score")
    args, overrides = parser.parse_known_args(argv)
    if args.more_games < 0:
        parser.error(f"--more-games {args.more_games}: give a number of games >= 0 (0 skips them)")
    torch.set_num_threads(args.threads)
    name, config, (target, published) = (f"{args.algo}_{args.game}", f"configs/{args.algo}/{args.game}.yaml",
                                         GAMES[args.game])
    if not (REPO / config).exists():
        raise SystemExit(f"{config} does not exist: {args.algo} has no config for {args.game}; train "
                         f"configs/{args.algo}/atari.yaml with --model.env_id=<the game's id> instead")
    sticky_env, plain_env = env_ids(args.game)
    model_overrides = overrides  # the scoring rebuilds the agent with them
    if args.smoke:
        overrides = [*SMOKE, *overrides]
    run_dirs = args.run_dir or [_runs.train(config, args.save_dir, overrides)]
    ckpt = args.ckpt or str(run_dirs[-1] / "checkpoints" / "last.ckpt")
    test_overrides = [*model_overrides, *(["--model.env_options.max_episode_steps=100"] if args.smoke else [])]
    final = _runs.score(config, ckpt, args.games, test_overrides)
    curves = _runs.joined_curves(run_dirs, ("rollout/episodic_return", "val/episodic_return", "rollout/env_steps"))
    train_returns, evaluations = curves["rollout/episodic_return"], curves["val/episodic_return"]
    env_steps = curves["rollout/env_steps"][-1][0]
    minutes = max(points[-1][1] for points in curves.values() if points)
    saved = read_checkpoint(ckpt)
    env_id = saved["hyper_parameters"]["env_id"]  # what the agent was trained and scored on (it may be overridden)
    sticky = gym.spec(env_id).kwargs.get("repeat_action_probability", 0.0)
    epsilon = saved["hyper_parameters"]["eval_epsilon"]
    # the agent also plays the game's other environment, scored beside: with sticky actions if it trained without,
    # and back
    other = plain_env if env_id == sticky_env else sticky_env
    final_other = _runs.score(config, ckpt, args.games, [*test_overrides, f"--model.env_id={other}"])
    gradient_steps = int(saved.get("global_step", 0))
    more = None
    if args.more_games:  # the spread of the --games score: more games of the same agent, and their standard error
        more = _runs.score(config, ckpt, args.more_games, test_overrides)
        more["standard_error"] = (round(statistics.stdev(more["returns"]) / more["games"] ** 0.5, 2)
                                  if more["games"] > 1 else None)
    reached = next((p for p in evaluations if p[2] >= target), None)
    summary = {
        "game": args.game,
        "config": config,
        "overrides": overrides,
        "run_dir": ",".join(shown_path(d) for d in run_dirs),  # with a resumption: the parts, as --run-dir takes them
        "env_id": f"{env_id} (sticky actions {sticky:g})",
        "sticky_env_id": sticky_env,
        "plain_env_id": plain_env,
        "agent_steps": env_steps,
        "gradient_steps": gradient_steps,
        "training_wall_minutes": minutes,
        "agent_steps_per_s": _runs.step_rates(train_returns),
        "final": final,
        # on sticky_env_id and on plain_env_id (null: trained there, `final` is it)
        "final_with_sticky_actions": final_other if other == sticky_env else None,
        "final_without_sticky_actions": final_other if other == plain_env else None,
        "more_games": more,  # --more-games whole games of the same agent and environment, or null
        "criterion": f"mean score of {final['games']} whole games, unclipped, epsilon {epsilon:g}",
        "target": f">= {target} within {BUDGET['agent_steps']:,} agent steps, {BUDGET['gradient_steps']:,} "
                  f"gradient steps and {BUDGET['minutes']} minutes",
        "met": (final["mean"] >= target and env_steps <= BUDGET["agent_steps"]
                and gradient_steps <= BUDGET["gradient_steps"] and minutes <= BUDGET["minutes"]),
        "best_evaluation": max(evaluations, key=lambda p: p[2]) if evaluations else None,
        "first_evaluation_at_target": reached,  # (agent steps, wall minutes, return), or null
        "published": published,
        "smoke": args.smoke,
        "curves": {"train_episodic_return": train_returns, "val_episodic_return": evaluations,
                   "val_episodic_return_by_gradient_step": [(gradient_steps_at(saved, s), m, v)
                                                            for s, m, v in evaluations]},
    }
    out = Path(args.out_dir)
    summary["frames"] = _runs.frame_strip(config, ckpt, out / f"{name}_frames.png", test_overrides,
                                          f"one game of the trained agent, {env_id}")
    export = _runs.export_path(args.export, name, out)
    if export:
        summary["exported"] = {"path": shown_path(export),
                               "bytes": _runs.export_weights(ckpt, Path(export), drop=("target_net.",))}
    _runs.write(out, name, summary)
    _runs.plot(out / f"{name}.png",
               f"{final['model']}, {env_id} from 4 stacked frames: final {final['mean']:.1f} over {final['games']} "
               f"games after {env_steps:,} agent steps, {minutes:.0f} min",
               [("training episodes (epsilon-greedy)", train_returns, dict(color="tab:blue", alpha=0.6)),
                (f"evaluation (epsilon {epsilon:g})", evaluations, dict(color="tab:red", marker="o"))],
               target, f"target {target:g}",
               [(label, points, dict(marker=marker, color="black", markersize=7, fillstyle="none"))
                for (label, points), marker in zip(published.items(), "^sDv", strict=False)])
    return summary


if __name__ == "__main__":
    main()
