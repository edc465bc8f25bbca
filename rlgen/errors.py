"""The one exception type rlgen raises for problems a user can fix.

The CLI prints its message as a single line (``rlgen: error: ...``) and exits with status 1;
set ``RLGEN_DEBUG=1`` to see the traceback instead.
"""

import os


class RlgenError(Exception):
    """A bad input (config, data, environment, checkpoint) with a message that says what to fix."""


# The ranges rlgen's numeric arguments take, written as the message shows them.
RANGES = {
    "> 0": lambda v: v > 0,
    ">= -1": lambda v: v >= -1,  # -1: no limit (Lightning's max_steps, max_epochs)
    ">= 0": lambda v: v >= 0,
    ">= 1": lambda v: v >= 1,
    ">= 2": lambda v: v >= 2,
    "in [0, 1]": lambda v: 0 <= v <= 1,
    "in (0, 1]": lambda v: 0 < v <= 1,
    "in [0, 1)": lambda v: 0 <= v < 1,
    "in (0, 1)": lambda v: 0 < v < 1,
}


def check_range(rule: str, /, owner: str = "model", **values: object) -> None:
    """Raise :class:`RlgenError` ``<owner>.<name> must be <rule>, got <value>`` for the first value outside
    ``rule`` (a key of :data:`RANGES`), e.g. ``check_range("> 0", lr=lr, batch_size=batch_size)``.

    The one check and message style for every numeric argument in rlgen. A list or tuple (layer widths,
    an image shape) is checked item by item. ``None`` passes: it means an option is off, and the
    signature's type says whether it may be None.

    Why not jsonargparse's constrained types (``PositiveFloat``, ...): they check only what the CLI
    parses (not a module built in Python or rebuilt from a checkpoint), and their values reach the
    saved hyperparameters as ``!!python/object/new:jsonargparse.typing.PositiveFloat`` YAML tags.
    """
    inside = RANGES[rule]
    for name, value in values.items():
        items = value if isinstance(value, (list, tuple)) else [value]  # layer widths, shapes: every item
        if not all(v is None or inside(v) for v in items):
            raise RlgenError(f"{owner}.{name} must be {rule}, got {value}")


def physical_memory() -> int | None:
    """This machine's memory (RAM) in bytes, or None where the operating system does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, OSError, ValueError):
        return None


def gib(nbytes: float) -> str:
    """``nbytes`` as the message shows it: ``7.3 GiB``, ``6,505.0 GiB``."""
    return f"{nbytes / 2**30:,.1f} GiB"
