"""What every benchmark shares: the repository root, the results folder, the common options, and figures."""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import platform
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from rlgen.cli.listing import read_config

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "bench" / "results"
DATA_DIR = REPO.parent / "shared" / "data"  # this project's machines have MNIST there (no internet)


def bench_parser(doc: str, threads: bool = True, data: bool = False) -> argparse.ArgumentParser:
    """An argument parser described by the first line of ``doc``, with ``--out-dir`` (where the JSON and PNG
    go), unless ``threads`` is False ``--threads`` (torch intra-op threads, 1 by default: the fastest on 2
    shared cores), and with ``data`` ``--data-dir`` (the folder holding MNIST/raw)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out-dir", default=str(RESULTS), help="where the JSON and PNG go")
    if threads:
        parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    if data:
        parser.add_argument("--data-dir", default=str(DATA_DIR), help="folder holding MNIST/raw")
    return parser


def config_args(config: str, section: str = "model") -> dict[str, Any]:
    """The arguments ``rlgen fit -c <config>`` gives the ``section`` (``model`` or ``data``) class: the
    config's ``init_args`` over the class's own defaults. Benchmarks read shared settings here instead of
    copying them, so that a config change reaches its benchmark."""
    return init_args(read_config(REPO / config)[section])


def init_args(spec: dict[str, Any]) -> dict[str, Any]:
    """``{class_path, init_args}`` as the arguments its class receives: ``init_args`` over the defaults.
    Nested specs (a model's networks) stay as they are; pass them here too to read them."""
    module, _, name = spec["class_path"].rpartition(".")
    parameters = inspect.signature(getattr(importlib.import_module(module), name)).parameters.values()
    defaults = {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}
    return {**defaults, **spec.get("init_args", {})}


def shown_path(path: str | Path) -> str:
    """``path`` as a results file records it: relative to the repository when inside it, else its last three
    parts (``v5/dqn_pong/version_0``), so that no machine's absolute paths are committed."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(REPO))
    except ValueError:
        return str(Path(*resolved.parts[-3:]))


def machine() -> dict[str, Any]:
    """The machine a benchmark runs on: its CPU model, the widest vector instructions torch uses on it (``AVX512``,
    ``AVX2``, ...), its cores and torch's version. Timings from machines that differ here are not comparable: SAC
    Hopper's runs on a 2-core AMD EPYC with AVX2 took far longer than on the AVX512 machine of its first record
    (``sac_hopper.json``), which two sessions had taken for a slow day."""
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        models = [line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")]
        cpu = models[0] if models else cpu
    except OSError:  # not Linux
        pass
    return {"cpu": cpu, "isa": torch.backends.cpu.get_cpu_capability(), "cores": os.cpu_count(),
            "torch": torch.__version__}


def common_machine(runs: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The ``machine`` every one of ``runs`` names, or None where they name different ones or some none."""
    machines = [run.get("machine") for run in runs]
    return machines[0] if machines and None not in machines and all(m == machines[0] for m in machines) else None


def save_figure(fig: Any, path: Path) -> None:
    """Write ``fig`` to ``path`` (PNG) and close it."""
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_results(out: Path, name: str, summary: dict[str, Any], echo: bool = False,
                  omit: tuple[str, ...] = (), timed: bool = True) -> Path:
    """Write ``summary`` to ``<out>/<name>.json`` (creating ``out``); ``echo`` also prints it without the
    ``omit`` keys (long curves). Returns the file's path.

    The file's ``probes`` (settings tried beside the record, added by hand: no benchmark writes them) carry
    over into the new file unless ``summary`` has its own, so that re-running a record keeps them. Unless
    ``summary`` names its ``machine`` (a join names its runs' common one, or null), a file ``timed`` here records
    this one (:func:`machine`), added to ``summary`` itself so that what a benchmark returns is what its file
    holds; an agent exported into an old record times nothing and passes ``timed=False``."""
    out = Path(out)
    if timed:
        summary.setdefault("machine", machine())
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{name}.json"
    if path.exists() and "probes" not in summary:
        try:
            probes = json.loads(path.read_text()).get("probes")
        except (ValueError, AttributeError):  # not a results file: nothing of it to keep
            probes = None
        if probes:
            summary = {**summary, "probes": probes}
    path.write_text(json.dumps(summary, indent=1))
    if echo:
        print(json.dumps({k: v for k, v in summary.items() if k not in omit}, indent=1))
    return path
