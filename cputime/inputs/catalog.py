"""Read PhoSim instance catalogs: the header keywords, and the objects in streamed chunks.

An instance catalog is a text file (plain or gzip-compressed; told apart by its first bytes, not
its name) of ``keyword value`` header lines, ``object ...`` lines, ``includeobj FILE`` lines that
pull objects from other files, comments (``#``) and blank lines.

Object lines are read in large chunks and checked with vectorised code (a full-line regular
expression run by Arrow's RE2 engine, then Arrow's number parser), in worker threads that overlap
the gzip decompression. Only when a line fails does a per-line Python pass run, to say exactly
which field of which line is wrong. Memory stays bounded by a few chunks whatever the file size.

What PhoSim accepts was read from its source: ``Observation::addSource`` in
``source/raytrace/observation.cpp`` (spatial models and their parameter counts, dust blocks) and
``PhosimFocalplane.loadInstanceCatalog`` / ``writeCatalogList`` in ``phosim.py`` (header keywords
and ``includeobj``) of PhoSim's public release (github.com/zym1998year/phosim_release, a copy of
the PhoSim 5 release; github.com/enhsin/diagrid-phosim holds the 3.x code, with the same rules).
``knots`` is imSim's extension (4 parameters, like ``sersic2d``).
"""

from __future__ import annotations

import math
import os
import queue
import re
import threading
from collections import deque
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from cputime.errors import located
from cputime.inputs.compressed import decompressed_blocks
from cputime.inputs.validation import check_visit

__all__ = [
    "SPATIAL_MODELS",
    "SPATIAL_MODEL_N_PARAMS",
    "REQUIRED_KEYWORDS",
    "CatalogHeader",
    "ObjectChunk",
    "read_header",
    "header_includes",
    "iter_object_chunks",
    "read_catalog",
    "canonical_keyword",
]

# Spatial models PhoSim knows, in model_code order, with their parameter counts. "image" stands
# for any name containing "fit" (a FITS image: PhoSim reads 2 parameters, pixel scale and angle).
SPATIAL_MODEL_N_PARAMS = {
    "point": 0,
    "gauss": 1,
    "movingpoint": 2,
    "sersic2d": 4,
    "sersic": 7,
    "knots": 4,
    "pinhole": 4,
    "sersiccomplex": 15,
    "sersicdisk": 7,
    "distortedsphere": 10,
    "sphere": 1,
    "reflectedsphere": 3,
    "disk": 1,
    "movingsphere": 3,
    "movingdisk": 3,
    "movingreflectedsphere": 5,
    "image": 2,
}
SPATIAL_MODELS = tuple(SPATIAL_MODEL_N_PARAMS)
_IMAGE_CODE = SPATIAL_MODELS.index("image")
# Other spellings PhoSim accepts for the same model (names are matched case-insensitively).
_MODEL_ALIASES = {
    "sersicdiskcomplex": "sersiccomplex",
    "sersicdisccomplex": "sersiccomplex",
    "sersicdisc": "sersicdisk",
}
_MODEL_NAMES = tuple(m for m in SPATIAL_MODELS if m != "image") + tuple(_MODEL_ALIASES)
_MODEL_NAME_CODES = np.array(
    [SPATIAL_MODELS.index(_MODEL_ALIASES.get(m, m)) for m in _MODEL_NAMES], dtype=np.int8)
_DUST_MODELS = ("none", "ccm", "calzetti")

_OBJECT_FIELD_NAMES = ("object", "id", "ra", "dec", "magnorm", "sed", "redshift", "gamma1",
                       "gamma2", "kappa", "dra", "ddec", "spatialmodel")
_NUMERIC_FIXED_FIELDS = (2, 3, 4, 6, 7, 8, 9, 10, 11)  # 0-based indices into an object line

# A finite decimal number (no nan/inf, no hex, no digit separators).
_NUM = r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?"
_NUM_RE = re.compile(_NUM)
_SEP = r"[ \t]+"
_TOKEN = r"[^\x00-\x20\x7f]+"  # any run of printable characters (UTF-8 allowed)


def _full_object_line_regex() -> str:
    """RE2 pattern that matches exactly the valid object lines (lower-case ``object`` keyword)."""
    def params(n: int) -> str:
        return f"(?:{_SEP}{_NUM}){{{n}}}" if n else ""

    models = [f"(?i:{name}){params(SPATIAL_MODEL_N_PARAMS[_MODEL_ALIASES.get(name, name)])}"
              for name in _MODEL_NAMES]
    models.append(f"[^\\x00-\\x20\\x7f]*(?i:fit)[^\\x00-\\x20\\x7f]*{params(2)}")
    dust = f"(?:(?i:none)|(?i:ccm|calzetti){_SEP}{_NUM}{_SEP}{_NUM})"
    return (f"object{_SEP}{_TOKEN}{_SEP}{_NUM}{_SEP}{_NUM}{_SEP}{_NUM}{_SEP}{_TOKEN}"
            f"{params(6)}{_SEP}(?:{'|'.join(models)}){_SEP}{dust}{_SEP}{dust}[ \\t\\r]*\\n")


_OBJECT_LINE = _full_object_line_regex()
_OBJECT_LINE_PATTERN = f"^{_OBJECT_LINE}$"
_OBJECT_LINES_PATTERN = f"\\A(?:{_OBJECT_LINE})*\\z"  # a whole chunk of object lines

DEFAULT_CHUNK_BYTES = 8 << 20
_PARSE_THREADS = max(1, min(4, os.cpu_count() or 1))
#: Deepest chain of ``includeobj`` files followed (PhoSim's own catalogs nest one level).
MAX_INCLUDE_DEPTH = 16

# ----------------------------------------------------------------------------------------------
# Header


# Canonical keyword -> other names it is written under (today's and the 2016 OpSim/CatSim style).
_KEYWORD_ALIASES = {
    "obshistid": ("opsim_obshistid", "obsid"),
    "rightascension": ("unrefracted_ra", "pointingra"),
    "declination": ("unrefracted_dec", "pointingdec"),
    "mjd": ("opsim_expmjd", "expmjd"),
    "altitude": ("opsim_altitude",),
    "azimuth": ("opsim_azimuth",),
    "filter": ("opsim_filter",),
    "rotskypos": ("opsim_rotskypos", "camskyangle"),
    "rottelpos": ("opsim_rottelpos", "camtelangle"),
    "dist2moon": ("opsim_dist2moon",),
    "moonalt": ("opsim_moonalt",),
    "moondec": ("opsim_moondec",),
    "moonphase": ("opsim_moonphase",),
    "moonra": ("opsim_moonra",),
    "nsnap": ("sim_nsnap", "numexp"),
    "seed": ("sim_seed",),
    "seeing": ("rawseeing", "opsim_rawseeing"),
    "sunalt": ("opsim_sunalt",),
    "vistime": ("sim_vistime", "obstime"),
    "exptime": ("sim_exptime",),
    "airmass": ("opsim_airmass",),
    "minsource": ("sim_minsource",),
    "camconfig": ("sim_camconfig",),
}
_CANONICAL = {alias: name for name, aliases in _KEYWORD_ALIASES.items() for alias in aliases}
_CANONICAL.update({name: name for name in _KEYWORD_ALIASES})


def canonical_keyword(name: str) -> str | None:
    """The canonical name of a header keyword in either style (``Opsim_moonalt`` -> ``moonalt``),
    or None for a keyword that is not a known alias."""
    return _CANONICAL.get(name.strip().lower())


_INT_KEYWORDS = ("obshistid", "filter", "nsnap", "seed", "minsource", "camconfig")
REQUIRED_KEYWORDS = ("rightascension", "declination", "rotskypos", "filter", "obshistid",
                     "vistime")
_FILTER_LETTERS = "ugrizy"
# LSST sensors read out for 3 s between snaps (PhoSim's focalplanelayout.txt); PhoSim splits a
# visit as exptime = (vistime - (nsnap - 1) * readout) / nsnap (atmospheresetup.cpp).
_READOUT_S = 3.0


@dataclass(frozen=True)
class CatalogHeader:
    """Header of an instance catalog, keywords under their canonical names.

    Angles are in [degrees], times in [s], ``moonphase`` in [percent], ``filter`` 0..5 =
    u g r i z y. Optional keywords that are absent are None.

    Attributes
    ----------
    vistime : float
        Total visit time over all snaps [s]. When the catalog gives only ``exptime`` (one
        snap's exposure), ``vistime = nsnap * exptime + (nsnap - 1) * 3 s`` (PhoSim's rule read
        backwards, 3 s LSST readout), with ``nsnap = 1`` when the catalog does not give it.
    raw : dict of str to str
        Every header keyword as written (first occurrence) and its value text.
    includes : tuple of Path
        ``includeobj`` files named in the header block, resolved against the catalog's folder.
    source : str
        The catalog's path as given.
    """

    obshistid: int
    rightascension: float
    declination: float
    rotskypos: float
    filter: int
    vistime: float
    mjd: float | None = None
    altitude: float | None = None
    azimuth: float | None = None
    rottelpos: float | None = None
    dist2moon: float | None = None
    moonalt: float | None = None
    moondec: float | None = None
    moonphase: float | None = None
    moonra: float | None = None
    nsnap: int | None = None
    seed: int | None = None
    seeing: float | None = None
    sunalt: float | None = None
    airmass: float | None = None
    minsource: int | None = None
    camconfig: int | None = None
    raw: dict[str, str] = field(default_factory=dict)
    includes: tuple[Path, ...] = ()
    source: str = ""


class _HeaderLines:
    """Collects header keyword lines, checks duplicates, builds a :class:`CatalogHeader`."""

    def __init__(self, source: str):
        self.source = source
        self.values: dict[str, tuple[str, int, str]] = {}  # canonical -> (value, line, keyword)
        self.raw: dict[str, str] = {}
        self.includes: list[Path] = []

    def add(self, keyword: str, value: str, line: int) -> None:
        """Record ``keyword value`` from 1-based ``line``; disagreeing duplicates are an error."""
        self.raw.setdefault(keyword, value)
        name = _CANONICAL.get(keyword.lower(), keyword.lower())
        if name in self.values:
            self.check_agrees(name, keyword, value, line)
        else:
            self.values[name] = (value, line, keyword)

    def check_agrees(self, name: str, keyword: str, value: str, line: int) -> None:
        """Raise unless ``value`` equals the value already recorded for canonical ``name``."""
        first_value, first_line, first_keyword = self.values[name]
        if not _same_value(first_value, value):
            raise located(self.source, line, (
                f"'{keyword} {value}' disagrees with '{first_keyword} {first_value}' on line "
                f"{first_line}; keep one of them"))

    def build(self) -> CatalogHeader:
        """The normalised header; raises if a required keyword is missing or a value is bad."""
        missing = [name for name in REQUIRED_KEYWORDS if name not in self.values
                   and not (name == "vistime" and "exptime" in self.values)]
        if missing:
            names = ", ".join("vistime (or exptime)" if m == "vistime" else m for m in missing)
            raise located(self.source, None, f"missing required header keyword(s): {names}")
        known = {name: self._typed(name) for name in self.values if name in _KEYWORD_ALIASES}
        check_visit(known, self.source,
                    {name: f"{self.source}:{self.values[name][1]}" for name in known})
        exptime = known.pop("exptime", None)
        if "vistime" not in known:
            nsnap = known.get("nsnap") or 1
            known["vistime"] = nsnap * exptime + (nsnap - 1) * _READOUT_S
        return CatalogHeader(**known, raw=dict(self.raw), includes=tuple(self.includes),
                             source=self.source)

    def _typed(self, name: str) -> float | int:
        value, line, keyword = self.values[name]
        if name == "filter" and value.lower() in _FILTER_LETTERS:
            return _FILTER_LETTERS.index(value.lower())
        number = float(value) if _NUM_RE.fullmatch(value) else math.nan
        if not math.isfinite(number):
            raise located(self.source, line, f"{keyword}: '{value}' is not a number")
        if name in _INT_KEYWORDS:
            if number != int(number):
                raise located(self.source, line, f"{keyword}: '{value}' is not a whole number")
            number = int(number)
        if name == "filter" and not 0 <= number <= 5:
            raise located(self.source, line,
                          f"{keyword}: '{value}' is not a filter (0..5 = u g r i z y)")
        return number


def _same_value(a: str, b: str) -> bool:
    if a == b:
        return True
    if _NUM_RE.fullmatch(a) and _NUM_RE.fullmatch(b):
        return float(a) == float(b)
    return False


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


# ----------------------------------------------------------------------------------------------
# Lines


class _LineError(Exception):
    """A problem with one line; the caller adds the file name and line number."""


def _number(token: str, index: int, name: str) -> float:
    where = f"field {index + 1} ({name})"
    if not _NUM_RE.fullmatch(token):
        raise _LineError(f"{where}: '{token}' is not a number")
    value = float(token)
    if not math.isfinite(value):
        raise _LineError(f"{where}: '{token}' is not a finite number")
    return value


def _model_code(token: str) -> int | None:
    name = token.lower()
    name = _MODEL_ALIASES.get(name, name)
    if name in SPATIAL_MODEL_N_PARAMS and name != "image":
        return SPATIAL_MODELS.index(name)
    return _IMAGE_CODE if "fit" in name else None


def _parse_object_tokens(tokens: list[str]) -> tuple[float, float, float, int]:
    """Check one object line field by field; return (ra, dec, magnorm, model_code)."""
    def need(index: int, name: str, what: str) -> str:
        if index >= len(tokens):
            raise _LineError(f"field {index + 1} ({name}) is missing: {what} "
                             f"(the line has {len(tokens)} fields)")
        return tokens[index]

    fixed_what = "an object line has at least 16 fields"
    for i, name in enumerate(_OBJECT_FIELD_NAMES):
        need(i, name, fixed_what)
    values = [_number(tokens[i], i, _OBJECT_FIELD_NAMES[i]) for i in _NUMERIC_FIXED_FIELDS]
    code = _model_code(tokens[12])
    if code is None:
        known = ", ".join(m for m in SPATIAL_MODELS if m != "image")
        raise _LineError(f"field 13 (spatialmodel): unknown spatial model '{tokens[12]}' "
                         f"(known: {known}, or a FITS image file name)")
    model = SPATIAL_MODELS[code]
    n_params = SPATIAL_MODEL_N_PARAMS[model]
    for j in range(n_params):
        what = f"a {model} object has {n_params} parameters"
        _number(need(13 + j, f"{model} parameter {j + 1}", what), 13 + j,
                f"{model} parameter {j + 1}")
    i = 13 + n_params
    for block in ("dust_rest", "dust_lab"):
        dust = need(i, block, "each object ends with a rest-frame and a lab dust block").lower()
        if dust not in _DUST_MODELS:
            raise _LineError(f"field {i + 1} ({block}): '{tokens[i]}' is not a dust model "
                             "(none, CCM or calzetti)")
        i += 1
        if dust != "none":
            for par in ("Av", "Rv"):
                _number(need(i, f"{block} {par}", f"{tokens[i - 1 - (par == 'Rv')]} needs Av "
                                                  "and Rv"), i, f"{block} {par}")
                i += 1
    if len(tokens) > i:
        raise _LineError(f"field {i + 1}: unexpected extra field '{tokens[i]}' after the "
                         f"dust_lab block (this object line should have {i} fields)")
    return values[0], values[1], values[2], code


def _split(line: str) -> list[str]:
    return line.replace("\t", " ").split(" ") if "\t" in line else line.split(" ")


def _tokens(line: str) -> list[str]:
    return [t for t in _split(line.strip(" \t\r\n")) if t]


@dataclass
class _ParsedChunk:
    """What a worker found in one chunk; line indices are 0-based within the chunk."""

    n_lines: int
    ra: np.ndarray
    dec: np.ndarray
    magnorm: np.ndarray
    model_code: np.ndarray
    object_line: np.ndarray
    other_lines: list[tuple[int, str]]
    error: tuple[int, str] | None = None


_BINARY_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_BINARY_MESSAGE = ("binary (non-text) data: this is not a text instance catalog, or the file is "
                   "damaged")


def _decode_line(raw: bytes) -> str | None:
    """The line as text, or None when it holds bytes that cannot be in a text catalog."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    return None if _BINARY_RE.search(text) else text


def _parse_chunk(data: bytes) -> _ParsedChunk:
    """Parse a newline-terminated chunk: vectorised for object lines, per line for the rest."""
    buf = np.frombuffer(data, dtype=np.uint8)
    # Every blank and newline in one pass: the newlines cut the lines, the blanks locate the
    # fields of the object lines (other bytes <= 32 only occur in lines the check refuses).
    blanks = np.flatnonzero(buf <= 32)
    newlines = blanks[buf[blanks] == 10]
    n_lines = newlines.size
    starts = np.empty(n_lines + 1, dtype=np.int64)
    starts[0] = 0
    starts[1:] = newlines + 1

    is_object = np.ones(n_lines, dtype=bool)
    line_starts = starts[:-1]
    for k, char in enumerate(b"object"):
        is_object &= buf[np.minimum(line_starts + k, buf.size - 1)] == char
    sep = buf[np.minimum(line_starts + 6, buf.size - 1)]
    is_object &= (sep == 32) | (sep == 9)
    object_line = np.flatnonzero(is_object)
    other = [(int(i), bytes(data[starts[i]:starts[i + 1]])) for i in np.flatnonzero(~is_object)]

    # Lines share the chunk's buffer (no copy); binary bytes fail the regex and are then
    # reported by the per-line diagnosis.
    lines = pa.StringArray.from_buffers(
        n_lines, pa.py_buffer(starts.astype(np.int32)), pa.py_buffer(data))
    whole = None
    if object_line.size < n_lines:
        lines = lines.filter(pa.array(is_object))
    else:
        # Built from buffers: pa.array([memoryview]) would keep the chunk alive for good
        # (pyarrow 26 leaks a reference to a memoryview it converts), and copy it.
        whole = pa.LargeStringArray.from_buffers(
            1, pa.py_buffer(np.array([0, len(buf)], dtype=np.int64)), pa.py_buffer(data))
    ra, dec, magnorm, model_code = _NO_OBJECTS
    bad_object = _check_object_lines(lines, whole)
    if bad_object is None and object_line.size:
        fields = _located_fields(data, blanks, starts[object_line])
        if fields is None:  # blanks in runs: split every line instead
            fields = _split_fields(lines)
        ra, dec, magnorm, model_code, bad_object = _object_values(lines, *fields)
    result = _ParsedChunk(n_lines, ra, dec, magnorm, model_code, object_line, other_lines=[])
    if bad_object is not None:  # index among object lines -> line index in the chunk
        result.error = (int(object_line[bad_object[0]]), bad_object[1])
    _add_other_lines(result, other)
    return result


#: 0-based fields of an object line that are read: ra, dec, magnorm and the spatial model.
_READ_FIELDS = (2, 3, 4, 12)


def _check_object_lines(lines: pa.StringArray, whole: pa.Array | None):
    """(index, message) of the first invalid object line, or None when all are valid.

    ``whole`` is the same text as one string, when it holds nothing but object lines: one
    regular-expression run over it is faster than one per line.
    """
    if len(lines) == 0:
        return None
    if whole is not None and pc.match_substring_regex(whole, _OBJECT_LINES_PATTERN)[0].as_py():
        return None
    valid = pc.match_substring_regex(lines, _OBJECT_LINE_PATTERN)
    if pc.all(valid).as_py():
        return None
    index = int(np.argmin(valid.to_numpy(zero_copy_only=False)))
    return index, _diagnose(lines.view(pa.binary())[index].as_py())


def _located_fields(data: bytes, blanks: np.ndarray, line_starts: np.ndarray):
    """Numbers and model names of valid object lines, found from the blanks' positions.

    Works when the first fields of every line are separated by single blanks (as catalog
    writers do); returns None otherwise. Returns ``(numbers, model)``: ra, dec and magnorm as
    an ``(n, 3)`` float array, and the spatial-model position in :data:`_MODEL_NAMES` (NaN
    when not there).
    """
    n = line_starts.size
    # A valid line has at least 15 blanks before its newline: index the first 13 of each.
    first = np.searchsorted(blanks, line_starts)
    at = blanks[first[:, None] + np.arange(_READ_FIELDS[-1] + 1)]
    if not (np.diff(at, axis=1) > 1).all():
        return None
    # [start, end) of the read fields, line after line, as the offsets of one string array
    # over the chunk: the even elements are the fields, the odd ones the text between them.
    read = np.array(_READ_FIELDS)
    offsets = np.empty(2 * read.size * n + 1, dtype=np.int32)
    per_line = offsets[:-1].reshape(n, 2 * read.size)
    per_line[:, 0::2] = at[:, read - 1] + 1
    per_line[:, 1::2] = at[:, read]
    offsets[-1] = offsets[-2]
    # The numbers are parsed in place: a validity bitmap (one byte per line of 8 elements)
    # leaves everything but them null, and the cast skips nulls.
    numbers = pa.StringArray.from_buffers(
        offsets.size - 1, pa.py_buffer(offsets), pa.py_buffer(data),
        pa.py_buffer(np.full(n, 0b00010101, dtype=np.uint8)))
    values = pc.cast(numbers, pa.float64()).to_numpy(zero_copy_only=False).reshape(n, -1)
    # The names are copied out first: Arrow's case-folding kernels misread string arrays whose
    # values do not tile their data buffer.
    all_fields = pa.StringArray.from_buffers(
        offsets.size - 1, pa.py_buffer(offsets), pa.py_buffer(data))
    names = all_fields.take(pa.array(np.arange(6, offsets.size - 1, 2 * read.size)))
    return values[:, 0:6:2], _model_positions(names)


def _split_fields(lines: pa.StringArray):
    """As :func:`_located_fields`, by splitting each line at its blanks (any spacing)."""
    parts = pc.ascii_split_whitespace(lines, max_splits=_READ_FIELDS[-1] + 1)
    numbers = np.column_stack([pc.cast(pc.list_element(parts, k), pa.float64()).to_numpy()
                               for k in _READ_FIELDS[:3]])
    return numbers, _model_positions(pc.list_element(parts, _READ_FIELDS[3]))


def _model_positions(names: pa.Array) -> np.ndarray:
    """Position of each spatial-model name in :data:`_MODEL_NAMES`, any case; NaN if absent."""
    position = pc.index_in(pc.ascii_lower(names), value_set=pa.array(_MODEL_NAMES))
    return position.to_numpy(zero_copy_only=False).astype(float)


def _object_values(lines: pa.StringArray, numbers: np.ndarray, position: np.ndarray):
    """Checked numbers and model codes -> (ra, dec, magnorm, model_code, error or None)."""
    finite = np.isfinite(numbers).all(axis=1)
    if not finite.all():
        index = int(np.argmin(finite))
        return *_NO_OBJECTS, (index, _diagnose(lines.view(pa.binary())[index].as_py()))
    # A NaN position is a name the regex accepted as a FITS image ("...fit...").
    known = ~np.isnan(position)
    codes = np.full(len(lines), _IMAGE_CODE, dtype=np.int8)
    codes[known] = _MODEL_NAME_CODES[position[known].astype(np.intp)]
    ra, dec, magnorm = (np.ascontiguousarray(numbers[:, j]) for j in range(3))
    return ra, dec, magnorm, codes, None


_NO_OBJECTS = (np.empty(0), np.empty(0), np.empty(0), np.empty(0, dtype=np.int8))


def _diagnose(raw: bytes) -> str:
    """Say what is wrong with an object line the fast check refused."""
    text = _decode_line(raw)
    if text is None:
        return _BINARY_MESSAGE
    try:
        _parse_object_tokens(_tokens(text))
    except _LineError as exc:
        return str(exc)
    return "not a valid object line (unexpected characters or spacing)"


def _add_other_lines(result: _ParsedChunk, other: list[tuple[int, bytes]]) -> None:
    """Keep header/include lines for the reader; parse object lines written unusually."""
    extra: list[tuple[int, float, float, float, int]] = []
    for index, raw in other:
        text = _decode_line(raw)
        if text is None:
            if result.error is None or index < result.error[0]:
                result.error = (index, _BINARY_MESSAGE)
            return
        tokens = _tokens(text)
        if not tokens or tokens[0].startswith("#"):
            continue
        if tokens[0].lower() != "object":
            result.other_lines.append((index, text.strip()))
            continue
        try:
            extra.append((index, *_parse_object_tokens(tokens)))
        except _LineError as exc:
            if result.error is None or index < result.error[0]:
                result.error = (index, str(exc))
            return
    if extra and result.error is None:
        columns = list(zip(*extra, strict=True))
        line = np.concatenate([result.object_line, np.array(columns[0])])
        order = np.argsort(line, kind="stable")
        result.object_line = line[order]
        for name, values, dtype in (("ra", columns[1], np.float64), ("dec", columns[2], np.float64),
                                    ("magnorm", columns[3], np.float64),
                                    ("model_code", columns[4], np.int8)):
            merged = np.concatenate([getattr(result, name), np.array(values, dtype=dtype)])
            setattr(result, name, merged[order])


# ----------------------------------------------------------------------------------------------
# Public API


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


def _header_line(lines: _HeaderLines, tokens: list[str], number: int, path: Path,
                 root: Path, allow_outside: bool) -> Path | None:
    """Handle a non-object line of a top-level catalog; return the include file, if any."""
    if tokens[0].lower() == "includeobj":
        return _include_path(tokens, number, path, root, allow_outside)
    if len(tokens) < 2:
        raise located(lines.source, number, f"header keyword '{tokens[0]}' has no value")
    lines.add(tokens[0], " ".join(tokens[1:]), number)
    return None


def _include_path(tokens: list[str], number: int, path: Path, root: Path,
                  allow_outside: bool) -> Path:
    """Resolve ``includeobj FILE`` against the including file's folder; refuse escapes."""
    source = str(path)
    if len(tokens) != 2:
        raise located(source, number, "includeobj takes exactly one file name")
    target = (path.parent / tokens[1]).resolve()
    if not allow_outside and not target.is_relative_to(root):
        raise located(source, number, (
            f"includeobj '{tokens[1]}' resolves outside the catalog's folder {root}; move the "
            "object file next to the catalog (or pass allow_outside=True)"))
    return target


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
    lines = _HeaderLines(source)
    for number, tokens in _header_block(path, source):
        include = _header_line(lines, tokens, number, path, root, allow_outside)
        if include is not None:
            lines.includes.append(include)
    return lines.build()


# The start of a line that is neither blank nor a comment.
_MEANINGFUL_LINE = re.compile(rb"^[ \t\r\f\v]*[^# \t\r\n\f\v]", re.MULTILINE)


def _header_block(path: Path, source: str) -> Iterator[tuple[int, list[str]]]:
    """(line number, tokens) of each keyword or include line before the first object line.

    Blank and comment lines are skipped by one regular-expression search per chunk, not line by
    line: a header of millions of comment lines is read at the speed of the search.
    """
    with closing(_text_chunks(path, source, 1 << 20)) as chunks:
        number = 1  # line number at ``pos``
        for chunk in chunks:
            data = bytes(chunk)
            pos = 0
            while match := _MEANINGFUL_LINE.search(data, pos):
                start = match.start()
                end = data.index(b"\n", start)  # every chunk ends with a line break
                number += data.count(b"\n", pos, start)
                text = _decode_line(data[start:end])
                if text is None:
                    raise located(source, number, _BINARY_MESSAGE)
                tokens = _tokens(text)
                if tokens[0].lower() == "object":
                    return
                yield number, tokens
                number += 1
                pos = end + 1
            number += data.count(b"\n", pos)


def header_includes(path: str | os.PathLike, *, allow_outside: bool = False) -> tuple[Path, ...]:
    """Files named by ``includeobj`` lines in the header block of a catalog and, in turn, of
    those files (each once, at most :data:`MAX_INCLUDE_DEPTH` deep).

    Cheap (only the lines before each file's first object are read): what a cache key of the
    catalog's results must cover besides the catalog itself. ``includeobj`` lines written
    after object lines are not looked for.
    """
    path = Path(path)
    root = path.parent.resolve()
    found: list[Path] = []
    todo = [(path, 0)]
    while todo:
        current, depth = todo.pop()
        for number, tokens in _header_block(current, str(current)):
            if tokens[0].lower() != "includeobj":
                continue
            target = _include_path(tokens, number, current, root, allow_outside)
            if target not in found and target != path.resolve():
                found.append(target)
                if target.is_file() and depth < MAX_INCLUDE_DEPTH:
                    todo.append((target, depth + 1))
    return tuple(found)


def iter_object_chunks(path: str | os.PathLike, *, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                       allow_outside: bool = False) -> Iterator[ObjectChunk]:
    """Stream the objects of an instance catalog, following ``includeobj`` files.

    Every line is checked: field count for the spatial model and dust blocks, numbers where
    numbers belong, known spatial model, no trailing fields. Memory stays bounded by a few
    chunks of ``chunk_bytes`` whatever the catalog size.

    Parameters
    ----------
    path : str or path-like
        Catalog file, plain text or gzip-compressed (told apart by content).
    chunk_bytes : int, default=8 MiB
        Uncompressed text per chunk [bytes]; each yielded chunk holds the objects of about
        this much text (fewer around ``includeobj`` lines).
    allow_outside : bool, default=False
        Follow ``includeobj`` files that resolve outside the catalog's folder.

    Yields
    ------
    ObjectChunk

    Raises
    ------
    InputError
        One line naming the file and line: a bad object line (which field and why), binary or
        truncated data, a missing or escaping ``includeobj`` file, a header keyword after the
        objects that disagrees with (or is missing from) the header.
    """
    path = Path(path)
    header = _HeaderLines(str(path))
    root = path.parent.resolve()
    with ThreadPoolExecutor(max_workers=_PARSE_THREADS,
                            thread_name_prefix="cputime-catalog-parse") as pool:
        yield from _iter_file(path, str(path), header, root, chunk_bytes, allow_outside, pool,
                              stack=(path.resolve(),))


def _iter_file(path: Path, source: str, header: _HeaderLines | None, root: Path,
               chunk_bytes: int, allow_outside: bool, pool: ThreadPoolExecutor,
               stack: tuple[Path, ...]) -> Iterator[ObjectChunk]:
    """Objects of one file (``header`` is None for included files), then of its includes."""
    first_line = 1
    seen_object = False
    pending: deque = deque()
    chunks = _prefetched(_text_chunks(path, source, chunk_bytes))
    try:
        for chunk in chunks:
            pending.append(pool.submit(_parse_chunk, chunk))
            if len(pending) <= _PARSE_THREADS:
                continue
            parsed = pending.popleft().result()
            yield from _emit(parsed, path, source, header, root, first_line, seen_object,
                             chunk_bytes, allow_outside, pool, stack)
            seen_object = seen_object or parsed.object_line.size > 0
            first_line += parsed.n_lines
        while pending:
            parsed = pending.popleft().result()
            yield from _emit(parsed, path, source, header, root, first_line, seen_object,
                             chunk_bytes, allow_outside, pool, stack)
            seen_object = seen_object or parsed.object_line.size > 0
            first_line += parsed.n_lines
    finally:
        for future in pending:
            future.cancel()
        chunks.close()


def _emit(parsed: _ParsedChunk, path: Path, source: str, header: _HeaderLines | None,
          root: Path, first_line: int, seen_object: bool, chunk_bytes: int,
          allow_outside: bool, pool: ThreadPoolExecutor,
          stack: tuple[Path, ...]) -> Iterator[ObjectChunk]:
    """Yield a parsed chunk's objects, handling its header and includeobj lines in order."""
    error_line = parsed.error[0] if parsed.error else parsed.n_lines
    done = 0  # objects of this chunk already yielded
    for index, text in parsed.other_lines:
        if index > error_line:
            break
        number = first_line + index
        tokens = _tokens(text)
        before = int(np.searchsorted(parsed.object_line, index))
        if tokens[0].lower() == "includeobj":
            target = _include_path(tokens, number, path, root, allow_outside)
            if not target.is_file():
                raise located(source, number, (
                    f"includeobj file '{tokens[1]}' not found (looked for {target}); put the "
                    "object files next to the catalog"))
            if target in stack:
                raise located(source, number, f"includeobj '{tokens[1]}' includes itself")
            if len(stack) > MAX_INCLUDE_DEPTH:
                raise located(source, number, (
                    f"includeobj '{tokens[1]}' nests more than {MAX_INCLUDE_DEPTH} files deep"))
            if not parsed.error:
                yield from _objects(parsed, done, before, source)
                done = before
            yield from _iter_file(target, str(target), None, root, chunk_bytes, allow_outside,
                                  pool, (*stack, target))
        elif header is None:
            raise located(source, number, (
                f"header keyword '{tokens[0]}' in an included object file; PhoSim reads header "
                "keywords only from the main catalog"))
        elif seen_object or before > 0:
            _check_late_keyword(header, tokens, number)
        else:
            _header_line(header, tokens, number, path, root, allow_outside)
    if parsed.error:  # the objects of a chunk with a bad line are not yielded
        raise located(source, first_line + parsed.error[0], parsed.error[1])
    yield from _objects(parsed, done, parsed.object_line.size, source)


def _check_late_keyword(header: _HeaderLines, tokens: list[str], number: int) -> None:
    """A keyword after object lines must repeat a header value (PhoSim would apply it)."""
    name = _CANONICAL.get(tokens[0].lower(), tokens[0].lower())
    if name not in header.values:
        raise located(header.source, number, (
            f"header keyword '{tokens[0]}' after the object lines; move it into the header "
            "(PhoSim applies it, but the header read for prediction ends at the first object)"))
    header.check_agrees(name, tokens[0], " ".join(tokens[1:]), number)


def _objects(parsed: _ParsedChunk, start: int, stop: int, source: str) -> Iterator[ObjectChunk]:
    if stop > start:
        codes = parsed.model_code[start:stop]
        yield ObjectChunk(ra=parsed.ra[start:stop], dec=parsed.dec[start:stop],
                          magnorm=parsed.magnorm[start:stop], model_code=codes,
                          is_point=codes == SPATIAL_MODELS.index("point"), source=source)


def read_catalog(path: str | os.PathLike, *, allow_outside: bool = False,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> tuple[CatalogHeader, pd.DataFrame]:
    """Header and all objects of a (small) catalog, as a table.

    Returns
    -------
    header : CatalogHeader
    objects : pandas.DataFrame
        Columns ``ra``, ``dec`` [degrees], ``magnorm`` [mag], ``model_code``, ``spatial_model``
        (categorical of :data:`SPATIAL_MODELS`), ``is_point``, ``source``; one row per object.
    """
    header = read_header(path, allow_outside=allow_outside)
    chunks = list(iter_object_chunks(path, chunk_bytes=chunk_bytes, allow_outside=allow_outside))
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
