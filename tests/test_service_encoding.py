"""The service writes prediction rows with orjson, and the same numbers as the CLI (pandas'
JSON writer, 10 decimals)."""

import json

import numpy as np
import orjson
from pandas.io.json import ujson_dumps

from cputime.frontends.service.encoding import pandas_rounded, round_as_pandas_writes


def _pandas_reads(values) -> np.ndarray:
    written = json.loads(ujson_dumps(list(values), double_precision=10))
    return np.array([np.nan if x is None else x for x in written], dtype=float)


def test_floats_read_back_as_pandas_writes_them():
    rng = np.random.default_rng(0)
    n = 100_000
    values = np.concatenate([
        rng.uniform(-1, 1, n) * 10.0 ** rng.integers(-20, 22, n),  # every magnitude
        rng.integers(0, 10**6, 1000) / 8.0,  # exact binary fractions
        rng.integers(0, 10**6, 1000) * 1e-10 + 5e-11,  # ties at the 11th decimal
        [0.0, -0.0, 0.5, 2.5, 0.99999999995, 0.99999999999, 1e-16, 123456789.123456789, np.nan],
    ])
    np.testing.assert_array_equal(pandas_rounded(values), _pandas_reads(values))


def test_rows_written_by_orjson_read_as_pandas_writes_them():
    rows = [{"obshistid": k, "sensor": "R22_S11", "airmass": 1.0 + k / 3, "photons": 8.3e11 / 7,
             "n_objects": float("nan"), "fits_queue": True} for k in range(5)]
    expected = json.loads(ujson_dumps(rows, double_precision=10))
    assert json.loads(orjson.dumps(round_as_pandas_writes(rows))) == expected
