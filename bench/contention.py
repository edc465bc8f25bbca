"""The default job on a busy machine: ``rlgen fit -c configs/dqn/cartpole.yaml`` alone and beside one
competing busy process, with rlgen's thread default and with torch's (all cores).

    python -m bench.contention                    # 2 repeats of 4 runs (about 15 min on 2 cores)
    python -m bench.contention --smoke --out-dir /tmp/x --competitor idle   # the plumbing, no load

Each run is the README's first command as a subprocess (its own logs in a temporary folder), timed
from start to exit. The competitor is a Python process spinning on one core (``while True: pass``),
started before the run and killed after it. Settings alternate (quiet, busy, quiet, busy, ...) so a
drift of the machine hits all of them alike. Reports the median wall time of each (threads, load)
and the ratio busy / quiet, and writes ``<out-dir>/contention.json``. Target (issue 16): the default
run under one busy process takes at most 1.5x its quiet time. Run it on an otherwise idle machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from bench._common import REPO, bench_parser, write_results

CONFIG = "configs/dqn/cartpole.yaml"
TARGET = 1.5
SETTINGS = {"rlgen default": [], "torch default (all cores)": ["--threads={cores}"]}
# name: (the competing process's code, how the results describe it)
COMPETITORS = {"spin": ("while True: pass", "one Python process spinning on one core"),  # the benchmark's load
               "idle": ("import time\nwhile True: time.sleep(1)",  # started and killed the same way, no load
                        "an idle Python process (plumbing check, no load)")}


def timed_run(extra: list[str], busy: bool, smoke: bool, competitor_code: str = COMPETITORS["spin"][0]) -> float:
    """Seconds of one ``rlgen fit`` subprocess, with a competing process (``competitor_code``) if ``busy``."""
    env = {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}  # the model's default decides
    competitor = subprocess.Popen([sys.executable, "-c", competitor_code]) if busy else None
    try:
        with tempfile.TemporaryDirectory() as runs:
            tiny = ["--trainer.max_steps=2", "--model.warm_start_steps=64", "--trainer.val_check_interval=1",
                    "--model.eval_episodes=1"] if smoke else []
            command = [sys.executable, "-m", "rlgen", "fit", "-c", str(REPO / CONFIG),
                       f"--trainer.logger.init_args.save_dir={runs}", *tiny, *extra]
            start = time.perf_counter()
            subprocess.run(command, cwd=runs, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            return time.perf_counter() - start
    finally:
        if competitor is not None:
            competitor.kill()
            competitor.wait()


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__, threads=False)  # the runs choose their own threads
    parser.add_argument("--repeats", type=int, default=2, help="rounds of all four runs (median reported)")
    parser.add_argument("--smoke", action="store_true", help="one round of tiny runs (seconds)")
    parser.add_argument("--competitor", choices=sorted(COMPETITORS), default="spin",
                        help="the busy runs' competing process: spin (one busy core) or idle (tests the plumbing)")
    parser.add_argument("--settings", nargs="+", choices=sorted(SETTINGS), default=list(SETTINGS),
                        help="thread settings to time")
    args = parser.parse_args(argv)
    repeats = 1 if args.smoke else args.repeats
    cores = os.cpu_count() or 1
    times: dict[str, dict[str, list[float]]] = {name: {"quiet": [], "busy": []} for name in args.settings}
    for round_ in range(repeats):
        for name in args.settings:
            for load in ("quiet", "busy"):
                seconds = timed_run([e.format(cores=cores) for e in SETTINGS[name]], load == "busy", args.smoke,
                                    COMPETITORS[args.competitor][0])
                times[name][load].append(round(seconds, 1))
                print(f"round {round_}: {name}, {load}: {seconds:.1f} s", flush=True)
    settings = {}
    for name, by_load in times.items():
        quiet, busy = float(np.median(by_load["quiet"])), float(np.median(by_load["busy"]))
        settings[name] = {"quiet_s": by_load["quiet"], "busy_s": by_load["busy"], "median_quiet_s": quiet,
                          "median_busy_s": busy, "ratio_busy_over_quiet": busy / quiet}
    default_ratio = settings.get("rlgen default", {}).get("ratio_busy_over_quiet", float("nan"))
    summary = {
        "command": f"rlgen fit -c {CONFIG}",
        "competitor": COMPETITORS[args.competitor][1],
        "cores": cores,
        "repeats": repeats,
        "settings": settings,
        "target": f"rlgen default: busy / quiet <= {TARGET}",
        "met": default_ratio <= TARGET,
        "smoke": args.smoke,
    }
    write_results(args.out_dir, "contention", summary, echo=True)
    return summary


if __name__ == "__main__":
    main()
