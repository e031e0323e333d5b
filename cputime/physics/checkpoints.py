"""How PhoSim 3.4 splits one job into checkpoint segments.

PhoSim's raytrace loops over 73 *source types* (``source/raytrace/photonloop.cpp``):

- 0–9: dome light, 10–19: the dark sky, 20–29: the moon (each sky's sources split by
  ``index mod 10``, so each of those types holds a tenth of that light);
- 30: astronomical sources fainter than magnorm 40.5; 31–71: one magnitude bin each
  (type ``s`` holds ``70.5 - s < m <= 71.5 - s``); 72: sources brighter than magnorm -0.5.

With ``checkpointtotal T``, run ``k`` (``checkpointcount`` 0..T) traces the types with
``s * T // 72 == k`` (integer arithmetic), so a job is ``T + 1`` separate PhoSim runs, each paying
the set-up again. A type cannot be split: one bright star's cost lands in one segment, and with
``T = 1`` everything but type 72 is in the first segment.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "N_SOURCE_TYPES",
    "DARK_SKY_TYPES",
    "MOON_TYPES",
    "MAX_CHECKPOINTTOTAL",
    "SOURCE_TYPES_WITH_PHOTON_COLUMNS",
    "SOURCE_TYPE_PHOTON_COLUMNS",
    "source_type_of_magnitude",
    "segment_of_source_type",
    "segment_first_types",
    "segment_seconds",
    "every_split_seconds",
]

#: Source types of PhoSim's raytrace loop.
N_SOURCE_TYPES = 73

#: Types holding the dark sky's and the moon's sky sources, a tenth of each sky per type.
DARK_SKY_TYPES = np.arange(10, 20)
MOON_TYPES = np.arange(20, 30)

#: Source types of astronomical sources (30..72), and the feature columns holding the photons
#: of each on a sensor (faint stars and galaxies; the brightest stars have their own columns).
SOURCE_TYPES_WITH_PHOTON_COLUMNS = np.arange(30, 73)
SOURCE_TYPE_PHOTON_COLUMNS: tuple[str, ...] = tuple(
    f"photons_source_type_{s}" for s in SOURCE_TYPES_WITH_PHOTON_COLUMNS
)

#: Largest useful ``checkpointtotal``: beyond 72 a segment holds less than one source type.
MAX_CHECKPOINTTOTAL = 72


def source_type_of_magnitude(magnorm: np.ndarray) -> np.ndarray:
    """PhoSim source type of astronomical sources.

    Parameters
    ----------
    magnorm : array_like
        The catalog's magnorm [mag].

    Returns
    -------
    numpy.ndarray of int
        Source type 30..72: ``floor(71.5 - m)`` clipped to [30, 72].
    """
    magnorm = np.asarray(magnorm, dtype=float)
    return np.clip(np.floor(71.5 - magnorm), 30, 72).astype(int)


def segment_of_source_type(source_type: np.ndarray, checkpointtotal: int) -> np.ndarray:
    """Segment (``checkpointcount``) that traces each source type.

    Parameters
    ----------
    source_type : array_like of int
        Source types 0..72.
    checkpointtotal : int
        PhoSim's ``checkpointtotal`` T, 0..72 [unitless].

    Returns
    -------
    numpy.ndarray of int
        ``source_type * T // 72``, in 0..T.
    """
    if not 0 <= checkpointtotal <= MAX_CHECKPOINTTOTAL:
        raise ValueError(f"checkpointtotal must be in 0..{MAX_CHECKPOINTTOTAL}")
    return np.asarray(source_type, dtype=int) * int(checkpointtotal) // MAX_CHECKPOINTTOTAL


def segment_first_types(checkpointtotal: int) -> np.ndarray:
    """First source type of each segment, plus 73 at the end.

    Parameters
    ----------
    checkpointtotal : int
        PhoSim's ``checkpointtotal`` T [unitless].

    Returns
    -------
    numpy.ndarray of int, shape (T + 2,)
        Segment ``k`` traces the types ``first[k] <= s < first[k + 1]``: the smallest ``s`` with
        ``s * T // 72 == k`` is ``ceil(72 k / T)``.
    """
    segment_of_source_type(np.zeros(1), checkpointtotal)  # validates the range
    if checkpointtotal == 0:
        return np.array([0, N_SOURCE_TYPES])
    k = np.arange(checkpointtotal + 1)
    first = -(-MAX_CHECKPOINTTOTAL * k // checkpointtotal)
    return np.append(first, N_SOURCE_TYPES)


def segment_seconds(
    type_seconds: np.ndarray, setup_seconds: np.ndarray, checkpointtotal: int
) -> np.ndarray:
    """CPU of each segment of a job split with ``checkpointtotal``.

    Parameters
    ----------
    type_seconds : array_like, shape (n_jobs, 73)
        CPU of each source type [s].
    setup_seconds : array_like, shape (n_jobs,)
        CPU every segment pays before tracing (atmosphere, optics, trim) [s].
    checkpointtotal : int
        PhoSim's ``checkpointtotal`` T [unitless].

    Returns
    -------
    numpy.ndarray, shape (n_jobs, T + 1)
        Set-up plus the CPU of the types each segment traces [s].
    """
    first = segment_first_types(checkpointtotal)
    return _traced(type_seconds, first[:-1], first[1:]) + _per_job(setup_seconds)


def every_split_seconds(type_seconds: np.ndarray, setup_seconds: np.ndarray) -> np.ndarray:
    """:func:`segment_seconds` of every ``checkpointtotal`` at once.

    Parameters
    ----------
    type_seconds : array_like, shape (n_jobs, 73)
        CPU of each source type [s].
    setup_seconds : array_like, shape (n_jobs,)
        CPU every segment pays before tracing [s].

    Returns
    -------
    numpy.ndarray, shape (n_jobs, 73, 73)
        ``[:, T, k]``: CPU of segment k of the split with ``checkpointtotal`` T [s]; NaN for
        ``k > T``.
    """
    traced = _traced(type_seconds, _EVERY_SPLIT_FIRST, _EVERY_SPLIT_END)
    return np.where(_EVERY_SPLIT_USED, traced + _per_job(setup_seconds)[:, :, None], np.nan)


def _traced(type_seconds: np.ndarray, first: np.ndarray, end: np.ndarray) -> np.ndarray:
    """CPU of the types ``first <= s < end`` of each job (any shape of bounds) [s]."""
    type_seconds = np.atleast_2d(np.asarray(type_seconds, dtype=float))
    cumulative = np.concatenate(
        [np.zeros((len(type_seconds), 1)), np.cumsum(type_seconds, axis=1)], axis=1
    )
    return cumulative[:, end] - cumulative[:, first]


def _per_job(setup_seconds: np.ndarray) -> np.ndarray:
    return np.asarray(setup_seconds, dtype=float).reshape(-1, 1)


def _every_split_bounds() -> tuple[np.ndarray, np.ndarray]:
    """First and end type of segment k of each split T, shape (73, 73); empty beyond T."""
    first = np.full((MAX_CHECKPOINTTOTAL + 1,) * 2, N_SOURCE_TYPES)
    end = first.copy()
    for total in range(MAX_CHECKPOINTTOTAL + 1):
        bounds = segment_first_types(total)
        first[total, : total + 1], end[total, : total + 1] = bounds[:-1], bounds[1:]
    return first, end


_EVERY_SPLIT_FIRST, _EVERY_SPLIT_END = _every_split_bounds()
_EVERY_SPLIT_USED = (
    np.arange(MAX_CHECKPOINTTOTAL + 1)[None, :] <= np.arange(MAX_CHECKPOINTTOTAL + 1)[:, None]
)
