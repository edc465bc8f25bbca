"""The ``rlgen`` console script and ``python -m rlgen``.

``rlgen list`` and ``rlgen --version`` only print text, so they are answered here without importing
torch or Lightning (whose imports take seconds); every other command goes to the LightningCLI of
:mod:`rlgen.cli`.
"""

from __future__ import annotations

import sys
from importlib.metadata import PackageNotFoundError, version


def version_line() -> str:
    """``rlgen X (pytorch-lightning Y, torch Z)``, read from the installed packages' metadata."""
    from rlgen import __version__

    def installed(name: str) -> str:
        try:
            return version(name)
        except PackageNotFoundError:
            return "not installed"

    return f"rlgen {__version__} (pytorch-lightning {installed('pytorch-lightning')}, torch {installed('torch')})"


def main(args: list[str] | None = None) -> None:
    """Entry point of ``rlgen``.

    Args:
        args: command-line arguments; ``None`` reads ``sys.argv``.
    """
    argv = [str(a) for a in (sys.argv[1:] if args is None else args)]
    if argv[:1] == ["list"]:
        from rlgen.listing import list_configs

        print(list_configs())
        return
    if argv == ["--version"]:
        print(version_line())
        raise SystemExit(0)  # as argparse's version action does
    from rlgen.cli import run

    run(argv)
