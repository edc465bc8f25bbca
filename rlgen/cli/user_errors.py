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
        return nested_argument_error(err) or one_line_parse_error(str(err)), 2
    if (wandb := wandb_error(err)) is not None:
        return wandb, 1
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


_WANDB_ERRORS = ("UsageError", "AuthenticationError", "CommError")


def wandb_error(err: BaseException) -> str | None:
    """W&B could not start the run: no API key (``wandb login`` never run), a refused key, or the server out of
    reach. The run directory and its checkpoints stay; the message says how to log in or to log offline."""
    cause: BaseException | None = err
    while cause is not None:
        if type(cause).__module__.startswith("wandb") and type(cause).__name__ in _WANDB_ERRORS:
            what = str(cause).strip().splitlines()[0][:200] if str(cause).strip() else type(cause).__name__
            return (f"Weights & Biases could not start the run ({what}); run `wandb login` (or set WANDB_API_KEY), "
                    "or log locally with WANDB_MODE=offline and upload later with `wandb sync`")
        cause = cause.__cause__ or cause.__context__
    return None


_PARSER_KEY = re.compile(r'Parser key "([^"]+)":')
_EXPECTED = re.compile(r"^Expected a <class '(\w+)'>\. Got value: (.*)$")


def nested_argument_error(err: BaseException) -> str | None:
    """jsonargparse's error inside a nested class argument (a network's ``init_args``), which it reports as a chain
    of ``Parser key ... Problem with given class_path ...`` and a union's alternatives, as one line: the full key,
    what it expects and the value given. None for other errors."""
    text = str(err)
    keys = _PARSER_KEY.findall(text)
    if "Problem with given class_path" not in text or len(keys) < 2:
        return None
    key = keys[0] + "".join(f".init_args.{k}" for k in keys[1:])
    innermost = err
    while innermost.__cause__ is not None:  # jsonargparse chains each level's error to the one below
        innermost = innermost.__cause__
    detail = str(innermost).strip().splitlines()[0] if str(innermost).strip() else type(innermost).__name__
    if (expected := _EXPECTED.match(detail)) is not None:
        kind = expected.group(1)
        return (f"{key} expects {'an' if kind[0] in 'aeiou' else 'a'} {kind}, got {expected.group(2)!r} "
                "(run `rlgen <subcommand> --help` for the accepted keys and types)")
    if (unknown := re.match(r"^Option '([^']+)' is not accepted", detail)) is not None:
        owner = re.findall(r"Problem with given class_path '([^']+)'", text)[-1].rsplit(".", 1)[-1]
        return (f"{key}.init_args.{unknown.group(1)}: {owner} has no option {unknown.group(1)!r} "
                "(run `rlgen <subcommand> --help` for the accepted keys and types)")
    return f"{key}: {detail} (run `rlgen <subcommand> --help` for the accepted keys and types)"


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
