"""Errors raised on bad user input.

Every message is one line that names where the problem is (file and line, or field), so that the
command line can print it as is and the service can return it in a 4xx body.
"""

from __future__ import annotations

__all__ = ["InputError", "located"]


class InputError(ValueError):
    """Bad input from a user: a file, a table row, a request field or an option value."""


def located(source: str, line: int | None, message: str) -> InputError:
    """Build an :class:`InputError` whose message starts with ``source:line:``.

    Parameters
    ----------
    source : str
        File name (or field name, or ``<upload>`` for a request body).
    line : int or None
        1-based line number; omitted from the message when None.
    message : str
        What is wrong and, where it helps, how to fix it. One line.
    """
    where = f"{source}:{line}" if line is not None else f"{source}"
    return InputError(f"{where}: {message}")
