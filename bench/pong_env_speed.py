"""Pong emulation speed on this CPU: how many agent steps/s the environments give before any learning.

    python -m bench.pong_env_speed                       # 8 envs, 1 and 2 threads, 3 rounds
    python -m bench.pong_env_speed --smoke --out-dir /tmp/x

The ceiling of every Pong throughput target: agent steps/s of 8 Pong envs stepped with random
actions, (a) ale-py's own vector env with its defaults (``gym.make_vec("ALE/Pong-v5", 8)``), (b) rlgen's
DQN stack on it (``make_vector_env``: 84x84 grey, 4 stacked frames), (c) rlgen's Pong from pixel
differences (``pong_from_pixels``), (d) the same while the REINFORCE config's policy acts for all
envs with one forward pass, as in training, and (e) as (d) with torch on 1 thread (only where
``--threads`` is above 1). ``--threads`` sets both the emulators' threads and torch's.
The settings run side by side: each of ``--repeats`` rounds times every setting in turn, so a busy
moment hits them all; the medians go to ``<out-dir>/pong_env_speed.json``.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np
import torch

from bench._common import bench_parser, config_args, init_args, write_results
from rlgen.envs.make_env import make_vector_env
from rlgen.envs.options import EnvOptions
from rlgen.nets.rl import CategoricalPolicy

CONFIG = "configs/reinforce/pong.yaml"  # (d) and (e) act with this config's policy and action map
SETTINGS = ["ale-py make_vec", "rlgen DQN stack", "rlgen Pong pixels", "rlgen Pong pixels + policy",
            "rlgen Pong pixels + policy on 1 torch thread"]


def make_envs(setting: str, num_envs: int, threads: int) -> gym.vector.VectorEnv:
    if setting == "ale-py make_vec":
        import ale_py

        gym.register_envs(ale_py)
        return gym.make_vec("ALE/Pong-v5", num_envs, num_threads=threads)
    if setting == "rlgen DQN stack":
        return make_vector_env("ALE/Pong-v5", num_envs, EnvOptions(frame_stack=4), seed=0, num_threads=threads)
    return make_vector_env("ALE/Pong-v5", num_envs, EnvOptions(pong_from_pixels=True), seed=0, num_threads=threads)


def actor(setting: str, envs: gym.vector.VectorEnv) -> Callable[[np.ndarray], np.ndarray]:
    """Random actions, or (settings d, e) actions of the REINFORCE config's (untrained) policy."""
    rng = np.random.default_rng(0)
    if "+ policy" not in setting:
        return lambda obs: rng.integers(envs.single_action_space.n, size=len(obs))
    model = config_args(CONFIG)
    policy = CategoricalPolicy(**init_args(model["policy"])).build(envs.single_observation_space.shape,
                                                                   len(model["action_map"]))
    action_map = torch.as_tensor(model["action_map"])

    @torch.no_grad()
    def act(obs: np.ndarray) -> np.ndarray:
        logits, _ = policy(torch.as_tensor(obs))
        return action_map[torch.distributions.Categorical(logits=logits).sample()].numpy()

    return act


def steps_per_s(setting: str, num_envs: int, threads: int, steps: int) -> float:
    torch.set_num_threads(1 if setting.endswith("1 torch thread") else threads)
    envs = make_envs(setting, num_envs, threads)
    act = actor(setting, envs)
    obs, _ = envs.reset(seed=0)
    for _ in range(20):  # warm-up
        obs, *_ = envs.step(act(obs))
    start = time.perf_counter()
    for _ in range(steps):
        obs, *_ = envs.step(act(obs))
    rate = steps * num_envs / (time.perf_counter() - start)
    envs.close()
    return rate


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__, threads=False)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="thread counts")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=500, help="vector steps per timing")
    parser.add_argument("--repeats", type=int, default=3, help="rounds (median reported)")
    parser.add_argument("--smoke", action="store_true", help="2 envs, 1 thread, 20 steps, 1 round (seconds)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.num_envs, args.threads, args.steps, args.repeats = 2, [1], 20, 1
    runs = [(t, s) for t, s in itertools.product(args.threads, SETTINGS) if t > 1 or s != SETTINGS[-1]]
    rates: dict[str, list[float]] = {f"{s}, {t} thread(s)": [] for t, s in runs}
    for round_ in range(args.repeats):
        for threads, setting in runs:
            rate = steps_per_s(setting, args.num_envs, threads, args.steps)
            rates[f"{setting}, {threads} thread(s)"].append(round(rate, 1))
            print(f"round {round_}: {setting}, {threads} thread(s): {rate:.0f} agent steps/s", flush=True)
    summary = {
        "num_envs": args.num_envs, "vector_steps_per_timing": args.steps, "repeats": args.repeats,
        "smoke": args.smoke, "date": time.strftime("%Y-%m-%d"),
        "median_agent_steps_per_s": {name: statistics.median(r) for name, r in rates.items()}, "runs": rates,
    }
    write_results(args.out_dir, "pong_env_speed", summary, echo=True, omit=("runs",))
    return summary


if __name__ == "__main__":
    main()
