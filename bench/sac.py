"""SAC on Pendulum-v1, several seeds: greedy return against env steps, and the cost of a gradient step.

    python -m bench.sac                                  # 5 seeds of configs/sac/pendulum.yaml, then the speed check
    python -m bench.sac --seeds 3 --speed-steps 0        # no speed check
    python -m bench.sac --runs-from bench/results/sac_pendulum.json   # the scored seeds, a new speed check
    python -m bench.sac --smoke --out-dir /tmp/x         # seconds

Runs ``configs/sac/pendulum.yaml`` as it is for each seed (``rlgen fit``, then ``rlgen test`` of the run's
``last.ckpt`` on 20 fresh episodes, as a user does next) and writes ``<out-dir>/sac_pendulum.json`` and ``.png``:
every seed's greedy evaluations (tanh of the mean, 10 whole episodes every 1,000 env steps) and training episode
returns against env steps, its final evaluation (at 20,000 env steps), the ``last.ckpt`` test return, the wall
time, env steps and gradient steps per second. Target (issue 33): median final evaluation of 5 seeds >= -170
within 20,000 env steps, every seed >= -250 (RL Zoo's SAC: -157 +- 89 at 20k).

Each finished seed is saved at once to ``<out-dir>/sac_pendulum.partial.tmp``; a rerun with the same arguments
continues after the seeds already there (run it under nohup: a seed is minutes).

The speed check (``--speed-steps N``) times N gradient steps of rlgen's SAC (``rlgen fit`` without evaluations)
against the same update in a plain PyTorch loop (one env step, a replay sample and one update per step, the same
networks, loss functions and optimizers) in ``SPEED_PAIRS`` alternating pairs, in this process: the ratio of their
medians is what Lightning and rlgen's data path add. Arguments the bench does not know go to ``rlgen fit`` and
``rlgen test``, e.g. ``--model.actor_lr=3e-4``.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from pytorch_lightning import Callback

from bench._common import REPO, config_args, init_args, machine, plt, save_figure, write_results
from bench._rl import plot_spread, seeds_parser, train_seed

CONFIG = "configs/sac/pendulum.yaml"
NAME = "sac_pendulum"
TARGET = {"median": -170.0, "every_seed": -250.0, "env_steps": 20_000}
ANCHORS = {"RL Zoo SAC, 20k steps (-157 +- 89)": -157.0}
SMOKE = ["--trainer.max_steps=30", "--trainer.val_check_interval=4", "--model.warm_start_steps=256",
         "--model.eval_episodes=1", "--model.test_episodes=1"]  # 1 seed, seconds


def bench_seeds(seeds: int, overrides: list[str], partial: Path) -> list[dict[str, Any]]:
    """Train and test the config for seeds 0..N-1, keeping each finished seed in ``partial``."""
    from rlgen.lightning_modules.sac import SAC

    done = json.loads(partial.read_text()) if partial.exists() else {"overrides": overrides, "runs": []}
    runs = done["runs"] if done["overrides"] == overrides else []
    for seed in range(len(runs), seeds):
        run = train_seed(CONFIG, seed, overrides)
        gradient_steps = run["gradient_steps"] // SAC.OPTIMIZER_STEPS_PER_GRADIENT_STEP  # what global_step counts
        run.update(gradient_steps=gradient_steps, env_steps_per_s=round(run["env_steps"] / run["wall_s"], 1),
                   gradient_steps_per_s=round(gradient_steps / run["wall_s"], 1),
                   episode_returns=[[steps, round(ret, 2)] for steps, ret in run["episode_returns"]])
        runs.append(run)
        partial.write_text(json.dumps({"overrides": overrides, "runs": runs}))
        print(f"seed {seed}: final evaluation {run['final_eval']:.1f}, last.ckpt tested "
              f"{run['last_ckpt_test_return']:.1f}, env steps {run['env_steps']}, wall {run['wall_s']} s "
              f"({run['gradient_steps_per_s']} gradient steps/s)", flush=True)
    return runs


def summarize(runs: list[dict[str, Any]], overrides: list[str]) -> dict[str, Any]:
    finals = [r["final_eval"] for r in runs]
    median = float(np.median(finals))
    met = (median >= TARGET["median"] and min(finals) >= TARGET["every_seed"]
           and all(r["env_steps"] <= TARGET["env_steps"] for r in runs))
    return {
        "config": CONFIG,
        "env_id": config_args(CONFIG)["env_id"],
        "overrides": overrides,
        "eval_episodes": config_args(CONFIG)["eval_episodes"],  # unless an override changed it
        "env_step_budget": TARGET["env_steps"],
        "target": (f"median final greedy return of {len(runs)} seeds >= {TARGET['median']:g} within "
                   f"{TARGET['env_steps']:,} env steps, every seed >= {TARGET['every_seed']:g}"),
        "anchors": ANCHORS,
        "final_evals": finals,
        "median_final_eval": median,
        "min_final_eval": min(finals),
        "met": met,
        "last_ckpt_test_returns": [r["last_ckpt_test_return"] for r in runs],
        "median_last_ckpt_test_return": float(np.median([r["last_ckpt_test_return"] for r in runs])),
        "wall_s": [r["wall_s"] for r in runs],
        "median_wall_s": float(np.median([r["wall_s"] for r in runs])),
        "gradient_steps_per_s": [r["gradient_steps_per_s"] for r in runs],
        "runs": runs,
    }


# ------------------------------------------------------------------------------------------ speed
class Clock(Callback):
    """The wall time of training, from its first batch (after the warm-up) to its end."""

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        self.seconds = time.perf_counter() - self.start


def rlgen_seconds(steps: int, overrides: list[str], config: str = CONFIG) -> float:
    """Wall time of ``steps`` gradient steps of ``rlgen fit`` on the config (no evaluation, no checkpoints),
    after its warm-up."""
    from rlgen.cli import run
    from rlgen.lightning_modules.sac import SAC

    optimizer_steps = steps * SAC.OPTIMIZER_STEPS_PER_GRADIENT_STEP  # what max_steps counts
    with tempfile.TemporaryDirectory() as runs:
        cli = run(["fit", "-c", str(REPO / config), *overrides, f"--trainer.max_steps={optimizer_steps}",
                   f"--trainer.default_root_dir={runs}", "--trainer.logger=false", "--trainer.callbacks=[]",
                   "--trainer.callbacks+=bench.sac.Clock", "--trainer.enable_checkpointing=false",
                   "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
                   "--trainer.limit_val_batches=0"])
    assert cli.trainer.global_step == optimizer_steps
    return next(c for c in cli.trainer.callbacks if type(c).__name__ == "Clock").seconds  # bench.sac.Clock


def plain_seconds(steps: int, config: str = CONFIG, seed: int = 0) -> float:
    """Wall time of ``steps`` iterations of a plain PyTorch SAC loop on the config's env (CleanRL's shape: act,
    step the env, store, sample a batch, update critics, actor, temperature and targets), after a 1,000-step
    warm-up, with the config's networks, learning rates, batch size and rlgen's loss functions."""
    from rlgen.lightning_modules.dqn import polyak_update
    from rlgen.lightning_modules.sac import actor_loss, critic_loss, soft_q_target, temperature_loss
    from rlgen.nets.sac import QCritics, SquashedGaussianActor

    hp = config_args(config)
    torch.manual_seed(seed)
    env = gym.make(hp["env_id"])
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    low, high = env.action_space.low, env.action_space.high  # actions in [-1, 1] are rescaled onto them
    actor = SquashedGaussianActor(**init_args(hp["actor"])).build((obs_dim,), act_dim)
    critic = QCritics(**init_args(hp["critic"])).build((obs_dim,), act_dim)
    target = copy.deepcopy(critic).requires_grad_(False)
    log_alpha = torch.nn.Parameter(torch.zeros(()))
    opt_q = torch.optim.Adam(critic.parameters(), lr=hp["critic_lr"], fused=True)
    opt_pi = torch.optim.Adam([{"params": actor.parameters(), "lr": hp["actor_lr"]},
                               {"params": [log_alpha], "lr": hp["alpha_lr"]}], fused=True)  # as rlgen's SAC
    size = steps + 1_000
    buf_obs, buf_next = np.zeros((size, obs_dim), np.float32), np.zeros((size, obs_dim), np.float32)
    buf_act = np.zeros((size, act_dim), np.float32)
    buf_rew, buf_disc = np.zeros(size, np.float32), np.zeros(size, np.float32)
    rng = np.random.default_rng(seed)
    obs, _ = env.reset(seed=seed)
    start = 0.0
    for t in range(size):
        if t == 1_000:
            start = time.perf_counter()
        if t < 1_000:
            action = rng.uniform(-1, 1, act_dim).astype(np.float32)
        else:
            with torch.no_grad():
                action = actor(torch.as_tensor(obs).unsqueeze(0)).sample()[0].numpy()
        next_obs, reward, terminated, truncated, _ = env.step(low + (action + 1.0) * 0.5 * (high - low))
        buf_obs[t], buf_act[t], buf_rew[t], buf_next[t] = obs, action, reward, next_obs
        buf_disc[t] = hp["gamma"] * (1.0 - terminated)
        obs = env.reset()[0] if terminated or truncated else next_obs
        if t < 1_000:
            continue
        i = rng.integers(t + 1, size=hp["batch_size"])
        s, a, r, s2, d = (torch.from_numpy(x[i]) for x in (buf_obs, buf_act, buf_rew, buf_next, buf_disc))
        alpha = log_alpha.detach().exp()
        with torch.no_grad():
            next_pi = actor(s2)
            a2 = next_pi.sample()
            y = soft_q_target(r, d, target(s2, a2), next_pi.log_prob(a2), alpha)
        loss_q = critic_loss(critic(s, a), y)
        opt_q.zero_grad(set_to_none=True)
        loss_q.backward()
        opt_q.step()
        critic.requires_grad_(False)
        a_new, log_prob = actor(s).rsample_with_log_prob()
        loss_pi = actor_loss(critic(s, a_new), log_prob, alpha)
        loss_alpha = temperature_loss(log_alpha, log_prob, -float(act_dim))
        opt_pi.zero_grad(set_to_none=True)
        (loss_pi + loss_alpha).backward()
        opt_pi.step()
        critic.requires_grad_(True)
        polyak_update(target, critic, hp["tau"])
    return time.perf_counter() - start


SPEED_PAIRS = 15  # pairs of the speed check: checks of one code (9, 12 pairs) differed by more than the margin


def speed(steps: int, overrides: list[str], config: str = CONFIG, pairs: int = SPEED_PAIRS) -> dict[str, Any]:
    """``steps`` gradient steps of rlgen's SAC on ``config`` against the plain loop, ``pairs`` times alternating:
    the ratio of the medians, and each pair's ratio (their spread is the check's own noise). Within a pair, the
    side that runs first alternates (rlgen first in pairs 0, 2, ...), so that neither is the one a drift of the
    machine's speed during a pair reaches first."""
    rlgen_s, plain_s = [], []
    for pair in range(pairs):  # alternating, so that a change in the machine's speed reaches both
        for side in (("rlgen", "plain") if pair % 2 == 0 else ("plain", "rlgen")):
            if side == "rlgen":
                rlgen_s.append(rlgen_seconds(steps, overrides, config))
            else:
                plain_s.append(plain_seconds(steps, config))
        print(f"speed: rlgen {rlgen_s[-1]:.1f} s, plain {plain_s[-1]:.1f} s for {steps} gradient steps", flush=True)
    ratio = float(np.median(rlgen_s) / np.median(plain_s))  # the check's figure, held against the target
    pair_ratios = [r / p for r, p in zip(rlgen_s, plain_s, strict=True)]  # beside it: its noise
    return {"gradient_steps": steps, "threads": torch.get_num_threads(), "rlgen_s": rlgen_s, "plain_s": plain_s,
            "order": "alternating: rlgen first in even pairs, the plain loop first in odd ones",
            "rlgen_ms_per_gradient_step": 1000 * float(np.median(rlgen_s)) / steps,
            "plain_ms_per_gradient_step": 1000 * float(np.median(plain_s)) / steps,
            "ratio_rlgen_over_plain": ratio, "pair_ratios": pair_ratios,
            "median_pair_ratio": float(np.median(pair_ratios)), "target_ratio": 1.15}


def speed_entries(earlier: list[dict[str, Any]], check: dict[str, Any] | None) -> dict[str, Any]:
    """A results file's speed entries: a new ``check`` named by this machine, with the ``earlier`` files' checks kept
    beside it (``earlier_speed_checks``, oldest first); without one (None), the newest earlier file's as they were."""
    if check is None:
        newest = next((part for part in reversed(earlier) if "speed" in part), {})
        return {key: newest[key] for key in ("speed", "earlier_speed_checks") if key in newest}
    kept = [old for part in earlier for old in [*part.get("earlier_speed_checks", []), *(
        [part["speed"]] if "speed" in part else [])]]
    return {"speed": {**check, "machine": machine()}, **({"earlier_speed_checks": kept} if kept else {})}


def plot(summary: dict[str, Any], path: Path) -> None:
    """Greedy evaluations against env steps: every seed, the median and the min-max band, target and anchor."""
    fig, ax = plt.subplots(figsize=(7, 4))
    curves = [(np.array([p[0] for p in r["evaluations"]]), np.array([p[2] for p in r["evaluations"]]))
              for r in summary["runs"]]
    plot_spread(ax, curves, np.linspace(0, summary["env_step_budget"], 101), "greedy eval return")
    ax.axhline(TARGET["median"], color="tab:green", linestyle="--", linewidth=1,
               label=f"target median {TARGET['median']:g}")
    for label, value in summary["anchors"].items():
        ax.axhline(value, color="gray", linestyle=":", linewidth=1, label=label)
    ax.set(xlabel="environment steps", ylabel=f"mean return ({summary['eval_episodes']} greedy episodes)",
           title=f"SAC {summary['env_id']}, {len(summary['runs'])} seeds, median final "
                 f"{summary['median_final_eval']:.1f}, min {summary['min_final_eval']:.1f}")
    ax.title.set_fontsize(9)
    ax.legend(loc="lower right", fontsize=7)
    save_figure(fig, path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = seeds_parser(__doc__)
    parser.add_argument("--speed-steps", type=int, default=2_000,
                        help="gradient steps of the speed check against a plain PyTorch loop (0: skip it)")
    parser.add_argument("--conditions", default=None, help="what else ran on the machine, stored in the JSON")
    parser.add_argument("--runs-from", type=Path, default=None, metavar="JSON",
                        help="an earlier sac_pendulum.json whose scored seeds are kept, not trained again (to measure "
                             "the speed check anew: the earlier check is kept as earlier_speed_checks)")
    args, overrides = parser.parse_known_args(argv)
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.seeds, args.speed_steps, overrides = 1, min(args.speed_steps, 20), [*SMOKE, *overrides]
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    partial = out / f"{NAME}.partial.tmp"
    earlier = json.loads(args.runs_from.read_text()) if args.runs_from else None
    if earlier is not None and overrides:
        parser.error(f"--runs-from keeps the seeds as they were trained (overrides {earlier['overrides']}); "
                     f"give no overrides, got {overrides}")
    overrides = earlier["overrides"] if earlier is not None else overrides
    runs = earlier["runs"] if earlier is not None else bench_seeds(args.seeds, overrides, partial)
    summary = summarize(runs, overrides)
    conditions = [earlier.get("conditions") if earlier else None, args.conditions]  # how the seeds ran, then this
    summary.update(threads=args.threads, smoke=args.smoke,
                   conditions="; ".join(c for c in conditions if c) or None)
    if earlier is not None:
        summary["machine"] = earlier.get("machine")  # the seeds' (null: not recorded), not this one's
        if "exported" in earlier:
            summary["exported"] = earlier["exported"]  # the shipped agent is one of these seeds
    check = (speed(args.speed_steps, [o for o in overrides if o not in SMOKE], pairs=2 if args.smoke else SPEED_PAIRS)
             if args.speed_steps else None)
    summary.update(speed_entries([earlier] if earlier is not None else [], check))
    write_results(out, NAME, summary)
    plot(summary, out / f"{NAME}.png")
    partial.unlink(missing_ok=True)
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=1))  # after the figure
    return summary


if __name__ == "__main__":
    main()
