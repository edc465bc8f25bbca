"""The ``rlgen`` console script and ``python -m rlgen``.

``rlgen list`` and ``rlgen --version`` only print text, so they are answered here without importing
torch or Lightning (whose imports take seconds); every other command goes to the LightningCLI of
:mod:`rlgen.cli.app`.
"""

from __future__ import annotations

import sys

from rlgen.cli.listing import list_configs, version_line


def main(args: list[str] | None = None) -> None:
    """Entry point of ``rlgen``.

    Args:
        args: command-line arguments; ``None`` reads ``sys.argv``.
    """
    argv = [str(a) for a in (sys.argv[1:] if args is None else args)]
    if argv[:1] == ["list"]:
        print(list_configs())
        return
    if argv == ["--version"]:
        print(version_line())
        raise SystemExit(0)  # as argparse's version action does
    from rlgen.cli.app import run

    run(argv)
