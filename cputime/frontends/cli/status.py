"""Exit statuses of the ``cputime`` command."""

from __future__ import annotations

import enum


class ExitStatus(enum.IntEnum):
    """Exit statuses of the ``cputime`` command."""

    OK = 0
    ERROR = 1  # an unexpected failure (a bug, traceback printed), or a missing optional package
    BAD_INPUT = 2  # bad input or options: one line on stderr says what and where
    ALERT = 3  # ``monitor``: coverage fell below the threshold
