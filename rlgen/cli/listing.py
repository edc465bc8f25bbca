"""``rlgen list``: every algorithm's configs, with the expected result and wall time their headers state.

The ``# Expected`` and ``# Wall time`` paragraphs of each config's header comment (a line and its indented
continuation lines) are printed as they are written there. For benchmarked configs the Expected paragraph
is generated from the results file (``python -m bench.tables --write``), where the measured number lives.
"""

from __future__ import annotations

import os
import textwrap
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import yaml

OVERLAY_DIRS = ("trainer", "logger")  # composed with a second -c, not run on their own


def configs_dir() -> Path:
    """The repository's ``configs/`` folder (next to the ``rlgen`` package)."""
    return Path(__file__).resolve().parents[2] / "configs"


def paragraph_span(lines: list[str], label: str) -> tuple[int, int] | None:
    """Where the header paragraph ``# <label>`` is: its line and the continuation lines below it (indented
    ``#   ``, not a command), as ``(start, end)`` indices, or None if there is none."""
    start = next((i for i, line in enumerate(lines) if line.startswith(f"# {label}")), None)
    if start is None:
        return None
    end = start + 1
    while end < len(lines) and lines[end].startswith("#   ") and not lines[end][4:].lstrip().startswith(
            ("rlgen ", "python ")):
        end += 1
    return start, end


def header_paragraph(lines: list[str], label: str) -> str:
    """The header paragraph that starts with ``# <label>``, joined into one line ('' if there is none)."""
    span = paragraph_span(lines, label)
    if span is None:
        return ""
    first, *more = lines[span[0]:span[1]]
    return " ".join([first[2 + len(label):].lstrip(" :"), *(line[1:].strip() for line in more)])


def read_config(path: Path | str) -> dict[str, Any]:
    """A config file's settings as nested dicts, read the way jsonargparse applies them, for code that needs a
    config before parsing it (the run's name, ``rlgen list``, the benchmarks): the file its ``config:`` key
    names (relative to it) underneath, then the file's own keys, dotted ones (``model.init_args.env_id: X``,
    how a thin config such as ``configs/dqn/breakout.yaml`` changes one setting of its recipe) as nested."""
    path = Path(path)
    loaded = yaml.safe_load(path.read_text()) or {}
    if not isinstance(loaded, dict):
        return loaded
    settings = read_config(path.parent / loaded.pop("config")) if isinstance(loaded.get("config"), str) else {}
    for key, value in loaded.items():
        *parents, last = str(key).split(".")
        node = settings
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = _merged(node.get(last), value)
    return settings


def _merged(base: Any, value: Any) -> Any:
    if not (isinstance(base, dict) and isinstance(value, dict)):
        return value
    return {**base, **{k: _merged(base.get(k), v) for k, v in value.items()}}


def list_configs(root: Path | None = None) -> str:
    """The text ``rlgen list`` prints."""
    root = root or configs_dir()
    if not root.is_dir():
        return f"rlgen: no configs folder at {root}; the configs ship with the repository (git clone it)"
    shown = _shown_path(root)
    out = [f"Configs in {shown}: train one with `rlgen fit -c <config>`; add --help for its options.", ""]
    overlays = []
    for path in sorted(root.glob("*/*.yaml")):
        name = f"{shown}/{path.parent.name}/{path.name}"
        if path.parent.name in OVERLAY_DIRS:
            overlays.append(name)
            continue
        text = path.read_text()
        lines = text.splitlines()
        model = read_config(path).get("model") or {}
        algo = str(model.get("class_path", "?")).rsplit(".", 1)[-1] if isinstance(model, dict) else "?"
        out.append(f"{name}  ({algo})")
        for label, key in (("expected", "Expected"), ("wall time", "Wall time")):
            text = header_paragraph(lines, key) or "not stated"
            out.append(textwrap.fill(text, 110, initial_indent=f"    {label + ':':<11}",
                                     subsequent_indent=" " * 15))
    if overlays:
        out += ["", "Overlays, composed with a second -c (`... -c configs/logger/wandb.yaml`):",
                *(f"    {o}" for o in overlays)]
    return "\n".join(out)


def _shown_path(root: Path) -> str:
    """``root`` relative to the working directory when it is below it, else absolute."""
    try:
        return os.path.relpath(root) if root.resolve().is_relative_to(Path.cwd().resolve()) else str(root)
    except ValueError:
        return str(root)


def version_line() -> str:
    """``rlgen X (pytorch-lightning Y, torch Z)``, read from the installed packages' metadata."""
    from rlgen import __version__

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return f"rlgen {__version__} (pytorch-lightning {installed('pytorch-lightning')}, torch {installed('torch')})"
