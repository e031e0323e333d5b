"""retrain refuses bad names, parameters and stores before any work, with one-line errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pandas as pd
import pytest
from sacct_synth import host_factors_csv, synthetic_sacct

from cputime.errors import InputError
from cputime.frontends.cli import main
from cputime.runs.retrain import check_model_name, check_regressor_params

REPO = Path(__file__).resolve().parents[1]
TWINKLES = REPO / "cputime" / "data" / "twinkles_run1_train.csv"
CATALOG_RUNS = REPO / "features" / "phosim_runs.csv"


def _files(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


@pytest.mark.parametrize("name", ["../../x", "a/b", "..", "", "-x", "x" * 101, "a b", "é"])
def test_bad_name_is_refused_before_anything_is_written(tmp_path, monkeypatch, capsys, name):
    work = tmp_path / "work" / "deeper"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    code = main(["retrain", f"--name={name}", "--runs-db", f"sqlite:///{work / 'runs.db'}",
                 "--tracking-uri", f"sqlite:///{work / 'mlflow.db'}"])
    assert code == 2
    # The library names its argument; the command line reports it.
    assert f"name: {name!r} is not a model name" in capsys.readouterr().err
    assert _files(tmp_path) == {tmp_path / "work", work}  # no store, no model, no plot


@pytest.mark.parametrize(
    ("params", "message"),
    [
        # Checked by the library, which names its argument regressor_params ...
        ("[1, 2]", "regressor_params: expected a JSON object"),
        ('"fast"', "regressor_params: expected a JSON object"),
        ('{"n_estimators": "x"}',
         "regressor_params: n_estimators: 'x' is not a whole number in [1, 10000]"),
        ('{"max_depth": 2.5}', "regressor_params: max_depth: 2.5 is not a whole number"),
        ('{"learning_rate": NaN}', "regressor_params: learning_rate: nan is not a number"),
        ('{"learning_rate": -1}', "regressor_params: learning_rate: -1 is not a number"),
        ('{"cv": true}', "regressor_params: cv: True is not a whole number"),
        ('{"bogus": 1}', "regressor_params: bogus: not a parameter (known: aft_loss_distribution,"),
        ('{"aft_loss_distribution": "cauchy"}',
         "regressor_params: aft_loss_distribution: 'cauchy' is not one of normal, logistic"),
        # ... and parsed by the command line, which names its option.
        ("{not json", "--regressor-params: not JSON"),
    ],
)
def test_bad_regressor_params_are_one_line_errors(tmp_path, capsys, params, message):
    code = main(["retrain", "--name", "m", "--runs-db", f"sqlite:///{tmp_path / 'runs.db'}",
                 f"--regressor-params={params}"])
    assert code == 2
    err = capsys.readouterr().err
    # The command line names the option where the library names its argument.
    flagged = message.replace("regressor_params:", "--regressor-params:", 1)
    assert err.startswith(f"cputime retrain: error: {flagged}")
    assert err.count("\n") == 1
    assert not (tmp_path / "runs.db").exists()
    if message.startswith("regressor_params:"):
        with pytest.raises(InputError, match=f"^{re.escape(message)}"):
            check_regressor_params(json.loads(params))


def test_checks_accept_good_values():
    assert check_model_name("cputime-test_2.1") == "cputime-test_2.1"
    params = {"n_estimators": 30, "learning_rate": 0.2, "cv": 3, "aft_loss_distribution": "normal"}
    assert check_regressor_params(params) == params
    assert check_regressor_params(None) is None
    with pytest.raises(InputError):
        check_model_name(None)


def test_runs_db_that_is_not_a_database(tmp_path, capsys):
    junk = tmp_path / "notes.txt"
    junk.write_text("these are my notes, not a database\n" * 100)
    before = junk.read_bytes()
    for command in (["runs", "-o", str(tmp_path / "r.csv")],
                    ["retrain", "--name", "m", "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}"]):
        assert main([*command, "--runs-db", f"sqlite:///{junk}"]) == 2
        err = capsys.readouterr().err
        assert "cannot open the runs store (file is not a database)" in err
    assert junk.read_bytes() == before  # never lose stored data
    assert main(["runs", "--runs-db", "postgresql+psycopg://u:secret@127.0.0.1:1/x",
                 "-o", str(tmp_path / "r.csv")]) == 2
    err = capsys.readouterr().err
    assert "cannot open the runs store" in err and "secret" not in err


def test_retrain_when_every_run_was_killed(tmp_path, capsys):
    if not CATALOG_RUNS.exists():
        pytest.skip(f"{CATALOG_RUNS} missing (cputime build-default makes it)")
    visits = pd.read_csv(TWINKLES, skipinitialspace=True).head(40).assign(runlimit=1)
    visits_path = tmp_path / "visits.csv"
    visits.to_csv(visits_path, index=False)
    sacct = tmp_path / "sacct.txt"
    sacct.write_text(synthetic_sacct(visits, 80, seed=2, failure_share=0.0))
    hosts = tmp_path / "hosts.csv"
    hosts.write_text(host_factors_csv())
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    assert main(["ingest", str(sacct), "--format", "sacct", "--visits", str(visits_path),
                 "--host-factors", str(hosts), "--runs-db", uri]) == 0
    report = json.loads(capsys.readouterr().out)[0]
    assert report["stored"] == 80
    code = main(["retrain", "--name", "m", "--runs-db", uri,
                 "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}", "--runs", str(CATALOG_RUNS)])
    err = capsys.readouterr().err
    assert code == 2
    assert "were killed at their time limit (censored)" in err and err.count("\n") == 1
