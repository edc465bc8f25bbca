"""Ship a trained agent: a checkpoint as a small weights-only file beside its results, tested as users play it.

    python -m bench.export_agent sac_hopper runs/sac_hopper_m0/sac_hopper/version_0/checkpoints/best-step=400000.ckpt \
        --what "the best-evaluated checkpoint of seed 0 (205,000 env steps)" --threads 2

Writes ``<out-dir>/<name>.ckpt`` (the weights, hyperparameters and the RL counters and normalization statistics;
no optimizer or loop state and no replay buffer: plain data, which ``rlgen test`` loads without trusting code),
plays it with ``rlgen test -c <the results' config> --ckpt_path <it>`` on ``--episodes`` whole greedy episodes,
and records both as the ``exported`` entry of ``<out-dir>/<name>.json``, whose other entries stay as they are.
Run it after the benchmark that wrote the JSON (the Atari DQN and REINFORCE Pong benchmarks export their own agent).
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from bench._common import bench_parser, shown_path, write_results
from bench._runs import export_weights, score


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = bench_parser(__doc__)
    parser.add_argument("name", help="the results file's name: <out-dir>/<name>.json (its `config` is played)")
    parser.add_argument("ckpt", help="the checkpoint to ship")
    parser.add_argument("--what", required=True, help="which agent this is, in words (seed, which checkpoint)")
    parser.add_argument("--episodes", type=int, default=10, help="whole greedy episodes the shipped file plays")
    args, overrides = parser.parse_known_args(argv)
    torch.set_num_threads(args.threads)
    out = Path(args.out_dir)
    results = out / f"{args.name}.json"
    if not results.is_file():
        raise SystemExit(f"no {results}: run the benchmark that writes it first, or give --out-dir")
    if not Path(args.ckpt).is_file():
        raise SystemExit(f"no checkpoint at {args.ckpt}")
    summary = json.loads(results.read_text())
    config = summary.get("config")
    if not config:
        raise SystemExit(f"{results} names no `config`: the agent is played with the config its benchmark ran")
    shipped = out / f"{args.name}.ckpt"
    size = export_weights(args.ckpt, shipped)
    played = score(config, str(shipped), args.episodes, overrides)
    summary["exported"] = {
        "path": shown_path(shipped), "bytes": size, "from": shown_path(args.ckpt), "what": args.what,
        "test": {k: played[k] for k in ("games", "returns", "mean", "min", "max")},
        "play": f"rlgen test -c {config} --ckpt_path {shown_path(shipped)}",
        "command": "python -m bench.export_agent " + shlex.join(argv if argv is not None else sys.argv[1:]),
    }
    write_results(out, args.name, summary, timed=False)  # its timings stay the record's
    print(json.dumps(summary["exported"], indent=1))
    return summary


if __name__ == "__main__":
    main()
