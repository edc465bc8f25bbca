"""Replay memory for Atari: bytes per transition of ``ReplayBuffer`` against one 84x84 frame (7,056 B).

    python -m bench.replay_memory                            # real Breakout frames, ~1 minute
    python -m bench.replay_memory --smoke --out-dir /tmp/x   # seconds

1. Storage per slot of a ``(4, 84, 84)`` uint8 buffer (``nbytes / capacity``) and the size of a
   1,000,000-transition buffer extrapolated from it. Target (issue 6): <= 1.05 x 7,056 bytes per
   transition, i.e. a 1M buffer within 7.5 GB.
2. A real fill: random play of ``--game`` through ``make_vector_env`` (life loss as terminal, so
   episodes are short and their extra end-of-episode slots show), into a buffer smaller than the
   number of steps (so it wraps). Reports bytes per *held* transition, checks that every sampled
   ``(obs, next_obs)`` pair is one the environment really produced (stacks rebuilt from single frames,
   never across episodes), and times ``add`` and ``sample(32)``, also for ``PrioritizedReplayBuffer``.
Writes ``<out-dir>/replay_memory.json`` and ``<out-dir>/replay_memory.png``.
"""

from __future__ import annotations

import time
from collections import defaultdict
from pathlib import Path

import numpy as np

from bench._common import bench_parser, plt, save_figure, write_results
from rlgen.envs import EnvOptions, make_vector_env
from rlgen.experience import PrioritizedReplayBuffer, ReplayBuffer

FRAME = 84 * 84
TARGET = 1.05 * FRAME


def storage_per_slot(capacity: int) -> float:
    return ReplayBuffer(capacity, (4, 84, 84), np.uint8, frame_stack=4).nbytes / capacity


def real_fill(game: str, num_envs: int, vector_steps: int, capacity: int, samples: int) -> dict:
    """Fill a buffer from random play, verify sampled stacks against the env's, time add and sample."""
    envs = make_vector_env(game, num_envs, EnvOptions(terminal_on_life_loss=True), seed=0)
    buffer = ReplayBuffer(capacity, (4, 84, 84), np.uint8, num_envs=num_envs, frame_stack=4, seed=0)
    prioritized = PrioritizedReplayBuffer(
        capacity, (4, 84, 84), obs_dtype=np.uint8, num_envs=num_envs, frame_stack=4, seed=0
    )
    truth: dict[int, set[int]] = defaultdict(set)  # hash(obs stack) -> hashes of the next_obs seen after it
    obs, _ = envs.reset()
    valid = np.ones(num_envs, bool)
    add_s, per_add_s, env_s, episode_ends = [], [], [], 0
    for _ in range(vector_steps):
        actions = envs.action_space.sample()
        t0 = time.perf_counter()
        next_obs, rewards, terminated, truncated, _ = envs.step(actions)
        t1 = time.perf_counter()
        buffer.add(obs, actions, rewards, next_obs, terminated, truncated, valid=valid)
        t2 = time.perf_counter()
        prioritized.add(obs, actions, rewards, next_obs, terminated, truncated, valid=valid)
        add_s.append(t2 - t1)
        per_add_s.append(time.perf_counter() - t2)
        env_s.append(t1 - t0)
        for e in np.flatnonzero(valid):
            truth[hash(obs[e].tobytes())].add(hash(next_obs[e].tobytes()))
        episode_ends += int(((terminated | truncated) & valid).sum())
        valid = ~(terminated | truncated)
        obs = next_obs
    envs.close()

    sample_s, matches = [], 0
    for _ in range(max(1, samples // 32)):
        t0 = time.perf_counter()
        batch = buffer.sample(32)
        sample_s.append(time.perf_counter() - t0)
        for o, n in zip(batch.obs.numpy(), batch.next_obs.numpy(), strict=True):
            matches += hash(n.tobytes()) in truth.get(hash(o.tobytes()), ())
    checked = 32 * len(sample_s)
    per_sample_s, per_update_s, rng = [], [], np.random.default_rng(0)
    for _ in range(max(1, samples // 32)):
        t0 = time.perf_counter()
        batch = prioritized.sample(32)
        t1 = time.perf_counter()
        prioritized.update_priorities(batch.indices, rng.normal(size=32))
        per_sample_s.append(t1 - t0)
        per_update_s.append(time.perf_counter() - t1)
    return {
        "game": game,
        "num_envs": num_envs,
        "transitions_added": int(sum(len(v) for v in truth.values())),
        "episode_ends": episode_ends,
        "capacity": capacity,
        "held_transitions": len(buffer),
        "bytes_per_held_transition": buffer.nbytes / len(buffer),
        "sampled_pairs_checked": checked,
        "sampled_pairs_matching_env": matches,
        "add_us_median": 1e6 * float(np.median(add_s)) / num_envs,
        "sample32_us_median": 1e6 * float(np.median(sample_s)),
        "env_step_us_median": 1e6 * float(np.median(env_s)) / num_envs,
        "prioritized": {
            "bytes_per_slot": prioritized.nbytes / (num_envs * prioritized.slots),
            "add_us_median": 1e6 * float(np.median(per_add_s)) / num_envs,
            "sample32_us_median": 1e6 * float(np.median(per_sample_s)),
            "update_priorities32_us_median": 1e6 * float(np.median(per_update_s)),
        },
    }


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__, threads=False)
    parser.add_argument("--capacity", type=int, default=100_000, help="slots of the sized (unfilled) buffer")
    parser.add_argument("--game", default="ALE/Breakout-v5", help="Atari id for the real fill")
    parser.add_argument("--num-envs", type=int, default=2)
    parser.add_argument("--steps", type=int, default=10_000, help="vector steps of random play")
    parser.add_argument("--fill-capacity", type=int, default=8_000, help="capacity of the filled buffer")
    parser.add_argument("--samples", type=int, default=8192, help="sampled transitions checked against the env")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (seconds)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.capacity, args.steps, args.fill_capacity, args.samples = 2_000, 150, 200, 256
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)

    per_slot = storage_per_slot(args.capacity)
    fill = real_fill(args.game, args.num_envs, args.steps, args.fill_capacity, args.samples)
    per_held = fill["bytes_per_held_transition"]
    summary = {
        "frame_bytes": FRAME,
        "target_bytes_per_transition": TARGET,
        "bytes_per_slot": per_slot,
        "ratio_to_frame": per_slot / FRAME,
        "gb_for_1m_slots": per_slot * 1e6 / 1e9,
        "gb_for_1m_held_transitions": per_held * 1e6 / 1e9,
        "naive_bytes_per_transition": {"obs_and_next_obs_stacks": 2 * 4 * FRAME, "obs_stack_only": 4 * FRAME},
        "meets_target": per_slot <= TARGET and per_held <= TARGET,
        "fill": fill,
        "smoke": args.smoke,
    }
    write_results(out, "replay_memory", summary)
    print(
        f"bytes per slot {per_slot:.0f} ({per_slot / FRAME:.4f} x 7,056), per held transition {per_held:.0f} "
        f"({fill['game']}, {fill['episode_ends']} episode ends in {fill['transitions_added']} transitions); "
        f"1M buffer {summary['gb_for_1m_slots']:.2f} GB (target <= {TARGET * 1e6 / 1e9:.2f} GB)"
    )
    print(
        f"sampled pairs matching the env: {fill['sampled_pairs_matching_env']}/{fill['sampled_pairs_checked']}; "
        f"add {fill['add_us_median']:.1f} us/transition, sample(32) {fill['sample32_us_median']:.0f} us, "
        f"env step {fill['env_step_us_median']:.0f} us"
    )
    per = fill["prioritized"]
    print(
        f"prioritized: {per['bytes_per_slot']:.0f} bytes per slot, add {per['add_us_median']:.1f} us/transition, "
        f"sample(32) {per['sample32_us_median']:.0f} us, "
        f"update_priorities(32) {per['update_priorities32_us_median']:.0f} us"
    )

    fig, ax = plt.subplots(figsize=(7, 4))
    labels = ["obs + next_obs\nstacks (naive)", "obs stack\nonly", "ReplayBuffer\nper slot", "ReplayBuffer\nper held"]
    values = [2 * 4 * FRAME, 4 * FRAME, per_slot, per_held]
    bars = ax.bar(labels, values, color=["tab:gray", "tab:gray", "tab:blue", "tab:blue"])
    ax.bar_label(bars, fmt="%.0f")
    ax.axhline(TARGET, color="tab:red", linestyle="--", label=f"target 1.05 x 7,056 = {TARGET:.0f} B")
    ax.set_yscale("log")
    ax.set_ylabel("bytes per Atari transition")
    ax.set_title(f"Replay memory, (4, 84, 84) uint8; real fill: {fill['game']}")
    ax.legend()
    save_figure(fig, out / "replay_memory.png")
    return summary


if __name__ == "__main__":
    main()
