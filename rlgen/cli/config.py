"""Reading and adjusting the parsed config before anything is built: the run's name and default logger,
``--ckpt_path last``, evaluation runs logging beside their checkpoint, Trainer option ranges, and what the
model class asks of the trainer (its :class:`~rlgen.lightning_modules.base.RlgenModule` declarations).

LightningCLI has no hook between parsing and instantiation for these; :class:`rlgen.cli.app.RlgenCLI` calls
them from ``parse_arguments`` and ``before_instantiate_classes``, editing only the parsed config.
"""

from __future__ import annotations

import importlib
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from jsonargparse import Namespace
from pytorch_lightning.callbacks import ModelCheckpoint
from pytorch_lightning.loggers import CSVLogger, Logger, TensorBoardLogger

from rlgen.cli.listing import read_config
from rlgen.errors import RlgenError, check_range
from rlgen.lightning_modules.base import declared

SUBCOMMANDS = ("fit", "validate", "test", "predict")

# Trainer options checked before anything is built: values Lightning lets through to a traceback or to a run
# that silently misbehaves (rule -> options; a value of another type, e.g. a time string, is Lightning's).
TRAINER_RANGES = {
    ">= -1": ("max_epochs", "max_steps", "num_sanity_val_steps"),
    ">= 0": ("min_epochs", "min_steps", "log_every_n_steps", "gradient_clip_val", "limit_train_batches",
             "limit_val_batches", "limit_test_batches", "limit_predict_batches", "overfit_batches",
             "reload_dataloaders_every_n_epochs"),
    ">= 1": ("check_val_every_n_epoch", "accumulate_grad_batches", "num_nodes"),
    "> 0": ("val_check_interval",),
}

def requested_subcommand(args: Any) -> str | None:
    """The subcommand that the command line ``args`` start with (``fit`` of ``fit -c ...``), or None
    (``--help``, a typo, arguments given as a dict)."""
    if not isinstance(args, (list, tuple)):
        return None
    first = next((str(a) for a in args if not str(a).startswith("-")), None)
    return first if first in SUBCOMMANDS else None

def run_name(args: list[str]) -> str:
    """``<algorithm>_<data>`` from the first config with a ``model`` (``configs/dqn/pong.yaml``: ``dqn_pong``),
    its file name alone outside such a folder, or ``rlgen`` without one."""
    models = model_configs(args)
    if not models:
        return "rlgen"
    path = models[0][0]
    folder = path.resolve().parent.name
    return f"{folder}_{path.stem}" if path.parent.name and folder != "configs" else path.stem

def model_configs(args: list[str]) -> list[tuple[Path, Any]]:
    """The ``-c`` files of a command line that set ``model``, with that entry, read before jsonargparse parses
    them (the run's name and the ``--help`` hint need them first); unreadable files are left to jsonargparse."""
    found = []
    for config in config_files(args):
        try:
            loaded = read_config(config)
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(loaded, dict) and "model" in loaded:
            found.append((Path(config), loaded["model"]))
    return found

def default_logger(args: list[str]) -> dict:
    """The logger of a config that names none: TensorBoard in ``runs/<run_name>/version_N``. A logger overlay
    (``-c configs/logger/wandb.yaml``) replaces the class and keeps the name. A class path and its arguments,
    as a config would write it (``lazy_instance`` walks the call stack: ~7% of a short fit in cProfile)."""
    return {"class_path": f"{TensorBoardLogger.__module__}.{TensorBoardLogger.__name__}",
            "init_args": {"save_dir": "runs", "name": run_name(args)}}

def config_entries(cfg: Namespace, key: str, base: type | tuple[type, ...]) -> list[Namespace]:
    """The entries of ``trainer.<key>`` (``logger`` or ``callbacks``: one entry or a list) whose class is ``base``
    or a subclass of it, resolved from ``class_path``. rlgen edits the parsed config before anything is built
    (LightningCLI has no hook between parsing and instantiation for this) only through these entries."""
    trainer = cfg.get("trainer") or Namespace()
    value = trainer.get(key)
    entries = []
    for entry in value if isinstance(value, list) else [value]:
        if not isinstance(entry, (dict, Namespace)) or not entry.get("class_path"):
            continue
        module, _, name = str(entry.get("class_path")).rpartition(".")
        try:
            cls = getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError, ValueError):
            continue  # jsonargparse reports it
        if isinstance(cls, type) and issubclass(cls, base):
            entries.append(entry)
    return entries

def best_checkpoint_globs(cfg: Namespace) -> list[str]:
    """Glob patterns of the files kept by the config's ModelCheckpoints that monitor a metric: each ``filename``
    template with its ``{...}`` fields as ``*`` (``best-{step}`` -> ``best-*``), or Lightning's default name
    (``epoch=*-step=*``)."""
    globs = []
    for entry in config_entries(cfg, "callbacks", ModelCheckpoint):
        init = entry.get("init_args") or {}
        if init.get("monitor"):
            filename = init.get("filename")
            globs.append(re.sub(r"\{[^}]*\}", "*", filename) if filename else "epoch=*-step=*")
    return globs

def follow_default_root_dir(cfg: Namespace) -> None:
    """The default logger writes under ``trainer.default_root_dir`` (``runs``), as Lightning's own does:
    ``--trainer.default_root_dir X`` moves its ``save_dir`` from ``runs`` to ``X``."""
    root = (cfg.get("trainer") or Namespace()).get("default_root_dir")
    for logger in config_entries(cfg, "logger", TensorBoardLogger):
        if logger.get("init_args") is not None and logger.init_args.get("save_dir") == "runs" and (
                root not in (None, "runs")):
            logger.init_args.save_dir = str(root)

def model_help_hint(args: list[str]) -> str:
    """After ``--help``: how to see the model's own options, which LightningCLI lists only on request."""
    subcommand = requested_subcommand(args) or "fit"
    configs = config_files(args)
    model = None
    for _, spec in model_configs(args):
        if isinstance(spec, dict) and spec.get("class_path"):
            model = str(spec["class_path"]).rsplit(".", 1)[-1]
    if model is None:
        return ("\nThe model's own options: rlgen fit -c <config> --model.help <class> (e.g. --model.help DQN); "
                "`rlgen list` shows the configs.")
    return (f"\nThe model's own options ({model}): rlgen {subcommand} {' '.join(f'-c {c}' for c in configs)} "
            f"--model.help {model}")

def config_files(args: list[str]) -> list[str]:
    """The ``-c`` / ``--config`` files of a command line, in order."""
    files = []
    for i, arg in enumerate(args):
        if arg in ("-c", "--config") and i + 1 < len(args):
            files.append(args[i + 1])
        elif arg.startswith("--config="):
            files.append(arg.split("=", 1)[1])
    return files

def log_beside_checkpoint(cfg: Namespace, ckpt: Path, subcommand: str) -> None:
    """An evaluation run (validate/test/predict) logs inside the run it evaluates,
    ``<run>/<subcommand>/version_N``, not as a new run beside the training runs. A checkpoint outside a
    run directory gets ``<save_dir>/<name>/<subcommand>/version_N``."""
    run_dir = ckpt.resolve().parent.parent if ckpt.resolve().parent.name == "checkpoints" else None
    for logger in config_entries(cfg, "logger", (TensorBoardLogger, CSVLogger)):
        init = logger.get("init_args")
        if init is None:
            continue
        if run_dir is not None:
            init["save_dir"], init["name"] = str(run_dir), subcommand
        else:
            init["name"] = f"{init.get('name') or 'lightning_logs'}/{subcommand}"
        init["version"] = None

def check_trainer_ranges(cfg: Namespace) -> None:
    """``trainer.<option> must be <rule>, got <value>`` for the first numeric Trainer option outside
    :data:`TRAINER_RANGES`."""
    trainer = cfg.get("trainer") or Namespace()
    for rule, names in TRAINER_RANGES.items():
        values = {n: trainer.get(n) for n in names}
        check_range(rule, "trainer", **{n: v for n, v in values.items()
                                         if isinstance(v, (int, float)) and not isinstance(v, bool)})

def adapt_to_model(cfg: Namespace) -> None:
    """What the model class asks of the trainer, settled before anything is built: the DDP strategy it
    needs for ``strategy: ddp`` (``ddp_strategy``), and no ModelCheckpoint that monitors a metric its
    arguments leave out (``unlogged_metrics``, e.g. a GAN without a classifier has no val/fid)."""
    model, trainer = cfg.get("model"), cfg.get("trainer")
    class_path = model.get("class_path") if isinstance(model, Namespace) else None
    if not class_path or trainer is None:
        return
    module, _, name = class_path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError, ValueError):
        return  # jsonargparse has reported it already
    strategy = declared(cls).ddp_strategy
    if strategy and trainer.get("strategy") == "ddp":
        trainer.strategy = strategy
        print(f"rlgen: {name} under DDP uses strategy {strategy}", file=sys.stderr)
    init_args = model.get("init_args") or Namespace()
    unlogged = declared(cls).unlogged_metrics(init_args.as_dict())
    for callback in config_entries(cfg, "callbacks", ModelCheckpoint):
        args = callback.get("init_args")
        if args is not None and args.get("monitor") in unlogged:
            print(f"rlgen: {name} logs no {args.monitor} with these arguments, so ModelCheckpoint keeps the "
                  "latest checkpoints instead of the best", file=sys.stderr)
            args.monitor, args.save_last = None, True  # the latest, last.ckpt included (no second writer)

def explicit_model_keys(args: list[str]) -> set[str]:
    """The model arguments named on the command line: ``--model.lr=1`` and ``--model.init_args.lr 1`` give ``lr``."""
    keys = set()
    for arg in args:
        if arg.startswith("--model."):
            parts = arg[len("--model."):].split("=", 1)[0].split(".")
            keys.add(parts[1] if parts[0] == "init_args" and len(parts) > 1 else parts[0])
    return keys

def log_roots(cfg: Namespace) -> list[Path]:
    """Directories the run logs into: ``<save_dir>/<name>`` of each configured logger, else default_root_dir."""
    root = Path((cfg.get("trainer") or Namespace()).get("default_root_dir") or "runs")
    roots = []
    for logger in config_entries(cfg, "logger", Logger):
        init = logger.get("init_args") or {}
        save_dir = init.get("save_dir") or init.get("root_dir") or str(root)
        name = init.get("name") or init.get("project") or ""
        roots.append(Path(save_dir) / str(name))
    return roots or [root]

def check_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as err:
        raise RlgenError(
            f"cannot write to the log directory {path} ({err.strerror}); pass a writable "
            "--trainer.default_root_dir or logger save_dir"
        ) from err
