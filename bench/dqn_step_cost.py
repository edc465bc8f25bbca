"""The cost of one DQN gradient step on Atari frames, by network, thread count and memory layout.

    python -m bench.dqn_step_cost                     # both CNNs x 1 and 2 threads x both layouts x noise
    python -m bench.dqn_step_cost --smoke --out-dir /tmp/x

Times the step that dominates DQN on pixels: Q(s, a) of a batch of 4x84x84 uint8 stacks through
``rlgen.nets.rl.QNetwork`` with a dueling head (``cnn: nature``, 512 units, or ``cnn: nips``, 256 units),
without and with NoisyNet layers (``noisy_std`` 0 and the Atari recipe's 0.5), the Double DQN target (online
and target forward passes on s'), the Huber loss, backward and a fused Adam step: ``DQN._td_loss`` and the
optimizer step. The settings run side by side: each of ``--repeats`` rounds times a block of ``--steps`` steps
of every setting in turn, so a busy moment of the machine hits them all. Reports each setting's median block
in milliseconds and its ratio to the Nature CNN without noise in channels-last layout at the same thread
count, and writes ``<out-dir>/dqn_step_cost.json``. It sizes the Pong config: gradient steps x ms is most of a
run's wall time.

Against the FLOP limit: each setting's step is counted once by ``torch.utils.flop_counter.FlopCounterMode``
(the convolutions and matrix products of the forward and backward passes; Adam and the elementwise work are
left out), and each thread count's limit is measured as the best rate of a 2048 x 2048 float32 matrix product
(``torch.mm``, the best case of this CPU's BLAS). Reported per setting: GFLOP a step, the GFLOP/s reached and
their fraction of that limit.
"""

from __future__ import annotations

import copy
import itertools
import time
import timeit
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

from bench._common import bench_parser, write_results
from rlgen.lightning_modules.dqn import td_target
from rlgen.nets.rl import QNetwork

FEATURES = {"nature": 512, "nips": 256}  # the papers' widths of the last hidden layer


def gradient_step(cnn: str, channels_last: bool, batch: int, noisy_std: float = 0.0) -> Callable[[], None]:
    """A closure taking one DQN gradient step with its own network, optimizer and random frames."""
    torch.manual_seed(0)
    net = QNetwork(dueling=True, cnn=cnn, cnn_features=FEATURES[cnn], channels_last=channels_last,
                   noisy_std=noisy_std)
    net.build((4, 84, 84), 6)
    target = copy.deepcopy(net).requires_grad_(False)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4, eps=1.5e-4, fused=True)
    obs = torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8)
    next_obs = torch.randint(0, 256, (batch, 4, 84, 84), dtype=torch.uint8)
    actions, rewards, discounts = torch.randint(0, 6, (batch,)), torch.zeros(batch), torch.full((batch,), 0.97)

    def one_step() -> None:
        q = net(obs).gather(1, actions.view(-1, 1)).squeeze(1)
        with torch.no_grad():
            y = td_target(rewards, discounts, target(next_obs), net(next_obs))
        loss = F.smooth_l1_loss(q, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return one_step


def step_gflop(step: Callable[[], None]) -> float:
    """GFLOP of one call of ``step``: its convolutions and matrix products, forward and backward."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        step()
    return counter.get_total_flops() / 1e9


def matmul_gflops(threads: int, n: int = 2048, repeats: int = 5) -> float:
    """The FLOP limit at ``threads``: the best GFLOP/s of an ``n x n`` float32 matrix product over ``repeats``."""
    torch.set_num_threads(threads)
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.mm(a, b)  # warm-up
    best = min(timeit.repeat(lambda: torch.mm(a, b), number=1, repeat=repeats))
    return 2 * n**3 / best / 1e9


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__, threads=False)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="intra-op thread counts")
    parser.add_argument("--cnn", nargs="+", default=["nature", "nips"], choices=sorted(FEATURES), help="networks")
    parser.add_argument("--batch", type=int, default=32, help="minibatch size")
    parser.add_argument("--noisy-std", type=float, nargs="+", default=[0.0, 0.5],
                        help="QNetwork noisy_std: 0 (no noise) and the Atari recipe's NoisyNet layers")
    parser.add_argument("--steps", type=int, default=10, help="gradient steps per timed block")
    parser.add_argument("--repeats", type=int, default=8, help="rounds of blocks (median reported)")
    parser.add_argument("--smoke", action="store_true", help="1 thread, 2 steps, 1 round (seconds)")
    args = parser.parse_args(argv)
    if args.smoke:
        args.threads, args.steps, args.repeats = [1], 2, 1
    settings = list(itertools.product(args.threads, args.cnn, ("contiguous", "channels_last"), args.noisy_std))
    steps = {}
    for threads, cnn, layout, noisy in settings:
        torch.set_num_threads(threads)
        steps[threads, cnn, layout, noisy] = step = gradient_step(cnn, layout == "channels_last", args.batch, noisy)
        for _ in range(3):  # warm-up: oneDNN picks its kernels
            step()
    gflop = {key: step_gflop(steps[key]) for key in settings}
    limits = {threads: matmul_gflops(threads, n=256 if args.smoke else 2048) for threads in args.threads}
    times: dict[tuple, list[float]] = {key: [] for key in settings}
    for _ in range(args.repeats):
        for key in settings:
            torch.set_num_threads(key[0])
            start = time.perf_counter()
            for _ in range(args.steps):
                steps[key]()
            times[key].append((time.perf_counter() - start) / args.steps * 1000)
    results = []
    for key in settings:
        threads, cnn, layout, noisy = key
        block_ms = times[key]
        median = float(np.median(block_ms))
        base = times.get((threads, "nature", "channels_last", 0.0))
        ratio = median / float(np.median(base)) if base else None
        reached = gflop[key] / (median / 1000)  # GFLOP/s
        results.append({"threads": threads, "cnn": cnn, "layout": layout, "noisy_std": noisy, "ms_median": median,
                        "ratio_to_nature_channels_last": ratio, "gflop_per_step": gflop[key],
                        "gflops": reached, "fraction_of_matmul_limit": reached / limits[threads],
                        "ms": [round(t, 2) for t in block_ms]})
        print(f"{threads} thread(s), {cnn} CNN, {layout}, noisy_std {noisy:g}: {median:.1f} ms a gradient step"
              + (f" ({ratio:.2f}x the Nature CNN without noise in channels-last)" if ratio else "")
              + f", {gflop[key]:.2f} GFLOP: {reached:.0f} GFLOP/s, "
                f"{reached / limits[threads]:.0%} of the {limits[threads]:.0f} GFLOP/s matmul limit", flush=True)
    summary = {"batch": args.batch, "network": "QNetwork with a dueling head, Double DQN target, fused Adam",
               "features": FEATURES, "torch": torch.__version__,
               "matmul_limit_gflops": {str(t): g for t, g in limits.items()},  # by thread count
               "cpu_capability": torch.backends.cpu.get_cpu_capability(), "smoke": args.smoke, "results": results}
    write_results(args.out_dir, "dqn_step_cost", summary)
    return summary


if __name__ == "__main__":
    main()
