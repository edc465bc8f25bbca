"""The cost of one DQN gradient step on Atari frames, by thread count and memory layout.

    python bench/dqn_step_cost.py                     # 1 and 2 threads x default and channels-last
    python bench/dqn_step_cost.py --smoke --out-dir /tmp/x

Times the step that dominates DQN on pixels: Q(s, a) of a batch of 4x84x84 uint8 stacks through
the Nature CNN (``rlgen.nets.rl.QNetwork``, dueling head as in ``configs/dqn/pong.yaml``), the
Double DQN target (online and target forward passes on s'), the Huber loss, backward and a fused
Adam step: exactly ``DQN._td_loss`` and the optimizer step. Reports the median of ``--repeats``
blocks of ``--steps`` steps for each (threads, layout), in milliseconds, and writes
``<out-dir>/dqn_step_cost.json``. It sizes the Pong config's replay ratio: gradient steps x ms is
most of a run's wall time.
"""

from __future__ import annotations

import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/dqn_step_cost.py` works too
from bench._common import bench_parser  # noqa: E402
from rlgen.lightning_modules.dqn import td_target  # noqa: E402
from rlgen.nets.rl import QNetwork  # noqa: E402


def step_ms(threads: int, channels_last: bool, batch: int, steps: int, repeats: int) -> list[float]:
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    net = QNetwork(dueling=True).build((4, 84, 84), 6).to(memory_format=fmt)
    target = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, eps=1.5e-4, fused=True)
    obs = torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8).contiguous(memory_format=fmt)
    next_obs = torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8).contiguous(memory_format=fmt)
    actions, rewards, discounts = torch.randint(0, 6, (batch,)), torch.zeros(batch), torch.full((batch,), 0.97)

    def one_step() -> None:
        q = net(obs).gather(1, actions.view(-1, 1)).squeeze(1)
        with torch.no_grad():
            y = td_target(rewards, discounts, target(next_obs), net(next_obs))
        loss = F.smooth_l1_loss(q, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(max(2, steps // 4)):  # warm-up: oneDNN picks its kernels
        one_step()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(steps):
            one_step()
        times.append((time.perf_counter() - start) / steps * 1000)
    return times


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__, threads=False)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread counts")
    parser.add_argument("--batch", type=int, default=32, help="minibatch size")
    parser.add_argument("--steps", type=int, default=40, help="gradient steps per timed block")
    parser.add_argument("--repeats", type=int, default=5, help="timed blocks per setting (median reported)")
    parser.add_argument("--smoke", action="store_true", help="1 thread, 2 steps (seconds)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.threads, args.steps, args.repeats = [1], 2, 1
    results = []
    for threads in args.threads:
        for channels_last in (False, True):
            times = step_ms(threads, channels_last, args.batch, args.steps, args.repeats)
            results.append({"threads": threads, "layout": "channels_last" if channels_last else "contiguous",
                            "ms_median": float(np.median(times)), "ms": [round(t, 2) for t in times]})
            print(f"{threads} thread(s), {results[-1]['layout']}: {results[-1]['ms_median']:.1f} ms a gradient step",
                  flush=True)
    summary = {"batch": args.batch, "network": "Nature CNN + dueling head, Double DQN target, fused Adam",
               "torch": torch.__version__, "cpu_capability": torch.backends.cpu.get_cpu_capability(),
               "smoke": args.smoke, "results": results}
    out = Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "dqn_step_cost.json").write_text(json.dumps(summary, indent=1))
    return summary


if __name__ == "__main__":
    main()
