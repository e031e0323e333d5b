"""The command line, run in-process: outputs, exit statuses and one-line errors."""

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cputime.cli import ExitStatus, main
from cputime.predictions import PREDICTION_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
CATALOG = ROOT / "examples" / "catalogs" / "visit230_first200.txt"
RUN_CATALOG = DATA / "phosim_runs" / "base" / "catalog.txt"
RUN_COMMANDS = DATA / "phosim_runs" / "base" / "commands.txt"
REQUIRED_FEATURES = [
    "obshistid", "sensor", "filter", "vistime", "nsnap", "airmass", "moonalt", "moonphase",
    "dist2moon", "sunalt", "seeing", "sky_mag_per_arcsec2", "brightest_star_mag",
    "n_stars_brighter_than_10", "n_stars_brighter_than_13", "n_stars_brighter_than_16",
    "n_objects", "n_galaxies",
]  # fmt: skip


def run(*argv, capsys):
    status = main([str(a) for a in argv])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_features_of_a_catalog_for_all_sensors(tmp_path, capsys):
    out = tmp_path / "features.csv"
    status, _, err = run("features", CATALOG, "-o", out, capsys=capsys)
    assert status == ExitStatus.OK, err
    table = pd.read_csv(out)
    assert len(table) == 189
    assert set(REQUIRED_FEATURES) <= set(table.columns)
    assert table["n_objects"].sum() > 0


def test_features_to_parquet_with_sensor_list(tmp_path, capsys):
    out = tmp_path / "features.parquet"
    status, _, err = run(
        "features", CATALOG, "--sensors", "R22_S11,R01_S00", "-o", out, capsys=capsys
    )
    assert status == ExitStatus.OK, err
    assert list(pd.read_parquet(out)["sensor"]) == ["R22_S11", "R01_S00"]


def test_predict_runs_in_input_order_with_commands(tmp_path, capsys):
    out = tmp_path / "pred.csv"
    status, _, err = run(
        "predict",
        RUN_CATALOG,
        CATALOG,
        RUN_CATALOG,
        "--sensors",
        "R22_S11",
        "--commands",
        RUN_COMMANDS,
        "-o",
        out,
        capsys=capsys,
    )
    assert status == ExitStatus.OK, err
    table = pd.read_csv(out)
    assert list(table.columns[: len(PREDICTION_COLUMNS)]) == PREDICTION_COLUMNS
    assert list(table["obshistid"]) == [9003, 230, 9003]
    assert (table["cpu_seconds_upper"] >= table["cpu_seconds_p50"]).all()
    assert (table["walltime_seconds"] % 60 == 0).all()
    assert table["slurm_time"].str.match(r"^\d+-\d\d:\d\d:\d\d$").all()


def test_predict_visit_table_one_row_per_visit_and_queue_split(tmp_path, capsys):
    visits = tmp_path / "visits.csv"
    pd.DataFrame(
        {
            "obshistid": [1, 2],
            "filter": [2, 1],
            "altitude": [70.0, 40.0],
            "moonalt": [-30.0, 60.0],
            "moonphase": [5.0, 95.0],
            "dist2moon": [120.0, 30.0],
            "sunalt": [-40.0, -30.0],
        }
    ).to_csv(visits, index=False)
    status, out, err = run(
        "predict", visits, "--queue-max", "4h", "-o", "-", "--format", "jsonl", capsys=capsys
    )
    assert status == ExitStatus.OK, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["sensor"] for r in rows] == ["R22_S11", "R22_S11"]
    moon = rows[1]
    assert moon["cpu_seconds_p50"] > rows[0]["cpu_seconds_p50"]
    assert moon["segments"] > 1 and moon["checkpointtotal"] == moon["segments"] - 1
    assert moon["walltime_seconds"] <= 4 * 3600


def test_threads_and_host_factor_shorten_the_walltime(capsys):
    status, out, _ = run(
        "predict", RUN_CATALOG, "--sensors", "R22_S11", "-o", "-", "--format", "json", capsys=capsys
    )
    one = json.loads(out)[0]
    status, out, _ = run(
        "predict",
        RUN_CATALOG,
        "--sensors",
        "R22_S11",
        "--threads",
        "4",
        "--host-factor",
        "0.5",
        "-o",
        "-",
        "--format",
        "json",
        capsys=capsys,
    )
    four = json.loads(out)[0]
    assert status == ExitStatus.OK
    assert four["walltime_seconds"] < one["walltime_seconds"]
    assert four["cpu_seconds_upper"] == one["cpu_seconds_upper"]


def _bad_object_catalog(tmp_path: Path) -> Path:
    text = CATALOG.read_text().splitlines()
    text[25] = text[25].replace("sersic2d", "sersic2d x1", 1)
    path = tmp_path / "bad.txt"
    path.write_text("\n".join(text) + "\n")
    return path


def _truncated_gzip(tmp_path: Path) -> Path:
    data = gzip.compress(CATALOG.read_bytes())
    path = tmp_path / "cut.txt.gz"
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize(
    "make, message",
    [
        (_bad_object_catalog, r"bad\.txt:26: "),
        (_truncated_gzip, r"cut\.txt\.gz: .*truncated"),
        (lambda tmp: tmp / "missing.txt", r"missing\.txt"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, make, message):
    status, _, err = run("features", make(tmp_path), "-o", tmp_path / "o.csv", capsys=capsys)
    assert status == ExitStatus.BAD_INPUT
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert pd.Series([err]).str.contains(message).all(), err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--sensors", "R99_S11"], "R99_S11"),
        (["--queue-max", "forever"], "--queue-max"),
        (["--threads", "0"], "--threads"),
        (["--model", "/nonexistent/model"], "nonexistent"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(capsys, argv, message):
    status, _, err = run("predict", RUN_CATALOG, *argv, capsys=capsys)
    assert status == ExitStatus.BAD_INPUT, err
    assert message in err and len(err.strip().splitlines()) == 1


def test_train_from_the_twinkles_csv_and_predict_with_it(tmp_path, capsys):
    table = pd.read_csv(
        ROOT / "cputime" / "data" / "twinkles_run1_train.csv", skipinitialspace=True
    ).iloc[:150]
    source = tmp_path / "twinkles.csv"
    table.to_csv(source, index=False)
    model_dir = tmp_path / "model"
    status, out, err = run(
        "train",
        source,
        "--target",
        "cputime",
        "--censored-col",
        "runlimit",
        "--host-col",
        "hostname",
        "--host-factors",
        ROOT / "cputime" / "data" / "twinkles_host_factors.csv",
        "--runs",
        ROOT / "features" / "phosim_runs.csv",
        "--out",
        model_dir,
        capsys=capsys,
    )
    assert status == ExitStatus.OK, err
    summary = json.loads(out)
    assert summary["training_rows"] == 150
    assert (model_dir / "booster.json").exists() and (model_dir / "metadata.json").exists()
    status, out, err = run(
        "predict",
        RUN_CATALOG,
        "--sensors",
        "R22_S11",
        "--model",
        model_dir,
        "-o",
        "-",
        capsys=capsys,
    )
    assert status == ExitStatus.OK, err
    assert "R22_S11" in out


def test_train_with_a_missing_target_column(tmp_path, capsys):
    status, _, err = run(
        "train", ROOT / "features" / "twinkles_run1.csv", "--target", "nope", capsys=capsys
    )
    assert status == ExitStatus.BAD_INPUT and "'nope'" in err


def test_every_command_has_help_with_an_example(capsys):
    for command in (
        "features",
        "predict",
        "train",
        "evaluate",
        "build-default",
        "ingest",
        "runs",
        "retrain",
        "monitor",
        "serve",
        "slurm",
    ):
        with pytest.raises(SystemExit) as exit_info:
            main([command, "--help"])
        assert exit_info.value.code == 0
        assert "example:" in capsys.readouterr().out


def test_evaluate_with_a_given_model_writes_metrics_and_plots(tmp_path, capsys):
    table = pd.read_csv(ROOT / "features" / "twinkles_run1.csv").sample(160, random_state=1)
    source = tmp_path / "jobs.csv"
    table.to_csv(source, index=False)
    report = tmp_path / "report"
    status, out, err = run(
        "evaluate",
        source,
        "--folds",
        "2",
        "--model",
        ROOT / "models" / "default",
        "-o",
        report,
        capsys=capsys,
    )
    assert status == ExitStatus.OK, err
    summary = json.loads(out)
    assert "default vdefault [as given]" in summary["twinkles_cv"]
    assert "twinkles 2016 forest [kfold]" in summary["twinkles_cv"]
    assert summary["phosim_runs"]["loro"]["killed_predicted_above"] == 1.0
    for name in (
        "predicted_vs_actual.png",
        "coverage.png",
        "tradeoff.png",
        "runs_bright_star.png",
        "metrics.json",
    ):
        assert (report / name).stat().st_size > 0


#: Libraries that take most of a second to import: only the commands that need them load them.
HEAVY_LIBRARIES = ("pandas", "sklearn", "scipy", "xgboost", "mlflow", "fastapi", "pyarrow")

_IMPORTED = """
import sys
{code}
loaded = {{name.split(".")[0] for name in sys.modules}}
print("\\nheavy:" + ",".join(sorted(loaded & set(sys.argv[1:]))))
"""


def _heavy_imports(code: str) -> list[str]:
    """Heavy libraries in sys.modules after running ``code`` in a fresh interpreter."""
    path = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    out = subprocess.run(
        [sys.executable, "-c", _IMPORTED.format(code=code), *HEAVY_LIBRARIES],
        capture_output=True, text=True, env=env, check=True,
    ).stdout  # fmt: skip
    last = out.rstrip("\n").rsplit("\n", 1)[-1]  # after any help text the command printed
    return [name for name in last.removeprefix("heavy:").split(",") if name]


@pytest.mark.parametrize("code", ["import cputime", "import cputime.cli"])
def test_importing_the_package_loads_no_heavy_library(code):
    assert _heavy_imports(code) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["predict", "--help"],
        ["no-such-command"],
        ["predict"],
        ["slurm", "visit.txt", "--format", "yaml"],
        ["predict", "visit.txt", "--threads", "0"],
        ["slurm", "visit.txt", "--queue-max", "forever"],
    ],
)
def test_help_and_argument_errors_load_no_heavy_library(argv):
    code = f"""
from cputime.cli import main
try:
    status = main({argv!r})
except SystemExit as exit:
    status = exit.code
assert status in (0, 2), status
"""
    assert _heavy_imports(code) == []


def test_the_public_api_resolves_on_first_use():
    import cputime
    from cputime.features import visit_features

    assert cputime.visit_features is visit_features
    assert set(cputime.__all__) <= set(dir(cputime))
    with pytest.raises(AttributeError, match="no_such_name"):
        cputime.no_such_name  # noqa: B018
