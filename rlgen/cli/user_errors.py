"""Turning an exception into the one line ``rlgen: error: ...`` a user can act on, or ``None`` for a bug.

:func:`user_error` is what ``rlgen.cli.run`` calls when a command fails: rlgen's own :class:`RlgenError`
(also when jsonargparse wraps it), jsonargparse's parse errors without their noise, contradictory Trainer
settings, checkpoints that do not fit the model, a full or read-only disk, and allocations the machine
cannot hold. Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import errno
import re

import torch
from jsonargparse import ArgumentError
from lightning_fabric.utilities.exceptions import MisconfigurationException

from rlgen.cli.checks import explain_state_dict_error
from rlgen.errors import RlgenError, gib, physical_memory


def out_of_memory(err: BaseException, cli_args: list[str]) -> str:
    """The one-line message for an allocation no machine (or not this one) holds: the allocator's words, the
    machine's memory, and the largest numbers given on the command line, the likely culprits."""
    what = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    what = re.sub(r"^\[enforce fail at [^]]*\]\s*", "", what)[:160]
    numbers = []
    for i, arg in enumerate(cli_args):
        name, _, value = arg.partition("=")
        if not value and i + 1 < len(cli_args):
            value = cli_args[i + 1]
        if name.startswith("--") and re.fullmatch(r"\d[\d_]*", value or ""):
            numbers.append((int(value.replace("_", "")), f"{name}={value}"))
    memory = physical_memory()
    has = f" (this machine has {gib(memory)})" if memory else ""
    culprits = ", ".join(text for _, text in sorted(numbers, reverse=True)[:2])
    hint = f"; the largest sizes given: {culprits}: make the one that is too large smaller" if culprits else (
        "; make the size options in the config (batch, buffer, layer sizes) smaller")
    return f"out of memory{has}: {what}{hint}"


def user_error(err: Exception, cli_args: list[str] = ()) -> tuple[str | None, int]:
    """The one-line message and exit status for an error a user can fix, or ``(None, 0)`` for a bug."""
    if isinstance(err, ArgumentError):
        return one_line_parse_error(str(err)), 2
    cause = err
    while cause is not None and not isinstance(cause, RlgenError):  # jsonargparse wraps errors of __init__
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        return str(cause), 1
    cause = err
    while cause is not None and not is_allocation_failure(cause):
        cause = cause.__cause__ or cause.__context__
    if cause is not None:
        return out_of_memory(cause, list(cli_args)), 1
    if isinstance(err, MisconfigurationException):  # contradictory trainer settings
        return one_line_parse_error(str(err)), 2
    if isinstance(err, RuntimeError) and (explained := explain_state_dict_error(err)) is not None:
        return str(explained), 1
    if isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EACCES, errno.EROFS):
        what = {errno.ENOSPC: "the disk is full", errno.EACCES: "permission denied",
                errno.EROFS: "read-only file system"}[err.errno]
        return f"cannot write {err.filename or 'a file'}: {what}; free space or choose another directory", 1
    return None, 0


def is_allocation_failure(err: BaseException) -> bool:
    """numpy's and Python's MemoryError, torch's OutOfMemoryError (GPU) and its CPU allocator's failure."""
    return isinstance(err, (MemoryError, torch.OutOfMemoryError)) or (
        isinstance(err, RuntimeError) and "can't allocate memory" in str(err))


_NOISE = re.compile(
    r"^(Does not validate against any of the Union subtypes|Subtypes: .*|Errors:|Given value type: .*)$"
)


def one_line_parse_error(text: str) -> str:
    lines = [ln.strip(" -") for ln in text.strip().splitlines()]
    kept = [ln for ln in lines if ln and not _NOISE.match(ln)]
    line = " ".join(kept)
    if any(hint in line for hint in ("does not accept option", "Parser key", "unrecognized arguments")):
        line += " (run `rlgen <subcommand> --help` for the accepted keys and types)"
    if 'expected "subcommand"' in line:
        line = line.rstrip(".") + "; e.g. `rlgen fit -c configs/dqn/cartpole.yaml` (`rlgen list` shows every config)"
    if re.search(r"required: \w+\.model\b", line):
        line += "; pass a config, e.g. `rlgen fit -c configs/dqn/cartpole.yaml` (`rlgen list` shows them all)"
    return line
