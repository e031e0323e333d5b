"""Prediction rows as JSON, with the numbers ``cputime predict --format json`` writes.

The CLI writes through pandas (``double_precision=10``: each float rounded to 10 decimals);
the service writes the same numbers through orjson, about twice as fast on 60-column rows:
every float column is rounded as pandas rounds it, in one vectorised pass
(:func:`round_as_pandas_writes`), and orjson writes each rounded float in its shortest form,
which reads back as the same number.
"""

from __future__ import annotations

import numpy as np

__all__ = ["PRECISION", "pandas_rounded", "round_as_pandas_writes"]

#: Decimals pandas writes (``double_precision``) [digits].
PRECISION = 10
_SCALE = 10.0 ** PRECISION
#: Below this, ``whole * 10**10 + frac`` is an exact float64 integer.
_EXACT_WHOLE = 2.0 ** 53 / _SCALE
#: pandas writes numbers outside these in exponent notation, with 10 significant digits.
_FIXED_RANGE = (1e-15, 1e16 - 1)


def pandas_rounded(values: np.ndarray) -> np.ndarray:
    """The floats pandas' JSON writer (``double_precision=10``) writes for ``values``, read back.

    pandas splits ``|v|`` into its integer part and ``(|v| - whole) * 10**10``, rounds the latter
    half-up (a tie rounds to odd), and writes ``whole.frac``; the number read back is the float
    nearest that decimal: ``(whole * 10**10 + frac) / 10**10`` where that numerator is exact,
    else parsed from its digits (and from 10 significant digits outside ``_FIXED_RANGE``).
    NaN stays NaN.
    """
    values = np.asarray(values, dtype=float)
    magnitude = np.abs(values)
    whole = np.floor(magnitude)
    scaled = (magnitude - whole) * _SCALE
    frac = np.floor(scaled)
    diff = scaled - frac
    tie_up = (diff == 0.5) & ((frac == 0) | (np.fmod(frac, 2) == 1))
    frac = frac + ((diff > 0.5) | tie_up)
    rollover = (frac >= _SCALE) & (diff > 0.5)
    whole = np.where(rollover, whole + 1, whole)
    frac = np.where(rollover, 0.0, frac)
    with np.errstate(invalid="ignore"):
        rounded = np.copysign((whole * _SCALE + frac) / _SCALE, values)
        fixed = (magnitude >= _FIXED_RANGE[0]) & (magnitude <= _FIXED_RANGE[1])
        big = fixed & (whole >= _EXACT_WHOLE)
    # Rare (none in a visit's row): read back from the digits pandas writes.
    for i in np.flatnonzero(big):
        rounded[i] = np.copysign(float(f"{int(whole[i])}.{int(frac[i]):010d}"), values[i])
    for i in np.flatnonzero(~fixed & (magnitude > 0) & np.isfinite(values)):
        rounded[i] = float(f"{values[i]:.{PRECISION - 1}e}")
    return rounded


def round_as_pandas_writes(rows: list[dict]) -> list[dict]:
    """``rows`` (dicts with the same keys, Python numbers) with every float as pandas writes it
    (:func:`pandas_rounded`), changed in place: orjson then writes the CLI's numbers."""
    for key, first in (rows[0].items() if rows else ()):
        if not isinstance(first, float):
            continue
        column = np.array([row[key] for row in rows], dtype=float)
        rounded = pandas_rounded(column)
        for i in np.flatnonzero((rounded != column) & ~np.isnan(column)).tolist():
            rows[i][key] = float(rounded[i])
    return rows
