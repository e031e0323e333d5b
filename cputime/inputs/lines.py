"""Lines of an instance catalog as text: tokens, numbers, binary bytes, blank and comment lines.

The lexical rules shared by the header parser (:mod:`cputime.inputs.header`), the object-line
parser (:mod:`cputime.inputs.objects`) and the reader that ties them
(:mod:`cputime.inputs.catalog`). PhoSim splits a line at blanks and tabs; ``#`` starts a comment
line.
"""

from __future__ import annotations

import re

import numpy as np

__all__ = [
    "NUMBER",
    "NUMBER_RE",
    "BINARY_MESSAGE",
    "LineError",
    "decode_line",
    "tokens",
    "meaningful_lines",
]

#: A finite decimal number (no nan/inf, no hex, no digit separators), as a regular expression.
NUMBER = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
NUMBER_RE = re.compile(NUMBER)

_BINARY_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
BINARY_MESSAGE = ("binary (non-text) data: this is not a text instance catalog, or the file is "
                  "damaged")


class LineError(Exception):
    """A problem with one line; the caller adds the file name and line number."""


def decode_line(raw: bytes) -> str | None:
    """The line as text, or None when it holds bytes that cannot be in a text catalog."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _BINARY_RE.search(text) else text


def _split(line: str) -> list[str]:
    return line.replace("\t", " ").split(" ") if "\t" in line else line.split(" ")


def tokens(line: str) -> list[str]:
    """The blank- or tab-separated fields of a line (empty for a blank line)."""
    return [t for t in _split(line.strip(" \t\r\n")) if t]


_NEWLINE, _HASH = ord("\n"), ord("#")
#: Bytes that may stand before a line's first field (besides the newline): what :func:`tokens`
#: strips.
_BLANKS = (ord(" "), ord("\t"), ord("\r"))
#: Text looked at in one pass [bytes]: the per-line arrays of a slice stay a few MB.
_SLICE_BYTES = 1 << 20


def meaningful_lines(data: bytes | memoryview) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """Where the lines that are neither blank nor comments are, in newline-terminated text.

    The text is looked at in slices of about 1 MiB. A slice's line positions are listed only
    when it holds a meaningful line: a run of comment or blank lines costs a few vectorised
    passes over its bytes and no memory per line, so millions of them are skipped at about
    the speed of reading them.

    Parameters
    ----------
    data : bytes or memoryview
        Text ending with a line break.

    Returns
    -------
    index : numpy.ndarray of int64
        0-based line number of each meaningful line.
    start, end : numpy.ndarray of int64
        Its bytes, ``data[start:end]``, the line break included [byte offsets].
    n_lines : int
        Number of lines in ``data``.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    n_lines = 0
    begin = 0
    while begin < buf.size:
        stop = _after_newline(buf, min(begin + _SLICE_BYTES, buf.size) - 1)
        piece = buf[begin:stop]
        is_newline = piece == _NEWLINE
        count = int(np.count_nonzero(is_newline))
        # Lines whose first byte is neither "#" nor the line break (boolean passes only).
        is_start = np.empty_like(is_newline)
        is_start[0] = True
        is_start[1:] = is_newline[:-1]
        is_start &= ~is_newline
        is_start &= piece != _HASH
        if is_start.any():
            starts = np.flatnonzero(is_start)
            newlines = np.flatnonzero(is_newline)
            lines = np.searchsorted(newlines, starts)  # line breaks before the line
            indented = np.isin(piece[starts], _BLANKS)
            if indented.any():  # look past the blanks: "  # note" and "  \r\n" are skipped too
                text = piece[_first_text(piece, starts[indented])]
                empty = np.zeros(lines.size, dtype=bool)
                empty[indented] = (text == _HASH) | (text == _NEWLINE)
                lines, starts = lines[~empty], starts[~empty]
            found.append((lines + n_lines, starts + begin, newlines[lines] + 1 + begin))
        n_lines += count
        begin = stop
    if not found:
        nothing = np.empty(0, dtype=np.int64)
        return nothing, nothing, nothing, n_lines
    index, start, end = (np.concatenate(parts) for parts in zip(*found, strict=True))
    return index, start, end, n_lines


def _after_newline(buf: np.ndarray, at: int) -> int:
    """Offset just after the first line break at or after ``at`` (``buf`` ends with one)."""
    window = 4096
    while True:
        hits = np.flatnonzero(buf[at:at + window] == _NEWLINE)
        if hits.size:
            return at + int(hits[0]) + 1
        at += window
        window *= 2


def _first_text(piece: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Offset of the first byte that is not a blank at or after each of ``starts`` (blanks)."""
    blank = np.flatnonzero(np.isin(piece, _BLANKS))
    # Consecutive blank offsets form runs; a line's text starts after the end of its run.
    run_last = np.append(np.flatnonzero(np.diff(blank) != 1), blank.size - 1)
    last = run_last[np.searchsorted(run_last, np.searchsorted(blank, starts))]
    return blank[last] + 1
