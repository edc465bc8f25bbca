"""Checks on ``--ckpt_path``: find ``last``, and turn unreadable or mismatched checkpoints into one-line errors.

What a checkpoint restores, one rule for every family: each model saves all its ``__init__`` arguments as
hyperparameters, networks included (run from a config, a network is saved as its ``class_path`` and
``init_args``), except those in its class attribute ``RUN_TIME_ARGS``: output folders, evaluation
lengths, video recording, the classifier of the metrics, chosen afresh by each run. So
``rlgen test|predict -c <family config> --ckpt_path X`` rebuilds the model that X was trained with,
whatever its network sizes; an argument named on the command line still wins over the saved one.
A model built in Python from network objects saves them pickled: such a checkpoint loads with the model
class's ``load_from_checkpoint``, and the CLI refuses it in one line (``check_plain_hparams``).

Checkpoints are data, not code. Every checkpoint rlgen loads itself is read with ``torch.load(...,
weights_only=True)``: tensors, numbers, strings, and lists and dicts of them (what every rlgen checkpoint
holds: weights, optimizer and loop states, hyperparameters, RL counters, replay buffers, RNG states). A file
whose pickle names any other Python object (which unpickling would call, e.g. ``os.system``) is refused in
one line before anything in it runs (:func:`refuse_code`); ``--trust_checkpoint true`` loads it anyway, for
files from a source the user trusts.
"""

from __future__ import annotations

import os
import pickle
import re
from pathlib import Path

import torch
from lightning_fabric.plugins import TorchCheckpointIO

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


TRUST_HINT = ("if you trust its source, pass --trust_checkpoint true (in Python: "
              "<ModelClass>.load_from_checkpoint(path, weights_only=False))")


def read_checkpoint(path: str | Path, trust: bool = False) -> dict:
    """Load a checkpoint on the CPU as plain data, or raise a one-line error for a missing, truncated or foreign
    file, or for one that holds Python objects (unless ``trust``: then it is unpickled in full)."""
    path = Path(path)
    if not path.is_file():
        raise RlgenError(f"checkpoint not found: {path}; pass an existing .ckpt file or `last`")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=not trust)
    except pickle.UnpicklingError as err:
        raise refuse_code(path) from err
    except Exception as err:  # truncated zip, random bytes, pickle errors ...
        raise RlgenError(
            f"checkpoint {path} is corrupt or truncated ({type(err).__name__}: {_first_line(err)}); "
            "use another checkpoint (e.g. last.ckpt or an earlier epoch)"
        ) from err
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise RlgenError(f"{path} is not a Lightning checkpoint (no state_dict); pass a .ckpt written by rlgen")
    return ckpt


def refuse_code(path: str | Path, hint: str = TRUST_HINT) -> RlgenError:
    """The one-line refusal of a file that ``torch.load(weights_only=True)`` rejected: it names the Python
    objects its pickle would call (read from the pickle's opcodes, nothing is run) and the way to load it anyway."""
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except Exception:  # a legacy (non-zip) file: torch reads its globals only by unpickling
        names = []
    names = sorted(names, key=lambda name: (name.startswith("torch."), name))  # torch's own classes last
    what = f" ({', '.join(names[:4])}{', ...' if len(names) > 4 else ''})" if names else ""
    return RlgenError(
        f"checkpoint {path} holds Python objects{what} that would run code when loaded, so rlgen does not load it "
        f"(a checkpoint is data: tensors, numbers, strings); {hint}"
    )


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
    detail = "; ".join(parts) or _first_line(err)
    return RlgenError(
        f"the checkpoint does not fit this model: {detail}; use the config (layer sizes) it was trained with"
    )


def _first_line(err: BaseException) -> str:
    lines = str(err).strip().splitlines()
    return lines[0][:200] if lines else type(err).__name__


class AtomicCheckpointIO(TorchCheckpointIO):
    """Writes each checkpoint to a temporary file in the same directory, then renames it into place.

    A crash, ``kill -9`` or a full disk mid-write leaves the previous checkpoint intact (a rename within
    one directory is atomic; Lightning's default copies from /tmp when /tmp is another file system).
    A temporary file left by a killed process is removed by the next save. Remote paths (``s3://``...)
    go through Lightning's default.
    """

    def save_checkpoint(self, checkpoint: dict, path, storage_options=None) -> None:
        if "://" in str(path):
            return super().save_checkpoint(checkpoint, path, storage_options)
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
            for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a process killed mid-write
                stale.unlink(missing_ok=True)
        finally:
            tmp.unlink(missing_ok=True)
