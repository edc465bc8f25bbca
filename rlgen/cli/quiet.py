"""Known-harmless notices of third-party libraries, silenced for the duration of a run.

Applied by ``rlgen.cli.run`` around each command (not at import time, so importing rlgen changes
nothing for other programs). Every entry says why it is harmless. Two of them answer a choice DQN makes
on purpose (manual optimization, ``dataloader_iter``) and Lightning warns about on every run; any other
warning rlgen itself causes is fixed where it arises.
"""

from __future__ import annotations

import contextlib
import logging
import warnings
from collections.abc import Iterator

# (message regex, category, why it is harmless)
HARMLESS_WARNINGS = (
    (r".*isinstance\(treespec, LeafSpec\)", Warning,
     "Lightning's own use of a torch helper that torch deprecated; nothing a user can change"),
    (r"LightningCLI's args parameter is intended", UserWarning,
     "benchmarks and scripts call rlgen.cli.run(args) on purpose while their own sys.argv holds other options"),
    (r"Using ModelCheckpoint with manual optimization and every_n_train_steps", UserWarning,
     "DQN saves between phases, after their optimizer steps: the state a resumed run continues from"),
    (r".*`dataloader_iter`.*(experimental|step flavor)", UserWarning,
     "DQN takes `dataloader_iter` on purpose: a phase's env steps are collected right before its gradient steps"),
)
# Substrings of info messages of Lightning's loggers that advertise other products.
HARMLESS_LOG_MESSAGES = ("litlogger", "LitLogger")
LIGHTNING_LOGGERS = ("pytorch_lightning.utilities.rank_zero", "lightning_fabric.utilities.rank_zero")


class _DropMessages(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not any(text in message for text in HARMLESS_LOG_MESSAGES)


@contextlib.contextmanager
def quiet_third_party() -> Iterator[None]:
    """Silence the notices listed above while the block runs."""
    drop = _DropMessages()
    loggers = [logging.getLogger(name) for name in LIGHTNING_LOGGERS]
    for logger in loggers:
        logger.addFilter(drop)
    try:
        with warnings.catch_warnings():
            for message, category, _why in HARMLESS_WARNINGS:
                warnings.filterwarnings("ignore", message=message, category=category)
            yield
    finally:
        for logger in loggers:
            logger.removeFilter(drop)
