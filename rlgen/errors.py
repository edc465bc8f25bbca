"""The one exception type rlgen raises for problems a user can fix.

The CLI prints its message as a single line (``rlgen: error: ...``) and exits with status 1;
set ``RLGEN_DEBUG=1`` to see the traceback instead.
"""


class RlgenError(Exception):
    """A bad input (config, data, environment, checkpoint) with a message that says what to fix."""
