"""Plain or gzip bytes to text bytes, incrementally and with bounded work.

One decoder for every reader of instance catalogs: the catalog reader pulls a file through it
(:func:`decompressed_blocks`) and the HTTP service pushes an upload through it as the body
arrives (:class:`TextDecoder`). Told apart by content, not by name: gzip when the first bytes are
the gzip magic number.

Both get the same rules:

- concatenated gzip members are read one after another, and zero padding after the last member
  is tolerated, as ``gzip -d`` does;
- gzip inside gzip is refused: no catalog is written that way, and each layer would multiply
  what a small file unpacks to;
- a stream that ends inside a member is reported as truncated;
- the decompressed size can be bounded (:class:`DecompressedTooLarge` as soon as it is passed, so
  a gzip bomb is never unpacked whole), and no piece inflated at once exceeds ``piece_bytes``;
- a UTF-8 byte-order mark at the start of the text is dropped.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import BinaryIO

from cputime.errors import InputError, located

__all__ = ["GZIP_MAGIC", "DecompressedTooLarge", "TextDecoder", "decompressed_blocks"]

GZIP_MAGIC = b"\x1f\x8b"
UTF8_BOM = b"\xef\xbb\xbf"
#: Largest piece of text one call produces [bytes]: bounds memory for very compressible input.
PIECE_BYTES = 8 << 20
_READ_BYTES = 1 << 20


class DecompressedTooLarge(InputError):
    """The text is larger than the decoder's ``max_bytes`` (the message names the limit)."""


class TextDecoder:
    """Feed plain or gzip bytes, get the text bytes back as they become available.

    Parameters
    ----------
    source : str
        Names the input in error messages (a file name, ``<upload>``).
    max_bytes : int, optional
        Most text bytes the input may give [bytes]; :class:`DecompressedTooLarge` beyond.
    limit_name : str
        Named in the over-the-limit message (a setting the user can change).
    piece_bytes : int
        Largest piece of gzip input inflated at once [bytes].

    Examples
    --------
    >>> import gzip
    >>> decoder = TextDecoder("example")
    >>> b"".join([*decoder.feed(gzip.compress(b"a\\n") + gzip.compress(b"b\\n")), *decoder.close()])
    b'a\\nb\\n'
    """

    def __init__(self, source: str, *, max_bytes: int | None = None, limit_name: str = "",
                 piece_bytes: int = PIECE_BYTES):
        self.source = source
        self.max_bytes = max_bytes
        self.limit_name = limit_name
        self.piece_bytes = piece_bytes
        self.gzip: bool | None = None  # None until the first two bytes came
        self.size = 0  # text bytes produced [bytes]
        self._head = b""  # first bytes, until the format is known
        self._start = b""  # first text bytes, until a byte-order mark can be told
        self._started = False
        self._inflater = None  # the member being read

    def feed(self, data: bytes) -> Iterator[bytes]:
        """Yield the text bytes that ``data`` completes (possibly none)."""
        if self.gzip is None:
            self._head += data
            if len(self._head) < len(GZIP_MAGIC):
                return
            self.gzip, data, self._head = self._head.startswith(GZIP_MAGIC), self._head, b""
        if not self.gzip:
            yield from self._text(data)
            return
        while data:
            if self._inflater is None:
                if not data.strip(b"\0"):
                    return  # zero padding after the last member, as gzip(1) tolerates
                self._inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            try:
                out = self._inflater.decompress(data, self.piece_bytes)
            except zlib.error as exc:
                raise located(self.source, None, f"corrupt gzip data ({exc})") from None
            yield from self._text(out)
            if self._inflater.eof:  # the next member, if any
                data, self._inflater = self._inflater.unused_data, None
            else:
                data = self._inflater.unconsumed_tail

    def close(self) -> Iterator[bytes]:
        """Yield what is left; raise if the gzip stream ended inside a member."""
        if self.gzip is None:  # fewer than two bytes came: plain text
            self.gzip = False
            yield from self._text(self._head)
        if self._inflater is not None:
            raise located(self.source, None, "gzip data is truncated (the input ends in the "
                                             "middle of the compressed stream; was the copy "
                                             "interrupted?)")
        if not self._started and self._start:
            yield from self._first_text()

    def _text(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        self.size += len(data)
        if self.max_bytes is not None and self.size > self.max_bytes:
            named = f" ({self.limit_name})" if self.limit_name else ""
            raise DecompressedTooLarge(f"{self.source}: decompressed text over the limit of "
                                       f"{self.max_bytes} bytes{named}")
        if self._started:
            yield data
            return
        self._start += data
        if len(self._start) >= len(UTF8_BOM):
            yield from self._first_text()

    def _first_text(self) -> Iterator[bytes]:
        if self.gzip and self._start.startswith(GZIP_MAGIC):
            raise located(self.source, None, "gzip data inside gzip data: refused (decompress "
                                             "the input once and gzip the text once)")
        self._started = True
        start, self._start = self._start.removeprefix(UTF8_BOM), b""
        if start:
            yield start


def decompressed_blocks(f: BinaryIO, source: str, *, max_bytes: int | None = None,
                        piece_bytes: int = PIECE_BYTES) -> Iterator[bytes]:
    """Yield the text bytes of an open binary file, plain or gzip (see :class:`TextDecoder`)."""
    decoder = TextDecoder(source, max_bytes=max_bytes, piece_bytes=piece_bytes)
    while raw := f.read(_READ_BYTES):
        yield from decoder.feed(raw)
    yield from decoder.close()
