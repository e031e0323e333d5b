"""The command line, run in-process: outputs, exit statuses and one-line errors."""

import gzip
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import cputime
from cputime.frontends.cli import ExitStatus, main
from cputime.planning.predictions import PREDICTION_COLUMNS

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
    # PhoSim traces the moon's light as ten source types: a tenth of a moon-bright visit is
    # longer than 4 h, so no split fits, and the row says what would.
    assert not moon["fits_queue"] and "a queue of" in moon["plan_note"]
    assert rows[0]["fits_queue"] and rows[0]["walltime_seconds"] <= 4 * 3600


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
        "--host-slowdowns",
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
        "plan",
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
HEAVY_LIBRARIES = ("numpy", "pandas", "sklearn", "scipy", "xgboost", "mlflow", "fastapi",
                   "pyarrow")  # fmt: skip

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


@pytest.mark.parametrize("code", ["import cputime", "import cputime.frontends.cli"])
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
from cputime.frontends.cli import main
try:
    status = main({argv!r})
except SystemExit as exit:
    status = exit.code
assert status in (0, 2), status
"""
    assert _heavy_imports(code) == []


def test_the_public_api_resolves_on_first_use():
    import cputime
    from cputime.physics.features import visit_features

    assert cputime.visit_features is visit_features
    assert set(cputime.__all__) <= set(dir(cputime))
    with pytest.raises(AttributeError, match="no_such_name"):
        cputime.no_such_name  # noqa: B018


# ----------------------------------------------------------------- options checked at the edge


@pytest.mark.parametrize(
    "argv, option",
    [
        (["predict", RUN_CATALOG, "--queue-max", "0"], "--queue-max"),
        (["predict", RUN_CATALOG, "--queue-max", "-5"], "--queue-max"),
        (["predict", RUN_CATALOG, "--confidence", "1.5"], "--confidence"),
        (["predict", RUN_CATALOG, "--confidence", "0"], "--confidence"),
        (["predict", RUN_CATALOG, "--host-factor", "0"], "--host-factor"),
        (["predict", RUN_CATALOG, "--host-factor", "inf"], "--host-factor"),
        (["predict", RUN_CATALOG, "--threads", "2.5"], "--threads"),
        (["predict", RUN_CATALOG, "--confidence-level", "1.5"], "--confidence-level"),
        (["predict", RUN_CATALOG, "--host-slowdown", "-1"], "--host-slowdown"),
        (["plan", RUN_CATALOG, "--cores", "0"], "--cores"),
        (["retrain", "--name", "x", "--confidence-level", "0"], "--confidence-level"),
        (["features", RUN_CATALOG, "--jobs", "0"], "--jobs"),
        (["features", RUN_CATALOG, "-o", "/nonexistent/dir/x.csv"], "-o/--output"),
        (["slurm", RUN_CATALOG, "--threads", "-1"], "--threads"),
        (["serve", "--port", "70000"], "--port"),
        (["serve", "--workers", "0"], "--workers"),
        (["serve", "--poll-seconds", "-1"], "--poll-seconds"),
        (["serve", "--max-body-bytes", "-1"], "--max-body-bytes"),
        (["evaluate", "--folds", "1"], "--folds"),
        (["evaluate", "--confidence", "nan"], "--confidence"),
        (["train", RUN_CATALOG, "--target", "t", "--confidence", "1"], "--confidence"),
        (["retrain", "--name", "x", "--holdout", "1.2"], "--holdout"),
        (["monitor", "--min-coverage", "0"], "--min-coverage"),
        (["predict", RUN_CATALOG, "--format", "xml"], "--format"),
        (["features", RUN_CATALOG, "--max-included-bytes", "1GB"], "--max-included-bytes"),
        (["plan", RUN_CATALOG, "--max-included-bytes", "-1"], "--max-included-bytes"),
        (["ingest", RUN_CATALOG, "--format", "csv", "--max-included-bytes", "1e9"],
         "--max-included-bytes"),
    ],
)
def test_bad_option_values_are_one_line_naming_the_option(argv, option, capsys):
    status, out, err = run(*argv, capsys=capsys)
    assert status == ExitStatus.BAD_INPUT, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    assert f"argument {option}:" in err, err
    assert out == ""


def included_catalog(folder: Path) -> tuple[Path, int]:
    """RUN_CATALOG with its objects moved to an ``includeobj`` file; the path and that file's
    size [bytes]."""
    lines = RUN_CATALOG.read_text().splitlines(keepends=True)
    objects = "".join(line for line in lines if line.startswith("object"))
    (folder / "objects.txt").write_text(objects)
    top = folder / "top.txt"
    top.write_text("".join(line for line in lines if not line.startswith("object"))
                   + "includeobj objects.txt\n")
    return top, len(objects.encode())


@pytest.mark.parametrize("command", ["features", "predict", "slurm", "plan"])
def test_max_included_bytes_caps_the_includeobj_text(command, tmp_path, capsys):
    top, size = included_catalog(tmp_path)
    argv = [command, top, "--sensors", "R22_S11", "--jobs", "2"]
    argv += ["-o", tmp_path / "plan"] if command == "plan" else []
    status, _, err = run(*argv, "--max-included-bytes", size, capsys=capsys)
    assert status == ExitStatus.OK, err
    status, out, err = run(*argv, "--max-included-bytes", size - 1, capsys=capsys)
    assert status == ExitStatus.BAD_INPUT, err
    assert len(err.strip().splitlines()) == 1, err
    assert (f"top.txt:20: includeobj 'objects.txt' takes the included object files over "
            f"{size - 1} bytes") in err


def test_max_included_bytes_help_says_the_readers_default(capsys):
    from cputime.inputs.catalog import MAX_INCLUDED_BYTES

    with pytest.raises(SystemExit):
        main(["features", "--help"])
    assert "(default: 16 GiB" in " ".join(capsys.readouterr().out.split())
    assert MAX_INCLUDED_BYTES == 16 << 30


def test_where_on_a_catalog_is_refused(capsys):
    status, _, err = run("predict", RUN_CATALOG, "--where", "night < 3", capsys=capsys)
    assert status == ExitStatus.BAD_INPUT and "--where: selects visits of tables" in err


def test_output_to_a_folder_is_refused(tmp_path, capsys):
    status, _, err = run("predict", RUN_CATALOG, "-o", tmp_path, capsys=capsys)
    assert status == ExitStatus.BAD_INPUT and "is a folder" in err


@pytest.mark.parametrize("flag", ["--confidence-level", "--confidence"])
def test_confidence_beyond_the_calibration_is_one_line_naming_the_flag_typed(flag, capsys):
    status, _, err = run("predict", RUN_CATALOG, flag, "0.999", capsys=capsys)
    assert status == ExitStatus.BAD_INPUT, err
    assert err.startswith(f"cputime predict: error: {flag}: 0.999")
    assert len(err.strip().splitlines()) == 1


def test_old_spellings_of_renamed_options_mean_the_same(capsys):
    common = ["predict", RUN_CATALOG, "--sensors", "R22_S11", "--queue-max", "1h", "--format",
              "json"]  # fmt: skip
    new = run(*common, "--confidence-level", "0.9", "--host-slowdown", "0.5", "--threads", "4",
              capsys=capsys)  # fmt: skip
    old = run(*common, "--confidence", "0.9", "--host-factor", "0.5", "--cores", "4",
              capsys=capsys)  # fmt: skip
    assert new[0] == old[0] == ExitStatus.OK, new[2] + old[2]
    assert new[1] == old[1]
    row = json.loads(new[1])[0]
    assert (row["confidence_level"], row["host_slowdown"], row["threads"]) == (0.9, 0.5, 4)


def test_help_says_the_units_and_the_old_spellings(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "host CPU seconds per reference-host CPU second [s/s]" in text
    for old in ("--confidence", "--host-factor", "--cores"):
        assert f"old spelling {old}" in text
    assert "[--host-factor" not in text  # the usage line shows one spelling


@pytest.mark.parametrize(
    "argv, message, shown",
    [
        (["predict", "x"], "jobs: 0 must be 1 or more", "--jobs: 0 must be 1 or more"),
        (["predict", "x"], "parsl_config x.py: no such file", "--parsl-config x.py: no such file"),
        (["predict", "x"], "host_slowdown: 0 is not positive",
         "--host-slowdown: 0 is not positive"),
        (["predict", "x", "--host-factor", "2"], "host_slowdown: 2 is too slow",
         "--host-factor: 2 is too slow"),
        (["retrain", "--name", "n"], "holdout_fraction: 1.5 is not a fraction",
         "--holdout: 1.5 is not a fraction"),
        (["ingest", "l", "--format", "csv"], "log_format: 'x' is unknown",
         "--format: 'x' is unknown"),
        (["runs"], "runs_db sqlite:///x.db: empty", "--runs-db sqlite:///x.db: empty"),
        (["predict", "x"], "visit.txt:3: bad line", "visit.txt:3: bad line"),
        (["train", "t", "--target", "y"], "jobs: 0 must be 1 or more",
         "jobs: 0 must be 1 or more"),  # not an option of train
    ],
)  # fmt: skip
def test_library_errors_naming_a_field_are_shown_with_the_flag_typed(argv, message, shown):
    from cputime.frontends.cli import build_parser

    parser = build_parser()
    assert parser.commands[argv[0]].name_flags(message, parser.parse_args(argv)) == shown


def test_queue_max_bare_number_is_minutes_as_in_slurm(capsys):
    by_number = run("predict", RUN_CATALOG, "--queue-max", "120", "--format", "json",
                    capsys=capsys)  # fmt: skip
    by_clock = run("predict", RUN_CATALOG, "--queue-max", "2:00:00", "--format", "json",
                   capsys=capsys)  # fmt: skip
    assert by_number[0] == by_clock[0] == ExitStatus.OK, by_number[2]
    assert json.loads(by_number[1]) == json.loads(by_clock[1])
    row = json.loads(by_number[1])[0]
    assert row["segments"] > 1 and row["walltime_seconds"] <= 2 * 3600
    status, out, _ = run("predict", "--help", capsys=capsys) if False else (0, "", "")


def test_queue_max_help_says_a_bare_number_is_minutes(capsys):
    with pytest.raises(SystemExit):
        main(["predict", "--help"])
    assert "bare number is minutes" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("fmt", ["args", "sbatch"])
def test_slurm_says_when_a_job_cannot_fit_the_queue(fmt, capsys):
    status, out, err = run("slurm", RUN_CATALOG, "--sensors", "R22_S11", "--queue-max", "2",
                           "--format", fmt, capsys=capsys)  # fmt: skip
    assert status == ExitStatus.OK, err
    assert "--time=" in out
    assert "1 of 1 jobs cannot fit --queue-max 0-00:02:00" in err


def test_predict_says_when_a_job_cannot_fit_the_queue(tmp_path, capsys):
    out = tmp_path / "p.csv"
    status, _, err = run("predict", RUN_CATALOG, "--queue-max", "2", "-o", out, capsys=capsys)
    assert status == ExitStatus.OK
    assert not pd.read_csv(out)["fits_queue"].any()
    assert "cannot fit --queue-max" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"cputime {cputime.__version__}"


def test_written_rows_and_filter_letters(tmp_path, capsys):
    out = tmp_path / "features.csv"
    status, _, err = run("features", CATALOG, "--sensors", "R22_S11,R01_S00", "-o", out,
                         capsys=capsys)  # fmt: skip
    assert status == ExitStatus.OK
    assert err.strip() == f"cputime features: wrote 2 rows to {out}"
    assert set(pd.read_csv(out)["filter"]) <= set("ugrizy")


def test_serve_with_an_unknown_registered_model_leaves_no_store(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    status, _, err = run("serve", "--model", "models:/nope@champion", capsys=capsys)
    assert status == ExitStatus.BAD_INPUT, err
    assert "models:/nope@champion" in err and len(err.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


def test_serve_with_a_model_missing_from_an_existing_registry(mlflow_uri, capsys):
    status, _, err = run("serve", "--model", "models:/nope@champion", "--tracking-uri",
                         mlflow_uri, capsys=capsys)  # fmt: skip
    assert status == ExitStatus.BAD_INPUT, err
    assert "nope" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("command", ["monitor", "runs", "retrain"])
def test_a_mistyped_runs_store_is_an_error_and_not_created(command, tmp_path, capsys,
                                                           monkeypatch):  # fmt: skip
    monkeypatch.chdir(tmp_path)
    extra = ["--name", "x"] if command == "retrain" else []
    status, _, err = run(command, "--runs-db", "sqlite:///runs-typo.db", *extra, capsys=capsys)
    assert status == ExitStatus.BAD_INPUT, err
    assert "runs-typo.db" in err and "no such runs store" in err
    assert not (tmp_path / "runs-typo.db").exists()


def test_train_finds_the_shipped_runs_table_from_any_folder(tmp_path, capsys, monkeypatch):
    table = pd.read_csv(ROOT / "features" / "twinkles_run1.csv").iloc[:120]
    source = tmp_path / "jobs.csv"
    table.to_csv(source, index=False)
    monkeypatch.chdir(tmp_path)
    status, out, err = run("train", source, "--target", "cpu_seconds_ref", "--censored-col",
                           "censored", "--out", "m", capsys=capsys)  # fmt: skip
    assert status == ExitStatus.OK, err
    summary = json.loads(out)
    runs = pd.read_csv(ROOT / "features" / "phosim_runs.csv")
    assert summary["catalog_runs"] == int((runs["checkpointtotal"] == 0).sum())  # whole jobs
    assert (tmp_path / "m" / "booster.json").exists()


def test_a_folder_or_an_at_list_stands_for_many_inputs(tmp_path, capsys):
    folder = tmp_path / "instcat"
    folder.mkdir()
    for name in ("b.txt", "a.txt.gz"):
        data = CATALOG.read_bytes()
        (folder / name).write_bytes(gzip.compress(data) if name.endswith(".gz") else data)
    (folder / "notes.md").write_text("not an input\n")
    listing = tmp_path / "list.txt"
    listing.write_text("# catalogs\ninstcat/b.txt\n\ninstcat/a.txt.gz\n")
    by_folder = run("features", folder, "--sensors", "R22_S11", capsys=capsys)
    by_list = run("features", f"@{listing}", "--sensors", "R22_S11", capsys=capsys)
    assert by_folder[0] == by_list[0] == ExitStatus.OK, by_folder[2] + by_list[2]
    assert len(pd.read_csv(io.StringIO(by_folder[1]))) == 2
    # the folder is read in name order, the list in its own order: same rows, swapped
    assert by_folder[1].splitlines()[1] == by_list[1].splitlines()[2]
    status, _, err = run("features", f"@{tmp_path / 'nope.txt'}", capsys=capsys)
    assert status == ExitStatus.BAD_INPUT and "no such list file" in err
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "README.md").write_text("no inputs here\n")
    status, _, err = run("features", tmp_path / "empty", capsys=capsys)
    assert status == ExitStatus.BAD_INPUT and "without catalogs" in err


def test_a_terminal_gets_a_short_table(capsys, monkeypatch):
    monkeypatch.setattr("sys.stdout.isatty", lambda: True)
    status, out, err = run("predict", CATALOG, "--sensors", "R22_S11,R22_S12", capsys=capsys)
    assert status == ExitStatus.OK, err
    header, *rows, note = out.splitlines()
    assert header.split()[:5] == ["obshistid", "sensor", "filter", "cpu_hours_p50",
                                  "cpu_hours_upper"]  # fmt: skip
    assert len(rows) == 2 and rows[0].split()[:3] == ["230", "R22_S11", "r"]
    assert "--format csv" in note
    status, out, _ = run("predict", CATALOG, "--sensors", "R22_S11", "--format", "csv",
                         capsys=capsys)  # fmt: skip
    assert out.startswith("obshistid,sensor,")
