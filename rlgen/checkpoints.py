"""Loading and writing checkpoints safely, for the CLI, the models and the benchmark scripts.

Checkpoints are data, not code. Every checkpoint rlgen loads itself is read with ``torch.load(...,
weights_only=True)``: tensors, numbers, strings, and lists and dicts of them (what every rlgen checkpoint
holds: weights, optimizer and loop states, hyperparameters, RL counters, replay buffers, RNG states). A file
whose pickle names any other Python object (which unpickling would call, e.g. ``os.system``) is refused in
one line before anything in it runs (:func:`refuse_code`); ``--trust_checkpoint true`` loads it anyway, for
files from a source the user trusts. Writes are atomic (:class:`AtomicCheckpointIO`).

What a checkpoint restores through the CLI (``RUN_TIME_ARGS``, networks as ``class_path`` and ``init_args``)
and the checks of a ``--ckpt_path`` are in :mod:`rlgen.cli.checks`.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import torch
from lightning_fabric.plugins import TorchCheckpointIO

from rlgen.errors import RlgenError

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
            f"checkpoint {path} is corrupt or truncated ({type(err).__name__}: {first_line(err)}); "
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


def first_line(err: BaseException) -> str:
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
