"""Feature tables as named numpy columns: what the prediction path computes on.

Reading a column of a pandas DataFrame, selecting columns and building frames cost tens of
microseconds each, which made a one-visit prediction cost ~50 ms of CPU; the cost model, the
sky correction, the range check and the walltime plan therefore compute on
:class:`FeatureColumns`, made once per request from a features table
(:meth:`FeatureColumns.from_frame`) or from plain arrays
(:func:`cputime.planning.predictions.predict_visits`, which builds no frame at all).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

__all__ = ["FeatureColumns", "as_columns", "distinct"]


class FeatureColumns:
    """Named 1-D float arrays of one length: a features table without pandas.

    It reads like the DataFrame it stands for where the model reads one: ``X[name]`` (an
    array), ``name in X``, ``X.columns`` and ``len(X)`` (rows).

    Parameters
    ----------
    arrays : mapping of str to array_like
        One array per column, each of ``n_rows`` values.
    n_rows : int
        Rows (needed for a table without columns).
    """

    def __init__(self, arrays: Mapping[str, np.ndarray], n_rows: int):
        self._arrays = dict(arrays)
        self._n = int(n_rows)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, names: Iterable[str] | None = None) -> FeatureColumns:
        """Columns ``names`` (all by default) of ``frame`` as floats, in one conversion.

        Text columns are read as numbers where they are ones and NaN elsewhere, as the cost
        model has always read them.
        """
        names = list(frame.columns if names is None else names)
        table = frame[names]
        text = [name for name, dtype in table.dtypes.items() if not is_numeric_dtype(dtype)]
        if text:
            table = table.assign(**{c: pd.to_numeric(table[c], errors="coerce") for c in text})
        matrix = np.ascontiguousarray(table.to_numpy(dtype=float, na_value=np.nan).T)
        return cls(dict(zip(names, matrix, strict=True)), len(frame))

    def __getitem__(self, name: str) -> np.ndarray:
        return self._arrays[name]

    def __contains__(self, name: object) -> bool:
        return name in self._arrays

    def __len__(self) -> int:
        return self._n

    @property
    def columns(self) -> list[str]:
        """Column names."""
        return list(self._arrays)

    def number(self, name: str, default: float) -> np.ndarray:
        """Column ``name`` with NaN read as ``default``; all ``default`` when absent."""
        if name not in self._arrays:
            return np.full(self._n, default, dtype=float)
        values = self._arrays[name]
        if np.isnan(default):
            return values
        return np.where(np.isnan(values), default, values)

    def take(self, rows: np.ndarray) -> FeatureColumns:
        """The rows selected by a boolean mask or an index array."""
        arrays = {name: values[rows] for name, values in self._arrays.items()}
        n = int(np.count_nonzero(rows)) if np.asarray(rows).dtype == bool else len(rows)
        return FeatureColumns(arrays, n)


def distinct(values: np.ndarray, return_inverse: bool = False):
    """``numpy.unique(values, return_inverse=...)``, without its sort when every value is the
    same (one request's rows mostly share a level, a group, a walltime: the sort and its
    set-up are most of the CPU of a small request).

    The inverse is flat, one index per element of ``values``.
    """
    values = np.asarray(values).ravel()
    if values.size and (values == values[0]).all():
        one = values[:1]
        return (one, np.zeros(values.size, dtype=np.intp)) if return_inverse else one
    if not return_inverse:
        return np.unique(values)
    unique, inverse = np.unique(values, return_inverse=True)
    return unique, inverse.ravel()


def as_columns(X: pd.DataFrame | FeatureColumns) -> FeatureColumns:
    """``X`` as :class:`FeatureColumns` (converted once when it is a DataFrame).

    Raises
    ------
    TypeError
        For anything else: features are read by name.
    """
    if isinstance(X, FeatureColumns):
        return X
    if not isinstance(X, pd.DataFrame):
        raise TypeError(
            f"X must be a pandas DataFrame with named feature columns, got {type(X).__name__}"
        )
    return FeatureColumns.from_frame(X)
