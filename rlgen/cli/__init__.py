"""rlgen's command line: what it adds to LightningCLI, one concern a file.

``rlgen fit|validate|test|predict -c <config>`` is LightningCLI (``LightningCLI(subclass_mode_model=True)``
with rlgen's modules registered by short name); around it:

* ``console.py``: the ``rlgen`` console script and ``python -m rlgen``; answers ``rlgen list`` and
  ``rlgen --version`` without importing torch or Lightning.
* ``listing.py``: ``rlgen list`` (every config with the expected result and wall time of its header) and
  the version line.
* ``app.py``: :class:`RlgenCLI`, the LightningCLI subclass: default callbacks (progress, ``last.ckpt``,
  FaultGuard), atomic checkpoint writes, ``--threads``, ``--compile``, ``--trust_checkpoint``, W&B's config
  at init, the closing summary; and :func:`run`, which turns a user's mistake into one line.
* ``config.py``: reading and adjusting the parsed config before anything is built (run names, default
  logger, ``--ckpt_path last``, evaluation runs logging beside their checkpoint, trainer option ranges,
  what the model class asks of the trainer through :class:`rlgen.lightning_modules.base.RlgenModule`).
* ``checks.py``: checks of a ``--ckpt_path`` (model class, plain hyperparameters, mismatched weights).
* ``user_errors.py``: an exception as the one line ``rlgen: error: ...``, or None for a bug.
* ``summary.py``: the closing summary of each command (run directory, checkpoints, final metrics, next command).
* ``quiet.py``: known-harmless third-party notices, silenced during a run.

``from rlgen.cli import run, cli_main, RlgenCLI`` import the LightningCLI part on first use, so that the
console script can answer ``list`` and ``--version`` without it.
"""

from __future__ import annotations

from typing import Any

# name -> (module, attribute); cli_main is the console script's main, for running the whole command line in-process
_LAZY = {"run": ("rlgen.cli.app", "run"), "RlgenCLI": ("rlgen.cli.app", "RlgenCLI"),
         "cli_main": ("rlgen.cli.console", "main")}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        module, attribute = _LAZY[name]
        return getattr(importlib.import_module(module), attribute)
    raise AttributeError(f"module 'rlgen.cli' has no attribute {name!r}")


__all__ = ["RlgenCLI", "cli_main", "run"]
