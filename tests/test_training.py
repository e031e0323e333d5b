"""Tests of cputime.runs.training's table readers: host slowdowns and the errors naming fields."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cputime.errors import InputError
from cputime.runs.training import load_training_table

ROOT = Path(__file__).resolve().parents[1]
TWINKLES = ROOT / "cputime" / "data" / "twinkles_run1_train.csv"
FACTORS = ROOT / "cputime" / "data" / "twinkles_host_factors.csv"


def _twinkles(**options) -> pd.DataFrame:
    return load_training_table(TWINKLES, target="cputime", censored_col="runlimit", **options)


def test_twinkles_host_factors_file_gives_the_stored_reference_seconds():
    # The shipped file is in the older convention (reference seconds per host second, 1.71 for
    # the fastest class): read as host slowdowns, it gives the stored reference-host CPU.
    table = _twinkles(host_col="hostname", host_slowdowns=FACTORS)
    stored = pd.read_csv(ROOT / "features" / "twinkles_run1.csv")
    assert table["obshistid"].tolist() == stored["obshistid"].tolist()
    assert table["cpu_seconds_ref"].to_numpy() == pytest.approx(
        stored["cpu_seconds_ref"].to_numpy(), rel=1e-14
    )
    raw = pd.read_csv(TWINKLES, skipinitialspace=True)
    fastest = (raw["hostname"] == 3).to_numpy()
    assert table["cpu_seconds_ref"].to_numpy()[fastest] == pytest.approx(
        raw["cputime"].to_numpy()[fastest] * 1.71, rel=1e-14
    )


def test_host_slowdowns_file_and_the_older_keyword(tmp_path):
    slowdowns = tmp_path / "hosts.csv"
    slowdowns.write_text("host,host_slowdown\n3,0.5\n*,1.0\n")
    table = _twinkles(host_col="hostname", host_slowdowns=slowdowns)
    plain = _twinkles()
    fastest = (pd.read_csv(TWINKLES, skipinitialspace=True)["hostname"] == 3).to_numpy()
    assert (table["cpu_seconds_ref"][fastest] == 2 * plain["cpu_seconds_ref"][fastest]).all()
    assert (table["cpu_seconds_ref"][~fastest] == plain["cpu_seconds_ref"][~fastest]).all()
    with pytest.warns(DeprecationWarning, match="host_factors= is deprecated; use host_slowdowns="):
        old = _twinkles(host_col="hostname", host_factors=slowdowns)
    pd.testing.assert_frame_equal(old, table)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"target": "nope"}, r"twinkles_run1_train\.csv: target: no column 'nope'"),
        ({"censored_col": "killed"}, r"twinkles_run1_train\.csv: censored_col: no column 'killed'"),
        ({"host_col": "node", "host_slowdowns": FACTORS},
         r"twinkles_run1_train\.csv: host_col: no column 'node'"),
        ({"host_col": "hostname"}, r"^host_col, host_slowdowns: give both or neither$"),
        ({"host_slowdowns": FACTORS}, r"^host_col, host_slowdowns: give both or neither$"),
    ],
)
def test_errors_name_the_argument(options, message):
    with pytest.raises(InputError, match=message):
        load_training_table(TWINKLES, **{"target": "cputime", **options})
