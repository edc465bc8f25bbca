"""DDP scaling on the CPU: VAE training samples per second with 1 and with 2 processes (gloo).

    python -m bench.scaling --data-dir ../shared/data            # full: 300 steps per process count
    python -m bench.scaling --smoke --data-dir <tiny MNIST>      # seconds

Each process runs with one intra-op thread, so 2 processes use the 2 cores of the machine; the
throughput counts the samples of all processes between step 20 (after warm-up) and the last step.
Every rank also reports a digest of its parameters before and after training: the benchmark stops
with an error when the ranks of a DDP run end with different parameters or training changed none.
On a GPU machine, pass --accelerator gpu to compare 1 and N GPUs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from pytorch_lightning import Callback

from bench._common import REPO, bench_parser, write_results


def parameters_digest(module) -> str:
    """SHA-256 of every parameter's bytes: equal digests, identical parameters."""
    digest = hashlib.sha256()
    for p in module.parameters():
        digest.update(p.detach().cpu().numpy().tobytes())
    return digest.hexdigest()


class Throughput(Callback):
    """Writes samples/s of this rank (from step ``start`` to the end) and the digests of its parameters before
    and after training to ``<out>/rank<r>.json``."""

    def __init__(self, out: str = "throughput", start: int = 20) -> None:
        self.out, self.start, self.t0, self.samples = Path(out), start, None, 0

    def on_train_start(self, trainer, pl_module):
        self.digest_start = parameters_digest(pl_module)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.start:
            self.t0 = time.perf_counter()
        if self.t0 is not None:
            self.samples += len(batch[0])

    def on_train_end(self, trainer, pl_module):
        self.out.mkdir(parents=True, exist_ok=True)
        rate = self.samples / (time.perf_counter() - self.t0)
        report = {"samples_per_s": rate, "digest_start": self.digest_start, "digest_end": parameters_digest(pl_module)}
        (self.out / f"rank{trainer.global_rank}.json").write_text(json.dumps(report))


def checked_rate(devices: int, reports: list[dict]) -> tuple[float, int]:
    """Total samples/s of the ranks' reports and how many reported; stops when the ranks ended with different
    parameters (DDP did not keep them in sync) or training left them unchanged."""
    if len({r["digest_end"] for r in reports}) > 1:
        raise SystemExit(f"the {devices} DDP ranks ended with different parameters: gradients were not synchronized")
    if any(r["digest_end"] == r["digest_start"] for r in reports):
        raise SystemExit(f"training with {devices} process(es) left the parameters unchanged")
    return sum(r["samples_per_s"] for r in reports), len(reports)


def measure(devices: int, args: argparse.Namespace, work: Path) -> tuple[float, int]:
    """Total samples/s of one fit with ``devices`` processes, and how many ranks reported (checked_rate)."""
    out = work / f"d{devices}-{time.time_ns()}"
    cmd = [sys.executable, "-m", "rlgen", "fit", "-c", str(REPO / "configs" / "vae" / "mnist.yaml"),
           f"--data.data_dir={args.data_dir}", "--data.num_workers=0", f"--data.batch_size={args.batch_size}",
           f"--trainer.max_steps={args.steps}", "--trainer.limit_val_batches=0", "--trainer.num_sanity_val_steps=0",
           "--trainer.enable_progress_bar=false", "--trainer.callbacks=[]", "--trainer.logger=false",
           "--trainer.enable_checkpointing=false", f"--trainer.default_root_dir={work}",
           f"--trainer.accelerator={args.accelerator}", f"--trainer.devices={devices}",
           "--trainer.callbacks+=bench.scaling.Throughput", f"--trainer.callbacks.out={out}",
           f"--trainer.callbacks.start={min(20, args.steps // 2)}"]
    if devices > 1:
        cmd += ["--trainer.strategy=ddp"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, cwd=work, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"rlgen fit with {devices} process(es) failed:\n{proc.stderr[-3000:]}")
    return checked_rate(devices, [json.loads(p.read_text()) for p in out.glob("rank*.json")])


def main(argv: list[str] | None = None) -> dict:
    parser = bench_parser(__doc__, threads=False, data=True)  # each process runs 1 thread
    parser.add_argument("--steps", type=int, default=300, help="training steps per run (per process)")
    parser.add_argument("--batch-size", type=int, default=128, help="per-process batch size")
    parser.add_argument("--repeats", type=int, default=3, help="alternating runs per process count")
    parser.add_argument("--processes", type=int, default=2, help="the N of 1 vs N")
    parser.add_argument("--accelerator", default="cpu")
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args(argv)
    if args.smoke:
        args.steps, args.repeats, args.batch_size = 6, 1, 16
    args.data_dir = str(Path(args.data_dir).resolve())  # the runs start in a scratch directory
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rates: dict[int, list[float]] = {1: [], args.processes: []}
    ranks: dict[int, int] = {}
    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(args.repeats):  # alternate, so that load changes hit both sides alike
            for devices in rates:
                rate, ranks[devices] = measure(devices, args, Path(scratch))
                rates[devices].append(rate)
                if ranks[devices] != devices:
                    raise SystemExit(f"{devices} process(es) asked for, {ranks[devices]} trained and reported")
    one, many = (statistics.median(rates[d]) for d in rates)
    result = {
        "benchmark": "ddp_scaling_vae", "accelerator": args.accelerator, "steps": args.steps,
        "batch_size_per_process": args.batch_size, "repeats": args.repeats,
        "samples_per_s_1": one, f"samples_per_s_{args.processes}": many, "ratio": many / one,
        "runs": {str(k): v for k, v in rates.items()}, "ranks_reporting": {str(k): v for k, v in ranks.items()},
        "smoke": args.smoke,
        "date": time.strftime("%Y-%m-%d"),
    }
    print(f"VAE samples/s: 1 process {one:.0f}, {args.processes} processes {many:.0f} "
          f"(ratio {many / one:.2f}, median of {args.repeats})")
    write_results(out_dir, "scaling_smoke" if args.smoke else "scaling", result)
    return result


if __name__ == "__main__":
    main()
