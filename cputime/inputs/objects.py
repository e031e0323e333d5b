"""The object lines of a PhoSim instance catalog, parsed a chunk at a time.

An object line is ``object ID RA DEC MAGNORM SED REDSHIFT GAMMA1 GAMMA2 KAPPA DRA DDEC MODEL
PARAMS... DUST_REST [AV RV] DUST_LAB [AV RV]``. A chunk of lines is checked with vectorised code
(a full-line regular expression run by Arrow's RE2 engine, then Arrow's number parser and
numpy range checks); only when a line fails does a per-line Python pass run, to say exactly
which field is wrong.

What PhoSim accepts was read from its source: ``Observation::addSource`` in
``source/raytrace/observation.cpp`` (spatial models and their parameter counts, dust blocks) of
PhoSim's public release (github.com/zym1998year/phosim_release, a copy of the PhoSim 5 release;
github.com/enhsin/diagrid-phosim holds the 3.x code, with the same rules). ``knots`` is imSim's
extension (4 parameters, like ``sersic2d``). The positions and magnitudes the predictions read
must be in :data:`cputime.inputs.validation.OBJECT_RANGES`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from cputime.inputs.lines import (
    BINARY_MESSAGE,
    NUMBER,
    NUMBER_RE,
    LineError,
    decode_line,
    meaningful_lines,
    tokens,
)
from cputime.inputs.validation import OBJECT_RANGES, range_problem

__all__ = ["SPATIAL_MODELS", "SPATIAL_MODEL_N_PARAMS", "ParsedChunk", "parse_chunk"]

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
_RANGED_FIELDS = (2, 3, 4)  # ra, dec, magnorm: checked against OBJECT_RANGES

_SEP = r"[ \t]+"
_TOKEN = r"[^\x00-\x20\x7f]+"  # any run of printable characters (UTF-8 allowed)


def _full_object_line_regex() -> str:
    """RE2 pattern that matches exactly the valid object lines (lower-case ``object`` keyword)."""
    def params(n: int) -> str:
        return f"(?:{_SEP}{NUMBER}){{{n}}}" if n else ""

    models = [f"(?i:{name}){params(SPATIAL_MODEL_N_PARAMS[_MODEL_ALIASES.get(name, name)])}"
              for name in _MODEL_NAMES]
    models.append(f"[^\\x00-\\x20\\x7f]*(?i:fit)[^\\x00-\\x20\\x7f]*{params(2)}")
    dust = f"(?:(?i:none)|(?i:ccm|calzetti){_SEP}{NUMBER}{_SEP}{NUMBER})"
    return (f"object{_SEP}{_TOKEN}{_SEP}{NUMBER}{_SEP}{NUMBER}{_SEP}{NUMBER}{_SEP}{_TOKEN}"
            f"{params(6)}{_SEP}(?:{'|'.join(models)}){_SEP}{dust}{_SEP}{dust}[ \\t\\r]*\\n")


_OBJECT_LINE = _full_object_line_regex()
_OBJECT_LINE_PATTERN = f"^{_OBJECT_LINE}$"
_OBJECT_LINES_PATTERN = f"\\A(?:{_OBJECT_LINE})*\\z"  # a whole chunk of object lines


def _number(token: str, index: int, name: str) -> float:
    where = f"field {index + 1} ({name})"
    if not NUMBER_RE.fullmatch(token):
        raise LineError(f"{where}: '{token}' is not a number")
    value = float(token)
    if not math.isfinite(value):
        raise LineError(f"{where}: '{token}' is not a finite number")
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
            raise LineError(f"field {index + 1} ({name}) is missing: {what} "
                            f"(the line has {len(tokens)} fields)")
        return tokens[index]

    fixed_what = "an object line has at least 16 fields"
    for i, name in enumerate(_OBJECT_FIELD_NAMES):
        need(i, name, fixed_what)
    values = [_number(tokens[i], i, _OBJECT_FIELD_NAMES[i]) for i in _NUMERIC_FIXED_FIELDS]
    code = _model_code(tokens[12])
    if code is None:
        known = ", ".join(m for m in SPATIAL_MODELS if m != "image")
        raise LineError(f"field 13 (spatialmodel): unknown spatial model '{tokens[12]}' "
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
            raise LineError(f"field {i + 1} ({block}): '{tokens[i]}' is not a dust model "
                            "(none, CCM or calzetti)")
        i += 1
        if dust != "none":
            for par in ("Av", "Rv"):
                _number(need(i, f"{block} {par}", f"{tokens[i - 1 - (par == 'Rv')]} needs Av "
                                                  "and Rv"), i, f"{block} {par}")
                i += 1
    if len(tokens) > i:
        raise LineError(f"field {i + 1}: unexpected extra field '{tokens[i]}' after the "
                        f"dust_lab block (this object line should have {i} fields)")
    for index, value in zip(_RANGED_FIELDS, values, strict=False):
        name = _OBJECT_FIELD_NAMES[index]
        problem = range_problem(name, value, tokens[index], OBJECT_RANGES)
        if problem is not None:
            raise LineError(f"field {index + 1} ({name}): {problem}")
    return values[0], values[1], values[2], code


@dataclass
class ParsedChunk:
    """What a worker found in one chunk; line indices are 0-based within the chunk."""

    n_lines: int
    ra: np.ndarray
    dec: np.ndarray
    magnorm: np.ndarray
    model_code: np.ndarray
    object_line: np.ndarray
    other_lines: list[tuple[int, str]]
    error: tuple[int, str] | None = None


def parse_chunk(data: bytes | memoryview) -> ParsedChunk:
    """Parse a newline-terminated chunk: vectorised for object lines, per line for the rest.

    A chunk of mostly short lines (blank and comment lines) is first packed into its
    meaningful lines, so that the per-line arrays and the per-line Python pass stay small
    however many such lines there are.
    """
    buf = np.frombuffer(data, dtype=np.uint8)
    if np.count_nonzero(buf == 10) * _SHORT_LINE_BYTES <= buf.size:
        return _parse_lines(data, buf)
    index, start, end, n_lines = meaningful_lines(data)
    if index.size == 0:
        return ParsedChunk(n_lines, *_NO_OBJECTS, object_line=index, other_lines=[])
    # Keep the bytes between each line's start and end: +1 where a kept line starts, -1 where
    # it ends, summed along the text (a line ending where the next starts stays kept).
    edges = np.zeros(buf.size + 1, dtype=np.int8)
    edges[start] += 1
    edges[end] -= 1
    packed = buf[np.cumsum(edges[:-1], dtype=np.int8).astype(bool)].tobytes()
    parsed = _parse_lines(packed, np.frombuffer(packed, dtype=np.uint8))
    parsed.n_lines = n_lines
    parsed.object_line = index[parsed.object_line]
    parsed.other_lines = [(int(index[i]), text) for i, text in parsed.other_lines]
    if parsed.error is not None:
        parsed.error = (int(index[parsed.error[0]]), parsed.error[1])
    return parsed


#: Average line length [bytes] under which a chunk is packed first: object lines are longer.
_SHORT_LINE_BYTES = 32


def _parse_lines(data: bytes | memoryview, buf: np.ndarray) -> ParsedChunk:
    """:func:`parse_chunk` of a chunk, ``buf`` its bytes."""
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
    # Other lines but blank and comment ones (told by their first byte) are looked at one by one.
    other_line = np.flatnonzero(~is_object)
    first = buf[starts[other_line]]
    other_line = other_line[(first != 10) & (first != 35)]
    other = [(int(i), bytes(data[starts[i]:starts[i + 1]])) for i in other_line]

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
    result = ParsedChunk(n_lines, ra, dec, magnorm, model_code, object_line, other_lines=[])
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
    valid = np.isfinite(numbers).all(axis=1)
    for column, index in enumerate(_RANGED_FIELDS):
        valid &= OBJECT_RANGES[_OBJECT_FIELD_NAMES[index]].mask(numbers[:, column])
    if not valid.all():
        index = int(np.argmin(valid))
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
    text = decode_line(raw)
    if text is None:
        return BINARY_MESSAGE
    try:
        _parse_object_tokens(tokens(text))
    except LineError as exc:
        return str(exc)
    return "not a valid object line (unexpected characters or spacing)"


def _add_other_lines(result: ParsedChunk, other: list[tuple[int, bytes]]) -> None:
    """Keep header/include lines for the reader; parse object lines written unusually."""
    extra: list[tuple[int, float, float, float, int]] = []
    for index, raw in other:
        text = decode_line(raw)
        if text is None:
            if result.error is None or index < result.error[0]:
                result.error = (index, BINARY_MESSAGE)
            return
        fields = tokens(text)
        if not fields or fields[0].startswith("#"):
            continue
        if fields[0].lower() != "object":
            result.other_lines.append((index, text.strip()))
            continue
        try:
            extra.append((index, *_parse_object_tokens(fields)))
        except LineError as exc:
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
