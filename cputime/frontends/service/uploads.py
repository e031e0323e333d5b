"""Uploaded instance catalogs: written to a file as they arrive, gunzipped when gzip, with every
layer bounded (:class:`cputime.inputs.compressed.TextDecoder`: decompressed bytes counted as they
are produced, so a gzip bomb stops at the limit; gzip inside gzip refused), lines counted and
scanned for ``includeobj`` piece by piece, never split into a list."""

from __future__ import annotations

import re
from typing import BinaryIO

from cputime.errors import InputError
from cputime.frontends.service.errors import UPLOAD, BodyTooLarge
from cputime.inputs.compressed import TextDecoder

__all__ = ["Upload"]

_INCLUDE_RE = re.compile(rb"(?mi)^(?:\xef\xbb\xbf)?[ \t]*includeobj(?=[ \t\r\n])")
_MAX_LINE = 1 << 20  # no line of a catalog comes near 1 MiB


class Upload:
    """Writes an uploaded catalog's text to ``out`` piece by piece, as it arrives.

    Parameters
    ----------
    out : binary file
        Where the text goes.
    max_bytes : int
        Most text bytes [bytes] (``max_catalog_bytes``).
    max_lines : int
        Most lines other than object lines (``max_catalog_lines``): each costs the reader far
        more than an object line.
    """

    def __init__(self, out: BinaryIO, max_bytes: int, max_lines: int):
        self.out = out
        self.max_lines = max_lines
        self.decoder = TextDecoder(UPLOAD, max_bytes=max_bytes, limit_name="max_catalog_bytes",
                                   piece_bytes=_MAX_LINE)
        self.lines = 0
        self.other_lines = 0  # comments, blank, header lines
        self.tail = b""  # the unfinished last line
        self.text_seen = False  # anything but white space

    def feed(self, data: bytes) -> None:
        """Take the next piece of the body."""
        for text in self.decoder.feed(data):
            self._text(text)

    def close(self) -> None:
        """Check the end of the upload: something was sent, the gzip stream is complete."""
        for text in self.decoder.close():
            self._text(text)
        self._scan(self.tail + b"\n")
        if not self.text_seen:
            raise InputError(f"{UPLOAD}: empty body (send an instance catalog, plain or gzip)")

    def _text(self, data: bytes) -> None:
        self.text_seen = self.text_seen or bool(data.strip())
        text = self.tail + data
        cut = text.rfind(b"\n") + 1
        self._scan(text[:cut])
        self.tail = text[cut:]
        if len(self.tail) > _MAX_LINE:
            raise InputError(f"{UPLOAD}:{self.lines + 1}: line longer than {_MAX_LINE} bytes: "
                             "not an instance catalog")
        self.out.write(data)

    def _scan(self, text: bytes) -> None:
        match = _INCLUDE_RE.search(text)
        if match:
            number = self.lines + text.count(b"\n", 0, match.start()) + 1
            raise InputError(
                f"{UPLOAD}:{number}: includeobj is refused in uploads; put the objects in the body"
            )
        lines = text.count(b"\n")
        self.lines += lines
        objects = text.count(b"\nobject ") + text.count(b"\nobject\t") + text.startswith(
            (b"object ", b"object\t"))
        self.other_lines += lines - objects
        if self.other_lines > self.max_lines:
            raise BodyTooLarge(f"{UPLOAD}: over the limit of {self.max_lines} lines other than "
                               "object lines (max_catalog_lines)")
