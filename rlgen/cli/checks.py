"""Checks on ``--ckpt_path``: find ``last`` and ``best``, and turn mismatched checkpoints into one-line errors.

What a checkpoint restores, one rule for every family: each model saves all its ``__init__`` arguments as
hyperparameters, networks included (run from a config, a network is saved as its ``class_path`` and
``init_args``), except those in its class attribute ``RUN_TIME_ARGS``
(:class:`~rlgen.lightning_modules.base.RlgenModule`): output folders, evaluation lengths, video recording, the
classifier of the metrics, chosen afresh by each run. So ``rlgen test|predict -c <family config> --ckpt_path X``
rebuilds the model that X was trained with, whatever its network sizes; an argument named on the command line
still wins over the saved one, and a network argument newer than X takes its default, not the config's
(:func:`default_new_network_args`). The file itself is read as plain data by :func:`rlgen.checkpoints.read_checkpoint`.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from typing import Any

from rlgen.checkpoints import first_line
from rlgen.errors import RlgenError


def find_last_checkpoint(roots: list[Path]) -> Path:
    """The newest ``last*.ckpt`` below any of ``roots`` (each run writes into its own version directory)."""
    candidates = [p for root in roots if root.is_dir() for p in root.rglob("last*.ckpt")]
    if not candidates:
        where = ", ".join(str(r) for r in roots)
        raise RlgenError(
            f"--ckpt_path last: no last.ckpt found under {where}; train first with `rlgen fit` "
            "(same config and logger) or pass the path of a .ckpt file"
        )
    return max(candidates, key=lambda p: p.stat().st_mtime)

def find_best_checkpoint(roots: list[Path], globs: list[str]) -> Path:
    """The checkpoint that the config's metric-monitoring ModelCheckpoint kept (``globs``, from
    :func:`rlgen.cli.config.best_checkpoint_globs`) beside the newest ``last*.ckpt`` below ``roots``: the best
    agent or model of the newest run (the newest such file if it kept several)."""
    if not globs:
        raise RlgenError("--ckpt_path best: this config has no ModelCheckpoint that monitors a metric; use "
                         "--ckpt_path last or the path of a .ckpt file")
    folder = find_last_checkpoint(roots).parent
    found = [p for pattern in globs for p in folder.glob(f"{pattern}.ckpt")]
    if not found:
        raise RlgenError(f"--ckpt_path best: no {' or '.join(g + '.ckpt' for g in globs)} in {folder} (the "
                         "newest run's checkpoints: it evaluated nothing yet); use --ckpt_path last or a .ckpt path")
    return max(found, key=lambda p: p.stat().st_mtime)

def check_model_class(ckpt: dict, path: str | Path, config_class_path: str | None) -> None:
    """Refuse a checkpoint of another model class than the one the config builds."""
    saved = (ckpt.get("hyper_parameters") or {}).get("_class_path")
    if saved and config_class_path and saved.split(".")[-1] != config_class_path.split(".")[-1]:
        raise RlgenError(
            f"checkpoint {path} holds a {saved.split('.')[-1]} but the config builds a "
            f"{config_class_path.split('.')[-1]}; use the config the checkpoint was trained with"
        )

def check_plain_hparams(ckpt: dict, path: str | Path) -> None:
    """Refuse a checkpoint whose hyperparameters hold Python objects (networks passed to a model built in Python):
    LightningCLI reads hyperparameters with ``weights_only=True``, and a config cannot rebuild such objects."""
    objects = sorted(k for k, v in (ckpt.get("hyper_parameters") or {}).items() if not _plain(v))
    if objects:
        raise RlgenError(
            f"checkpoint {path} was saved from a model built in Python: its hyperparameters {', '.join(objects)} "
            "are Python objects, which a config cannot rebuild; load it in Python with "
            "<ModelClass>.load_from_checkpoint(path, weights_only=False), or train with `rlgen fit -c <config>`"
        )

def default_new_network_args(model: Any, saved: dict, explicit: set[str]) -> None:
    """Rebuild each saved network as the checkpoint knew it. A network argument added to rlgen after the checkpoint
    was written is missing from its saved ``init_args``, so LightningCLI's merge takes it from the config, which may
    turn the new option on (``noisy_std: 0.5``) and build a network the saved weights do not fit. Such arguments
    get the class's default, the behaviour of the code that wrote the checkpoint. ``model`` is the parsed model
    (``class_path`` and ``init_args``), edited in place; networks named in ``explicit`` (on the command line) are
    left as given."""
    init = model.get("init_args") if model is not None else None
    if init is None:
        return
    for key, net in (saved or {}).items():
        if key in explicit or not (isinstance(net, dict) and "class_path" in net):
            continue
        built = init.get(key)
        if built is None or not hasattr(built, "get") or built.get("class_path") != net["class_path"]:
            continue
        module, name = net["class_path"].rsplit(".", 1)
        params = inspect.signature(getattr(importlib.import_module(module), name)).parameters
        args = built.get("init_args")
        for arg in list(vars(args)) if args is not None else []:
            if arg not in (net.get("init_args") or {}) and arg in params and (
                    params[arg].default is not inspect.Parameter.empty):
                args[arg] = params[arg].default

def _plain(value: object) -> bool:
    """Data a config can hold: None, numbers, strings, and lists or string-keyed dicts of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    return isinstance(value, dict) and all(isinstance(k, str) and _plain(v) for k, v in value.items())

_KEYS = re.compile(r'"([^"]+)"')

def explain_state_dict_error(err: RuntimeError) -> RlgenError | None:
    """Summarize torch's multi-line ``Error(s) in loading state_dict`` as one line naming the keys that differ."""
    text = str(err)
    if "Error(s) in loading state_dict" not in text:
        return None
    parts = []
    for label, pattern in (("missing", "Missing key(s)"), ("unexpected", "Unexpected key(s)")):
        line = next((ln for ln in text.splitlines() if pattern in ln), "")
        keys = _KEYS.findall(line)
        if keys:
            parts.append(f"{label} keys {', '.join(keys[:4])}" + (f" (+{len(keys) - 4} more)" if len(keys) > 4 else ""))
    shapes = re.findall(r"size mismatch for ([^:]+): copying a param with shape torch\.Size\((\[[^\]]*\])\) "
                        r"from checkpoint, the shape in current model is torch\.Size\((\[[^\]]*\])\)", text)
    for key, saved, current in shapes[:4]:
        parts.append(f"{key} is {saved} in the checkpoint but {current} in the model")
    detail = "; ".join(parts) or first_line(err)
    return RlgenError(
        f"the checkpoint does not fit this model: {detail}; use the config (layer sizes) it was trained with"
    )
