"""DQN throughput, side by side: rlgen (LightningModule + experience source) against a plain
single-file PyTorch DQN loop with the same hyperparameters, on CartPole-v1 and on Pong (pixels).

    python -m bench.rl_throughput                            # CartPole and Pong, 3 repeats each
    python -m bench.rl_throughput --smoke --out-dir /tmp/x   # seconds

Both sides use the same network (``rlgen.nets.rl.QNetwork``, linear head), DQN loss (1-step targets,
no Double DQN, uniform replay), batch size, replay ratio, Adam, Huber loss, gradient clipping and
target-network period; the plain loop steps one env of the Python wrapper stack (``make_env``), has
its own minimal replay buffer (whole observations in numpy rings, as in CleanRL's loops) and no
framework. rlgen runs its configs (``num_envs`` envs through ``make_vector_env``: ale-py's C++
vector env for Pong); task ``pong_8envs`` gives rlgen 8 envs, acting for all of them with one forward
pass, at the plain loop's replay ratio (8 gradient steps per 32 env steps). rlgen's DQN uses
PyTorch's fused Adam kernel; the plain loop uses the default Adam, as CleanRL does, and is also run
with the fused kernel ("plain + fused Adam") to show what remains of Lightning's cost. Reported:
environment steps per second after the warm-up, training included (median over repeats, the three
run alternately), and the ratios rlgen / plain and rlgen / (plain + fused Adam). Writes
``<out-dir>/rl_throughput.json`` and ``<out-dir>/rl_throughput.png``.
Targets: rlgen >= plain on CartPole (issue 6); rlgen's best settings >= 1.5x the plain single-env
loop on Pong at equal replay ratio (issue 14, task ``pong_8envs``).
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch
import torch.nn.functional as F
from pytorch_lightning import Callback

from bench._common import REPO, bench_parser, config_args, init_args, plt, save_figure, write_results
from rlgen.cli import run
from rlgen.envs import EnvOptions, make_env
from rlgen.nets.rl import QNetwork


def config_task(config: str, **budget) -> dict:
    """A task with the DQN settings of ``config`` (read, not copied) that both sides share."""
    a = config_args(config)
    return dict(config=config, env_id=a["env_id"], env_options={}, hidden=list(init_args(a["q_net"])["hidden_sizes"]),
                batch_size=a["batch_size"], train_frequency=a["train_frequency"], gradient_steps=a["gradient_steps"],
                lr=a["lr"], target_every=a["target_update_interval"], buffer_size=a["buffer_size"],
                eps_end=a["eps_end"], gamma=a["gamma"], max_grad_norm=a["max_grad_norm"], **budget)


# Epsilon is held at its final value after the warm-up (the regime of most of training: the network
# acts at almost every step). CartPole runs its config's settings; Pong overrides its config's with a
# single-file loop's usual ones (one env, 1 gradient step per 4 env steps, a 20k buffer).
TASKS = {
    "cartpole": config_task("configs/dqn/cartpole.yaml", warm=1_000, steps=12_800),
    "pong": dict(config_task("configs/dqn/pong.yaml", warm=1_000, steps=2_000), env_options={"frame_stack": 4},
                 hidden=[], batch_size=32, train_frequency=4, gradient_steps=1, lr=1e-4, target_every=1_000,
                 buffer_size=20_000, eps_end=0.01),
}
# rlgen's best settings at the same replay ratio (1 gradient step per 4 env steps): 8 envs on ale-py's C++
# vector env, acting for all of them with one forward pass; the plain loop keeps its single env.
TASKS["pong_8envs"] = dict(TASKS["pong"], num_envs=8, train_frequency=32, gradient_steps=8, steps=4_000)


class ThroughputTimer(Callback):
    """Env steps and wall time between the start and the end of rlgen's training loop (after warm-up)."""

    def on_train_start(self, trainer, pl_module) -> None:
        self.start = (time.perf_counter(), pl_module.rollout.env_steps)

    def on_train_end(self, trainer, pl_module) -> None:
        self.steps = pl_module.rollout.env_steps - self.start[1]
        self.sps = self.steps / (time.perf_counter() - self.start[0])


def rlgen_sps(task: dict, seed: int = 0) -> tuple[float, int]:
    """Env steps/s of ``rlgen fit`` on the task's config with the benchmark's budget (no evaluation), and
    the env steps timed."""
    phases = task["steps"] // task["train_frequency"]
    with tempfile.TemporaryDirectory() as root:  # its config.yaml (no logger: no run directory)
        cli = run([
            "fit", "-c", str(REPO / task["config"]), f"--seed_everything={seed}", "--trainer.logger=false",
            "--trainer.enable_progress_bar=false", "--trainer.enable_model_summary=false",
            "--trainer.callbacks=[]", "--trainer.enable_checkpointing=false", "--trainer.limit_val_batches=0",
            f"--trainer.max_steps={phases * task['gradient_steps']}", f"--model.warm_start_steps={task['warm']}",
            f"--model.buffer_size={task['buffer_size']}", f"--model.batch_size={task['batch_size']}",
            f"--model.train_frequency={task['train_frequency']}", f"--model.gradient_steps={task['gradient_steps']}",
            f"--model.eps_end={task['eps_end']}", "--model.eps_decay_steps=1",
            f"--model.num_envs={task.get('num_envs', 1)}",
            # the plain loop's DQN: uniform replay, 1-step targets, no Double DQN, a linear head
            "--model.per_alpha=0", "--model.n_step=1", "--model.double_dqn=false",
            "--model.q_net.init_args.dueling=false",
            f"--model.lr={task['lr']}", f"--model.target_update_interval={task['target_every']}",
            "--trainer.callbacks+=bench.rl_throughput.ThroughputTimer", f"--trainer.default_root_dir={root}",
        ])
    # by name: run as a script, this module is __main__ and the CLI imported bench.rl_throughput
    timer = next(c for c in cli.trainer.callbacks if type(c).__name__ == "ThroughputTimer")
    return timer.sps, timer.steps


def plain_sps(task: dict, seed: int = 0, fused: bool = False) -> float:
    """Env steps/s of a plain PyTorch DQN loop (CleanRL style) with the same hyperparameters
    (``fused``: PyTorch's fused Adam kernel instead of the default one), on one env of the Python
    wrapper stack (``make_env``), as a single-file loop would build it."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    envs = gym.vector.SyncVectorEnv([make_env(task["env_id"], EnvOptions(**task["env_options"]), seed=seed)])
    obs_shape, n_actions = envs.single_observation_space.shape, int(envs.single_action_space.n)
    q_net = QNetwork(task["hidden"]).build(obs_shape, n_actions)
    target = QNetwork(task["hidden"]).build(obs_shape, n_actions)
    target.load_state_dict(q_net.state_dict())
    optimizer = torch.optim.Adam(q_net.parameters(), lr=task["lr"], fused=fused or None)
    cap = task["buffer_size"]
    dtype = envs.single_observation_space.dtype
    b_obs, b_next = np.zeros((cap, *obs_shape), dtype), np.zeros((cap, *obs_shape), dtype)
    b_act, b_rew, b_done = np.zeros(cap, np.int64), np.zeros(cap, np.float32), np.zeros(cap, np.float32)
    size = pos = grad_steps = 0
    obs, _ = envs.reset(seed=seed)
    autoreset = False
    total = task["warm"] + task["steps"]
    for step in range(total):
        if step == task["warm"]:
            start = time.perf_counter()
        if step < task["warm"] or rng.random() < task["eps_end"]:
            action = rng.integers(n_actions, size=1)
        else:
            with torch.no_grad():
                action = q_net(torch.as_tensor(obs)).argmax(1).numpy()
        next_obs, reward, terminated, truncated, _ = envs.step(action)
        if not autoreset:  # skip the autoreset transition
            b_obs[pos], b_next[pos], b_act[pos] = obs[0], next_obs[0], action[0]
            b_rew[pos], b_done[pos] = reward[0], terminated[0]
            pos, size = (pos + 1) % cap, min(size + 1, cap)
        autoreset = bool(terminated[0] or truncated[0])
        obs = next_obs
        if step >= task["warm"] and (step + 1 - task["warm"]) % task["train_frequency"] == 0:
            for _ in range(task["gradient_steps"]):
                idx = rng.integers(size, size=task["batch_size"])
                o, nx = torch.as_tensor(b_obs[idx]), torch.as_tensor(b_next[idx])
                with torch.no_grad():
                    next_v = target(nx).max(1).values
                    y = torch.as_tensor(b_rew[idx]) + task["gamma"] * (1 - torch.as_tensor(b_done[idx])) * next_v
                q = q_net(o).gather(1, torch.as_tensor(b_act[idx]).view(-1, 1)).squeeze(1)
                loss = F.smooth_l1_loss(q, y)
                optimizer.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(q_net.parameters(), task["max_grad_norm"])
                optimizer.step()
                grad_steps += 1
                if grad_steps % task["target_every"] == 0:
                    target.load_state_dict(q_net.state_dict())
    sps = task["steps"] / (time.perf_counter() - start)
    envs.close()
    return sps


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__)  # --threads: both sides
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS), help="what to measure")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per side")
    parser.add_argument("--smoke", action="store_true", help="CartPole, a few hundred steps, 1 repeat")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tasks = {name: dict(TASKS[name]) for name in (["cartpole"] if args.smoke else args.tasks)}
    if args.smoke:
        args.repeats = 1
        tasks["cartpole"].update(warm=200, steps=512, gradient_steps=8)

    results = {}
    for name, task in tasks.items():
        plain, fused, rlgen, rlgen_steps = [], [], [], []
        for i in range(args.repeats):
            plain.append(plain_sps(task, seed=i))
            fused.append(plain_sps(task, seed=i, fused=True))
            sps, steps = rlgen_sps(task, seed=i)
            rlgen.append(sps)
            rlgen_steps.append(steps)
            print(f"{name} repeat {i}: plain {plain[-1]:.0f} env steps/s, plain + fused Adam {fused[-1]:.0f}, "
                  f"rlgen {rlgen[-1]:.0f}", flush=True)
        results[name] = {
            "plain_sps": plain, "plain_fused_sps": fused, "rlgen_sps": rlgen,
            "plain_median": float(np.median(plain)), "plain_fused_median": float(np.median(fused)),
            "rlgen_median": float(np.median(rlgen)),
            "ratio_rlgen_over_plain": float(np.median(rlgen) / np.median(plain)),
            "ratio_rlgen_over_plain_fused": float(np.median(rlgen) / np.median(fused)),
            "env_steps_timed": task["steps"], "rlgen_env_steps_timed": rlgen_steps, "batch_size": task["batch_size"],
            "train_frequency": task["train_frequency"], "gradient_steps": task["gradient_steps"],
        }
    summary = {"threads": args.threads, "repeats": args.repeats, "smoke": args.smoke,
               "target": "rlgen / plain >= 1.0 on CartPole; >= 1.5 on pong_8envs", "tasks": results}
    write_results(out, "rl_throughput", summary)

    fig, axes = plt.subplots(1, len(results), figsize=(4 * len(results), 3.5), squeeze=False)
    for ax, (name, r) in zip(axes[0], results.items(), strict=True):
        ax.bar(["plain PyTorch", "plain +\nfused Adam", "rlgen"],
               [r["plain_median"], r["plain_fused_median"], r["rlgen_median"]], color=["gray", "silver", "tab:blue"])
        ax.set(title=f"DQN {name}: ratio {r['ratio_rlgen_over_plain']:.2f}", ylabel="env steps / s (median)")
    save_figure(fig, out / "rl_throughput.png")
    print(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
