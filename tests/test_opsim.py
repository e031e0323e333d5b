"""OpSim databases and exports of both generations, read as PhoSim visit tables."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from cputime.errors import InputError
from cputime.frontends.cli import ExitStatus, main
from cputime.inputs.opsim import parse_visit_ids, read_opsim
from cputime.physics.features import read_visit_table, visit_features

DATA = Path(__file__).parent / "data"
SAMPLE = DATA / "opsim_visits_sample.csv"  # OpSim 3 export: radians, letters, obsHistID
TWINKLES = Path(__file__).resolve().parents[1] / "cputime" / "data" / "twinkles_run1_train.csv"
ANGLES = ["altitude", "moonAlt", "dist2Moon", "sunAlt"]


def _sample() -> pd.DataFrame:
    table = pd.read_csv(SAMPLE, comment="#")
    # Columns the sample lacks but every OpSim run has.
    table["night"] = np.arange(len(table)) // 10
    table["expMJD"] = 59580.0 + table["night"] + 0.1
    table["visitExpTime"] = 30.0
    table["rawSeeing"] = 0.7
    return table


def _write_db(path: Path, table_name: str, table: pd.DataFrame) -> Path:
    with sqlite3.connect(path) as db:
        table.to_sql(table_name, db, index=False)
    return path


@pytest.fixture
def opsim3_db(tmp_path) -> Path:
    return _write_db(tmp_path / "kraken_tiny.db", "Summary", _sample())


@pytest.fixture
def opsim4_db(tmp_path) -> Path:
    """The same visits as OpSim 4+ writes them: degrees and the newer names."""
    old = _sample()
    new = pd.DataFrame(
        {
            "observationId": old["obsHistID"],
            "night": old["night"],
            "observationStartMJD": old["expMJD"],
            "filter": old["filter"],
            "numExposures": 2,
            "visitExposureTime": 30.0,
            "visitTime": 34.0,
            "altitude": np.degrees(old["altitude"]),
            "airmass": old["airmass"],
            "moonAlt": np.degrees(old["moonAlt"]),
            "moonPhase": old["moonPhase"],
            "moonDistance": np.degrees(old["dist2Moon"]),
            "sunAlt": np.degrees(old["sunAlt"]),
            "seeingFwhm500": old["rawSeeing"],
            "skyBrightness": old["filtSkyBrightness"],
        }
    )
    return _write_db(tmp_path / "baseline_tiny.db", "observations", new)


def test_opsim3_export_is_converted_to_degrees_and_filter_numbers():
    visits = read_visit_table(SAMPLE)
    twinkles = pd.read_csv(TWINKLES, skipinitialspace=True)
    both = visits.merge(twinkles, on="obshistid", suffixes=("", "_twinkles"))
    assert len(both) == len(visits) == 160  # the sample's visits are Twinkles visits
    for column in ("altitude", "moonalt", "dist2moon", "sunalt", "moonphase", "filter"):
        assert_allclose(both[column], both[f"{column}_twinkles"], atol=1e-4, err_msg=column)
    assert (visits["nsnap"] == 2).all() and (visits["vistime"] == 33.0).all()


def test_both_generations_and_the_export_give_the_same_features(opsim3_db, opsim4_db):
    from_db3 = visit_features(read_visit_table(opsim3_db), ["R22_S11"])
    from_db4 = visit_features(read_visit_table(opsim4_db), ["R22_S11"])
    pd.testing.assert_frame_equal(from_db3, from_db4, check_exact=False, rtol=1e-9)
    assert read_opsim(opsim4_db)["night"].tolist() == _sample()["night"].tolist()
    assert not from_db3["sky_mag_per_arcsec2"].isna().any()


@pytest.mark.parametrize("db", ["opsim3_db", "opsim4_db"])
def test_where_selects_on_opsim_columns_and_the_database_is_read_only(db, request):
    path = request.getfixturevalue(db)
    before = path.read_bytes()
    visits = read_visit_table(path, where="night < 3 AND filter = 'r'")
    sample = _sample()
    expected = sample[(sample["night"] < 3) & (sample["filter"] == "r")]["obsHistID"]
    assert visits["obshistid"].tolist() == expected.tolist() and len(expected) > 0
    with pytest.raises(InputError, match="^--where: .*one condition"):
        read_visit_table(path, where="1; DROP TABLE Summary")
    with pytest.raises(InputError, match="^--where: 'nonsense > 1': no such column"):
        read_visit_table(path, where="nonsense > 1")
    assert path.read_bytes() == before


def test_where_reads_the_same_on_the_csv_export():
    visits = read_visit_table(SAMPLE, where="filter = 'u' AND moonAlt > 0")
    sample = _sample()
    expected = sample[(sample["filter"] == "u") & (sample["moonAlt"] > 0)]["obsHistID"]
    assert visits["obshistid"].tolist() == expected.tolist() and len(expected) > 0


def test_visits_selection_and_unknown_ids(opsim4_db, tmp_path):
    ids = tmp_path / "ids.txt"
    ids.write_text("1637\n185880\n")
    assert parse_visit_ids(f"@{ids}") == [1637, 185880]
    visits = read_visit_table(opsim4_db, visits=[185880, 1637])
    assert sorted(visits["obshistid"]) == [1637, 185880]
    with pytest.raises(InputError, match=r"^--visits: 1 visits not in .*: 7$"):
        read_visit_table(opsim4_db, visits=[1637, 7])
    with pytest.raises(InputError, match="^--visits: 'x1'"):
        parse_visit_ids("1,x1")


def test_a_bad_filter_is_reported_at_its_file_line(tmp_path):
    lines = SAMPLE.read_text().splitlines()
    header = next(i for i, line in enumerate(lines) if not line.startswith("#"))
    lines[header + 3] = lines[header + 3].replace(",i,", ",w,", 1)
    bad = tmp_path / "bad.csv"
    bad.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=rf"^{bad}:{header + 4}: filter: 'w' is not a filter"):
        read_visit_table(bad)


def test_not_an_opsim_database(tmp_path):
    path = _write_db(tmp_path / "other.db", "things", pd.DataFrame({"a": [1]}))
    with pytest.raises(InputError, match="no OpSim table .*tables: things"):
        read_visit_table(path)
    text = tmp_path / "text.db"
    text.write_text("not sqlite\n")
    with pytest.raises(InputError, match="text.db: not an SQLite database"):
        read_visit_table(text)


def test_an_opsim_table_without_the_moon_is_refused(tmp_path):
    table = _sample().drop(columns=["moonPhase"])
    path = _write_db(tmp_path / "nomoon.db", "Summary", table)
    with pytest.raises(InputError, match="opsim3 table lacks moonPhase"):
        read_visit_table(path)


def test_predict_reads_the_opsim_export(capsys):
    status = main(["predict", str(SAMPLE), "-o", "-", "--format", "json"])
    out, err = capsys.readouterr()
    assert status == ExitStatus.OK, err
    rows = json.loads(out)
    assert len(rows) == 160 and {r["filter"] for r in rows} == set("ugrizy")


def test_plan_writes_predictions_summaries_and_a_plot(opsim4_db, tmp_path, capsys):
    out = tmp_path / "plan"
    argv = ["plan", str(opsim4_db), "--sensors", "R22_S11,R01_S00", "--where", "night < 5",
            "--queue-max", "2880", "-o", str(out), "--format", "csv"]  # fmt: skip
    status = main(argv)
    printed, err = capsys.readouterr()
    assert status == ExitStatus.OK, err
    predictions = pd.read_csv(out / "predictions.csv")
    assert len(predictions) == 2 * 50  # nights 0..4, ten visits each, two sensors
    total = json.loads(printed)
    assert total["jobs"] == 100 and total["visits"] == 50
    assert total["jobs_segmented"] == int((predictions["segments"] > 1).sum()) > 0
    assert total["cpu_hours_p50"] == pytest.approx(predictions["cpu_seconds_p50"].sum() / 3600)
    by_filter = pd.read_csv(out / "summary_by_filter.csv")
    by_night = pd.read_csv(out / "summary_by_night.csv")
    assert by_night["night"].tolist() == [0, 1, 2, 3, 4]
    for table in (by_filter, by_night):
        assert table["jobs"].sum() == 100
        assert table["cpu_hours_upper"].sum() == pytest.approx(total["cpu_hours_upper"], rel=1e-4)
    assert list(by_filter["filter"]) == [f for f in "ugrizy" if f in set(by_filter["filter"])]
    assert json.loads((out / "summary.json").read_text())["queue_max_seconds"] == 2880 * 60
    assert (out / "plan.png").stat().st_size > 10_000
