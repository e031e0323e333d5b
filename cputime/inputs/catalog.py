"""Read PhoSim instance catalogs: the header keywords, and the objects in streamed chunks.

An instance catalog is a text file (plain or gzip-compressed; told apart by its first bytes, not
its name) of ``keyword value`` header lines, ``object ...`` lines, ``includeobj FILE`` lines that
pull objects from other files, comments (``#``) and blank lines.

This module reads the bytes and walks the ``includeobj`` tree; what a header line means is
:mod:`cputime.inputs.header`'s business, what an object line holds :mod:`cputime.inputs.objects`'.
Object lines are read in large chunks and parsed in worker threads that overlap the gzip
decompression. Memory stays bounded by a few chunks whatever the file size, and the work by
:data:`MAX_INCLUDED_FILES` files and :data:`MAX_INCLUDED_BYTES` of their text whatever the
``includeobj`` tree.

PhoSim reads ``includeobj`` lines of the main catalog only, and at most 32 object files per
visit (``MAX_CATALOG`` in ``source/raytrace/parameters.h``, checked by ``trim``), read from
``PhosimFocalplane.writeCatalogList`` in ``phosim.py`` of PhoSim's public release.
"""

from __future__ import annotations

import os
import queue
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cputime.errors import located
from cputime.inputs.compressed import decompressed_blocks
from cputime.inputs.header import (
    REQUIRED_KEYWORDS,
    CatalogHeader,
    HeaderLines,
    canonical_keyword,
    check_late_keyword,
)
from cputime.inputs.lines import BINARY_MESSAGE, decode_line, meaningful_lines, tokens
from cputime.inputs.objects import SPATIAL_MODEL_N_PARAMS, SPATIAL_MODELS, ParsedChunk, parse_chunk

__all__ = [
    "SPATIAL_MODELS",
    "SPATIAL_MODEL_N_PARAMS",
    "REQUIRED_KEYWORDS",
    "CatalogHeader",
    "ObjectChunk",
    "read_header",
    "header_includes",
    "recording_reads",
    "iter_object_chunks",
    "open_catalog",
    "read_catalog",
    "canonical_keyword",
]

DEFAULT_CHUNK_BYTES = 8 << 20
_PARSE_THREADS = max(1, min(4, os.cpu_count() or 1))
#: Deepest chain of ``includeobj`` files followed (PhoSim's own catalogs nest one level).
MAX_INCLUDE_DEPTH = 16
#: Most ``includeobj`` files followed for one catalog, a file included twice counting twice:
#: 8 times what PhoSim itself reads, and it bounds the work of a fan-out (10 files that each
#: include 10 others, 7 levels deep, would be ten million files).
MAX_INCLUDED_FILES = 256
#: Most text the ``includeobj`` files of one catalog may hold in all [bytes], decompressed, a
#: file included twice counting twice. A full-focal-plane DC2 visit's object files are a few GB
#: of text; the cap bounds the work of a small file that names large ones many times (256
#: inclusions of one 1 GB file would be 256 GB read).
MAX_INCLUDED_BYTES = 16 << 30

# ----------------------------------------------------------------------------------------------
# Bytes: plain or gzip, in newline-terminated chunks


def _open_binary(path: Path, source: str):
    try:
        # A FIFO or device would block or never end: only regular files are catalogs.
        if path.exists() and not path.is_dir() and not path.is_file():
            raise located(source, None, "not a regular file (a pipe or device cannot be read "
                                        "twice, as the header and then the objects)")
        return open(path, "rb")  # noqa: SIM115 - closed by the caller's with
    except FileNotFoundError:
        raise located(source, None, "no such file") from None
    except IsADirectoryError:
        raise located(source, None, "is a folder, not a catalog file") from None
    except OSError as exc:
        raise located(source, None, f"cannot be read ({exc.strerror})") from None


def _decompressed_blocks(path: Path, source: str) -> Iterator[bytes]:
    """Yield the file's text bytes, gunzipped when it is gzip
    (:func:`cputime.inputs.compressed.decompressed_blocks`: nested gzip refused, concatenated
    members, zero padding, truncation detected, byte-order mark dropped)."""
    with _open_binary(path, source) as f:
        yield from decompressed_blocks(f, source, piece_bytes=DEFAULT_CHUNK_BYTES)


def _text_chunks(path: Path, source: str, chunk_bytes: int) -> Iterator[bytes | memoryview]:
    """Yield newline-terminated pieces of about ``chunk_bytes`` of the file's text."""
    pending: list[bytes] = []
    size = 0
    lines = 0  # complete lines yielded, to say where an over-long line starts
    for block in _decompressed_blocks(path, source):
        pending.append(block)
        size += len(block)
        if size < chunk_bytes:
            continue
        data = b"".join(pending)
        cut = data.rfind(b"\n") + 1
        if cut == 0 and size > 4 * chunk_bytes:
            raise located(source, lines + 1, f"line longer than {size} bytes (no line break): "
                                             "not a text instance catalog")
        if cut:
            lines += data.count(b"\n", 0, cut)
            yield memoryview(data)[:cut]  # no copy of the big chunk
            data = data[cut:]
        pending, size = [data], len(data)
    tail = b"".join(pending)
    if tail:
        yield tail if tail.endswith(b"\n") else tail + b"\n"


def _prefetched(items: Iterator[bytes], depth: int = 2) -> Iterator[bytes]:
    """Run ``items`` in a background thread (gzip decompression releases the GIL)."""
    q: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        q.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(done)
        except BaseException as exc:  # handed to the consumer, which raises it
            q.put(exc)

    thread = threading.Thread(target=produce, daemon=True, name="cputime-catalog-read")
    thread.start()
    try:
        while (item := q.get()) is not done:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                q.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()


#: Where the files the reader opens are listed, while :func:`recording_reads` is active.
_READS: ContextVar[list[tuple[str, int, int]] | None] = ContextVar("cputime_catalog_reads",
                                                                   default=None)

# ----------------------------------------------------------------------------------------------
# Public API


@contextmanager
def recording_reads() -> Iterator[list[tuple[str, int, int]]]:
    """List every file the catalog reader opens inside the ``with`` block (in this thread or
    task): ``(absolute path, size [bytes], modification time [ns])``, as the file was when
    opened.

    What a cache of a catalog's results must check is unchanged before reusing them, found
    while the catalog is read rather than by reading it again (see
    :mod:`cputime.frontends.batch`).
    """
    files: list[tuple[str, int, int]] = []
    token = _READS.set(files)
    try:
        yield files
    finally:
        _READS.reset(token)


@dataclass(frozen=True)
class ObjectChunk:
    """Objects from consecutive lines of one catalog file.

    Attributes
    ----------
    ra, dec : numpy.ndarray of float64
        Position [degrees] (without the ``dra``/``ddec`` offsets).
    magnorm : numpy.ndarray of float64
        Normalisation magnitude (AB at 500 nm, rest frame) [mag].
    model_code : numpy.ndarray of int8
        Index into :data:`SPATIAL_MODELS`.
    is_point : numpy.ndarray of bool
        True for ``point`` sources.
    source : str
        File the objects come from.
    """

    ra: np.ndarray
    dec: np.ndarray
    magnorm: np.ndarray
    model_code: np.ndarray
    is_point: np.ndarray
    source: str

    def __len__(self) -> int:
        return int(self.ra.size)


def _header_line(lines: HeaderLines, fields: list[str], number: int, path: Path,
                 root: Path, allow_outside: bool) -> Path | None:
    """Handle a non-object line of a top-level catalog; return the include file, if any."""
    if fields[0].lower() == "includeobj":
        return _include_path(fields, number, path, root, allow_outside)
    if len(fields) < 2:
        raise located(lines.source, number, f"header keyword '{fields[0]}' has no value")
    lines.add(fields[0], " ".join(fields[1:]), number)
    return None


def _include_path(fields: list[str], number: int, path: Path, root: Path,
                  allow_outside: bool) -> Path:
    """Resolve ``includeobj FILE`` against the including file's folder; refuse escapes."""
    source = str(path)
    if len(fields) != 2:
        raise located(source, number, "includeobj takes exactly one file name")
    try:  # a name the system refuses, or a symlink loop, is the user's mistake too
        target = (path.parent / fields[1]).resolve()
        target.is_file()
    except (OSError, RuntimeError) as exc:
        raise located(source, number, (
            f"includeobj '{fields[1]}' is not a usable file name "
            f"({getattr(exc, 'strerror', None) or exc})")) from None
    if not allow_outside and not target.is_relative_to(root):
        raise located(source, number, (
            f"includeobj '{fields[1]}' resolves outside the catalog's folder {root}; move the "
            "object file next to the catalog (or pass allow_outside=True)"))
    return target


def _too_many_includes(source: str, number: int, name: str) -> Exception:
    return located(source, number, (
        f"includeobj '{name}' is one file too many: a catalog may pull in at most "
        f"{MAX_INCLUDED_FILES} object files, a file included twice counting twice (PhoSim "
        "itself reads at most 32)"))


def read_header(path: str | os.PathLike, *, allow_outside: bool = False) -> CatalogHeader:
    """Read the header of an instance catalog: the lines before its first object line.

    PhoSim also honours keywords written after objects; :func:`iter_object_chunks` checks that
    such late keywords agree with the header and refuses new ones, so no value is missed.

    Parameters
    ----------
    path : str or path-like
        Catalog file, plain text or gzip-compressed.
    allow_outside : bool, default=False
        Accept ``includeobj`` files outside the catalog's folder.

    Returns
    -------
    CatalogHeader

    Raises
    ------
    InputError
        Missing file, binary or truncated data, missing required keyword, bad value, two lines
        giving one keyword different values, or an ``includeobj`` leaving the catalog's folder.
    """
    path = Path(path)
    source = str(path)
    root = path.parent.resolve()
    lines = HeaderLines(source)
    for number, fields in _header_block(path, source):
        include = _header_line(lines, fields, number, path, root, allow_outside)
        if include is not None:
            if len(lines.includes) == MAX_INCLUDED_FILES:
                raise _too_many_includes(source, number, fields[1])
            lines.includes.append(include)
    return lines.build()


def _header_block(path: Path, source: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each keyword or include line before the first object line.

    Blank and comment lines are skipped a slice of text at a time, not line by line
    (:func:`~cputime.inputs.lines.meaningful_lines`): a header of millions of comment lines is
    read at about the speed of reading it.
    """
    with closing(_text_chunks(path, source, 1 << 20)) as chunks:
        first_line = 1  # line number of the chunk's first line
        for chunk in chunks:
            index, start, end, n_lines = meaningful_lines(chunk)
            for i, s, e in zip(index.tolist(), start.tolist(), end.tolist(), strict=True):
                text = decode_line(bytes(chunk[s:e]))
                if text is None:
                    raise located(source, first_line + i, BINARY_MESSAGE)
                fields = tokens(text)
                if fields[0].lower() == "object":
                    return
                yield first_line + i, fields
            first_line += n_lines


def header_includes(path: str | os.PathLike, *, allow_outside: bool = False) -> tuple[Path, ...]:
    """Files named by the ``includeobj`` lines of a catalog and, in turn, of those files (each
    once, at most :data:`MAX_INCLUDE_DEPTH` deep and :data:`MAX_INCLUDED_FILES` files): every
    file :func:`iter_object_chunks` reads besides the catalog itself.

    Every line is looked at, an ``includeobj`` after object lines too, but only for
    ``includeobj`` (a byte search, no parsing): the cost is about that of decompressing the
    files. A cache filled by reading the catalog lists the same files for free with
    :func:`recording_reads`.
    """
    path = Path(path)
    root = path.parent.resolve()
    found: dict[Path, None] = {}  # in the order found
    todo = [(path, 0)]
    while todo:
        current, depth = todo.pop()
        for number, fields in _include_lines(current, str(current)):
            target = _include_path(fields, number, current, root, allow_outside)
            if target not in found and target != path.resolve():
                if len(found) == MAX_INCLUDED_FILES:
                    raise _too_many_includes(str(current), number, fields[1])
                found[target] = None
                if target.is_file() and depth < MAX_INCLUDE_DEPTH:
                    todo.append((target, depth + 1))
    return tuple(found)


_INCLUDEOBJ = b"includeobj"


def _include_lines(path: Path, source: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of each ``includeobj`` line of a file, wherever it stands.

    Found by searching the lower-cased text for the keyword and keeping the hits that are a
    line's first field (only blanks before, a blank or the line break after), as
    :func:`~cputime.inputs.lines.tokens` would split it.
    """
    with closing(_text_chunks(path, source, DEFAULT_CHUNK_BYTES)) as chunks:
        first_line = 1  # line number of the chunk's first line
        for chunk in chunks:
            text = bytes(chunk).lower()
            counted, line = 0, first_line  # line number at offset ``counted``
            at = text.find(_INCLUDEOBJ)
            while at >= 0:
                start = text.rfind(b"\n", 0, at) + 1
                end = text.index(b"\n", at) + 1
                after = text[at + len(_INCLUDEOBJ):at + len(_INCLUDEOBJ) + 1]
                if not text[start:at].strip(b" \t\r") and after in (b" ", b"\t", b"\r", b"\n"):
                    line += text.count(b"\n", counted, start)
                    counted = start
                    raw = decode_line(bytes(chunk[start:end]))
                    if raw is None:
                        raise located(source, line, BINARY_MESSAGE)
                    yield line, tokens(raw)
                at = text.find(_INCLUDEOBJ, end)
            first_line = line + text.count(b"\n", counted)


def iter_object_chunks(path: str | os.PathLike, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                       allow_outside: bool = False,
                       max_included_bytes: int = MAX_INCLUDED_BYTES) -> Iterator[ObjectChunk]:
    """Stream the objects of an instance catalog, following ``includeobj`` files.

    Every line is checked: field count for the spatial model and dust blocks, numbers where
    numbers belong, known spatial model, no trailing fields, position and magnitude in range.
    Memory stays bounded by a few chunks of ``chunk_bytes`` whatever the catalog size.

    Parameters
    ----------
    path : str or path-like
        Catalog file, plain text or gzip-compressed (told apart by content).
    chunk_bytes : int, default=8 MiB
        Uncompressed text per chunk [bytes]; each yielded chunk holds the objects of about
        this much text (fewer around ``includeobj`` lines).
    allow_outside : bool, default=False
        Follow ``includeobj`` files that resolve outside the catalog's folder.
    max_included_bytes : int, default=:data:`MAX_INCLUDED_BYTES`
        Most decompressed text of all ``includeobj`` files together [bytes], a file included
        twice counting twice; checked as the text is read, so little more is ever read.

    Yields
    ------
    ObjectChunk

    Raises
    ------
    InputError
        One line naming the file and line: a bad object line (which field and why), binary or
        truncated data, a missing or escaping ``includeobj`` file, more than
        :data:`MAX_INCLUDED_FILES` of them or more than ``max_included_bytes`` of their text
        (naming the ``includeobj`` line that crossed the limit), a header keyword after the
        objects that disagrees with (or is missing from) the header.
    """
    path = Path(path)
    return _catalog_items(Path(path), chunk_bytes, allow_outside, max_included_bytes,
                          want_header=False)


def open_catalog(path: str | os.PathLike, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                 allow_outside: bool = False, max_included_bytes: int = MAX_INCLUDED_BYTES,
                 ) -> tuple[CatalogHeader, Iterator[ObjectChunk]]:
    """The header of an instance catalog and its objects, read in one pass over the file.

    What :func:`read_header` then :func:`iter_object_chunks` give (parameters and errors as
    theirs), without reading the header block twice: a catalog whose header follows gigabytes
    of comment lines is decompressed once. The header's ``includes`` are the ``includeobj``
    files of the header block, which must exist.

    Returns
    -------
    header : CatalogHeader
    objects : iterator of ObjectChunk
        Iterate it to the end, or close it, to stop the reading threads.
    """
    items = _catalog_items(Path(path), chunk_bytes, allow_outside, max_included_bytes,
                           want_header=True)
    header = next(items)  # the reader yields the header before any object
    return header, items


def _catalog_items(path: Path, chunk_bytes: int, allow_outside: bool, max_included_bytes: int,
                   want_header: bool) -> Iterator:
    """The catalog's :class:`CatalogHeader` first if ``want_header``, then its ObjectChunks."""
    with ThreadPoolExecutor(max_workers=_PARSE_THREADS,
                            thread_name_prefix="cputime-catalog-parse") as pool:
        walk = _Walk(path.parent.resolve(), chunk_bytes, allow_outside, pool, max_included_bytes,
                     want_header)
        yield from _iter_file(path, HeaderLines(str(path)), walk, stack=(path.resolve(),))


@dataclass
class _Walk:
    """What the files of one catalog's ``includeobj`` tree share while they are read."""

    root: Path
    chunk_bytes: int
    allow_outside: bool
    pool: ThreadPoolExecutor
    max_included_bytes: int
    want_header: bool  # yield the built header when the header block ends
    included: int = 0  # includeobj lines followed so far
    included_bytes: int = 0  # text of included files read so far [bytes]
    # The header block's includeobj lines (fields, line number), followed once the block ends
    # (so that the header is complete before any object comes); None once it has ended.
    deferred: list[tuple[list[str], int]] | None = field(default_factory=list)

    def count_included(self, size: int, site: tuple[str, int, str]) -> None:
        """Add ``size`` bytes read from the file an ``includeobj`` line (``site``: file, line,
        name) brought in; raise once the total passes the limit."""
        self.included_bytes += size
        if self.included_bytes > self.max_included_bytes:
            source, number, name = site
            raise located(source, number, (
                f"includeobj '{name}' takes the included object files over "
                f"{self.max_included_bytes} bytes of text in all (max_included_bytes; a file "
                "included twice counting twice)"))


def _iter_file(path: Path, header: HeaderLines | None, walk: _Walk,
               stack: tuple[Path, ...],
               site: tuple[str, int, str] | None = None) -> Iterator[ObjectChunk]:
    """Objects of one file (``header`` is None for included files), then of its includes.

    ``site`` is the ``includeobj`` line (file, line number, name) that brought an included
    file in: its text counts towards the catalog's :data:`MAX_INCLUDED_BYTES`.
    """
    if (reads := _READS.get()) is not None:
        with suppress(OSError):  # a file that cannot be read fails just below
            stat = path.stat()  # before the bytes: a change while reading shows as a change
            reads.append((str(path.absolute()), stat.st_size, stat.st_mtime_ns))
    first_line = 1
    pending: deque = deque()
    chunks = _prefetched(_text_chunks(path, str(path), walk.chunk_bytes))
    try:
        for chunk in chunks:
            if site is not None:
                walk.count_included(len(chunk), site)
            pending.append(walk.pool.submit(parse_chunk, chunk))
            if len(pending) <= _PARSE_THREADS:
                continue
            parsed = pending.popleft().result()
            yield from _emit(parsed, path, header, walk, first_line, stack)
            first_line += parsed.n_lines
        while pending:
            parsed = pending.popleft().result()
            yield from _emit(parsed, path, header, walk, first_line, stack)
            first_line += parsed.n_lines
        if header is not None and walk.deferred is not None:  # no object line in the file
            yield from _end_header(path, header, walk, stack)
    finally:
        for future in pending:
            future.cancel()
        chunks.close()


def _end_header(path: Path, header: HeaderLines, walk: _Walk,
                stack: tuple[Path, ...]) -> Iterator:
    """At the end of the header block of ``path``: the header (if wanted), then the objects of
    the ``includeobj`` files the block named."""
    deferred, walk.deferred = walk.deferred, None
    if walk.want_header:
        header.includes.extend(_include_path(fields, number, path, walk.root, walk.allow_outside)
                               for fields, number in deferred)
        yield header.build()
    for fields, number in deferred:
        target = _followed_include(fields, number, path, walk, stack)
        yield from _iter_file(target, None, walk, (*stack, target), (str(path), number, fields[1]))


def _emit(parsed: ParsedChunk, path: Path, header: HeaderLines | None, walk: _Walk,
          first_line: int, stack: tuple[Path, ...]) -> Iterator[ObjectChunk]:
    """Yield a parsed chunk's objects, handling its header and includeobj lines in order."""
    source = str(path)
    error_line = parsed.error[0] if parsed.error else parsed.n_lines
    done = 0  # objects of this chunk already yielded
    for index, text in parsed.other_lines:
        if index > error_line:
            break
        number = first_line + index
        fields = tokens(text)
        before = int(np.searchsorted(parsed.object_line, index))
        in_header = header is not None and walk.deferred is not None
        if in_header and before > 0:
            yield from _end_header(path, header, walk, stack)
            in_header = False
        if fields[0].lower() == "includeobj" and in_header:
            walk.deferred.append((fields, number))
        elif fields[0].lower() == "includeobj":
            target = _followed_include(fields, number, path, walk, stack)
            if not parsed.error:
                yield from _objects(parsed, done, before, source)
                done = before
            yield from _iter_file(target, None, walk, (*stack, target),
                                  (source, number, fields[1]))
        elif header is None:
            raise located(source, number, (
                f"header keyword '{fields[0]}' in an included object file; PhoSim reads header "
                "keywords only from the main catalog"))
        elif in_header:
            _header_line(header, fields, number, path, walk.root, walk.allow_outside)
        else:
            check_late_keyword(header, fields, number)
    if parsed.error:  # the objects of a chunk with a bad line are not yielded
        raise located(source, first_line + parsed.error[0], parsed.error[1])
    if header is not None and walk.deferred is not None and parsed.object_line.size:
        yield from _end_header(path, header, walk, stack)
    yield from _objects(parsed, done, parsed.object_line.size, source)


def _followed_include(fields: list[str], number: int, path: Path, walk: _Walk,
                      stack: tuple[Path, ...]) -> Path:
    """The file an ``includeobj`` line of ``path`` names, once it is known safe to read."""
    source = str(path)
    target = _include_path(fields, number, path, walk.root, walk.allow_outside)
    if not target.is_file():
        raise located(source, number, (
            f"includeobj file '{fields[1]}' not found (looked for {target}); put the "
            "object files next to the catalog"))
    if target in stack:
        raise located(source, number, f"includeobj '{fields[1]}' includes itself")
    if len(stack) > MAX_INCLUDE_DEPTH:
        raise located(source, number, (
            f"includeobj '{fields[1]}' nests more than {MAX_INCLUDE_DEPTH} files deep"))
    if walk.included == MAX_INCLUDED_FILES:
        raise _too_many_includes(source, number, fields[1])
    walk.included += 1
    return target


def _objects(parsed: ParsedChunk, start: int, stop: int, source: str) -> Iterator[ObjectChunk]:
    if stop > start:
        codes = parsed.model_code[start:stop]
        yield ObjectChunk(ra=parsed.ra[start:stop], dec=parsed.dec[start:stop],
                          magnorm=parsed.magnorm[start:stop], model_code=codes,
                          is_point=codes == SPATIAL_MODELS.index("point"), source=source)


def read_catalog(path: str | os.PathLike, *, allow_outside: bool = False,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                 max_included_bytes: int = MAX_INCLUDED_BYTES,
                 ) -> tuple[CatalogHeader, pd.DataFrame]:
    """Header and all objects of a (small) catalog, as a table (parameters as
    :func:`iter_object_chunks`).

    Returns
    -------
    header : CatalogHeader
    objects : pandas.DataFrame
        Columns ``ra``, ``dec`` [degrees], ``magnorm`` [mag], ``model_code``, ``spatial_model``
        (categorical of :data:`SPATIAL_MODELS`), ``is_point``, ``source``; one row per object.
    """
    header, items = open_catalog(path, chunk_bytes=chunk_bytes, allow_outside=allow_outside,
                                 max_included_bytes=max_included_bytes)
    chunks = list(items)
    columns = ("ra", "dec", "magnorm", "model_code", "is_point")
    empty = {"ra": np.float64, "dec": np.float64, "magnorm": np.float64, "model_code": np.int8,
             "is_point": bool}
    data = {name: (np.concatenate([getattr(c, name) for c in chunks]) if chunks
                   else np.empty(0, dtype=empty[name])) for name in columns}
    objects = pd.DataFrame(data)
    objects["spatial_model"] = pd.Categorical.from_codes(objects["model_code"].astype(int),
                                                         categories=list(SPATIAL_MODELS))
    objects["source"] = np.repeat([c.source for c in chunks], [len(c) for c in chunks])
    return header, objects
