"""Tests of cputime.runs.ingest (and the ingest / runs commands) on a real SQLite store."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from cputime.errors import InputError
from cputime.frontends.cli import main
from cputime.physics.features import FEATURE_CODE_VERSION
from cputime.runs.hosts import read_host_slowdowns
from cputime.runs.ingest import FeatureSource, find_catalogs, ingest
from cputime.runs.store import RunsStore

DATA = Path(__file__).parent / "data"
SACCT = DATA / "sacct" / "sacct_parsable2.txt"
RUNS = DATA / "phosim_runs"
TWINKLES = Path(__file__).resolve().parents[1] / "cputime" / "data" / "twinkles_run1_train.csv"


@pytest.fixture
def store(tmp_path):
    return RunsStore(f"sqlite:///{tmp_path / 'runs.db'}")


def _by_job(store: RunsStore) -> pd.DataFrame:
    return store.table().set_index("job_id")


def test_sacct_one_record_per_job_and_idempotent(store):
    first = ingest([SACCT], "sacct", store)[0]
    assert (first.read, first.stored, first.already_stored) == (7, 7, 0)
    assert first.skipped == {"name does not match": 1}  # other_job
    assert [p.line for p in first.problems] == [15, 16, 17]
    assert "TotalCPU" in str(first.problems[0])
    again = ingest([SACCT], "sacct", store)[0]
    assert (again.stored, again.already_stored) == (0, 7)
    runs = _by_job(store)
    assert len(runs) == 7
    # The job line's TotalCPU already includes its steps: not added again.
    assert runs.loc["1001", "cpu_seconds"] == pytest.approx(40 * 60 + 58.123)
    assert runs.loc["1008", "cpu_seconds"] == pytest.approx(9 * 60 + 30)  # steps summed
    assert runs.loc["1002_3", ["state", "outcome"]].tolist() == ["TIMEOUT", "censored"]
    assert runs.loc["1002_3", "cpu_seconds"] == pytest.approx(86400 + 23 * 3600 + 59 * 60 + 1)
    assert runs.loc["1003", ["state", "outcome"]].tolist() == ["CANCELLED", "failed"]
    assert set(runs.loc[["1004", "1005", "1006"], "outcome"]) == {"failed"}
    assert runs.loc["1001", "host"] == "node01" and runs.loc["1008", "threads"] == 2
    assert runs.loc["1001", "ended"] == pd.Timestamp("2024-05-01T10:41:20")
    assert (first.training, first.without_features, first.not_training) == (0, 3, 4)


def test_host_slowdowns_turn_cpu_into_reference_seconds(store, tmp_path):
    slowdowns = tmp_path / "hosts.csv"
    slowdowns.write_text("host,host_slowdown\nnode0[1-2],0.5\nnode*,2.0\n")
    ingest([SACCT], "sacct", store, host_slowdowns=read_host_slowdowns(slowdowns))
    runs = _by_job(store)
    # node01 is twice as fast as the reference host: its CPU second is two reference seconds.
    assert runs.loc["1001", "host_slowdown"] == 0.5
    assert runs.loc["1001", "cpu_seconds_ref"] == pytest.approx(2 * runs.loc["1001", "cpu_seconds"])
    assert runs.loc["1008", "host_slowdown"] == 2.0
    assert runs.loc["1008", "cpu_seconds_ref"] == pytest.approx(runs.loc["1008", "cpu_seconds"] / 2)


@pytest.mark.parametrize("column", ["factor", "host_factor"])
def test_host_factors_files_of_the_older_convention_are_inverted(store, tmp_path, column):
    # Reference seconds per host second, as the Twinkles table gives them.
    factors = tmp_path / "hosts.csv"
    factors.write_text(f"host,{column}\nnode0[1-2],2.0\nnode*,1.5\n")
    ingest([SACCT], "sacct", store, host_slowdowns=read_host_slowdowns(factors))
    runs = _by_job(store)
    assert runs.loc["1001", "host_slowdown"] == 0.5
    assert runs.loc["1001", "cpu_seconds_ref"] == pytest.approx(2 * runs.loc["1001", "cpu_seconds"])
    assert runs.loc["1008", "host_slowdown"] == pytest.approx(1 / 1.5)


def test_unmatched_host_is_an_error_and_stores_nothing(store, tmp_path):
    slowdowns = tmp_path / "hosts.csv"
    slowdowns.write_text("host,host_slowdown\nnode01,2.0\n")
    with pytest.raises(InputError, match="node02, node03, node04, node05"):
        ingest([SACCT], "sacct", store, host_slowdowns=read_host_slowdowns(slowdowns))
    assert store.count() == 0


def test_visit_table_features_make_training_examples(store):
    report = ingest([SACCT], "sacct", store, features=FeatureSource(visits=TWINKLES))[0]
    # Of the finished/censored jobs 230, 231, 236 only visit 230 is in the Twinkles table.
    assert report.training == 1 and report.without_features == 2
    table, counts = store.training_table(FEATURE_CODE_VERSION)
    assert table["obshistid"].tolist() == [230]
    assert counts["without_features"] == 2
    assert table.loc[0, "filter"] == 3 and table.loc[0, "moonalt"] == pytest.approx(-36.1, abs=0.1)


def test_phosim_run_folders(store):
    reports = ingest(sorted(p for p in RUNS.iterdir() if p.is_dir()), "phosim", store)
    assert [r.stored for r in reports] == [1, 1, 1, 1]
    runs = store.table().set_index("job_name")
    expected = pd.read_csv(RUNS / "runs.csv").set_index("run_id")
    for run_id, row in expected.iterrows():
        assert runs.loc[run_id, "cpu_seconds"] == pytest.approx(row["cpu_s"], abs=0.005)
        killed = row["timed_out"] == 1
        assert runs.loc[run_id, "outcome"] == ("censored" if killed else "finished")
    base = runs.loc["base"]
    assert (base["obshistid"], base["sensor"], base["max_rss_kb"]) == (9003, "R22_S11", 2323972)
    details = json.loads(base["details"])
    assert details["raytrace_by_type"] == json.loads(expected.loc["base", "raytrace_types"])
    assert len(details["raytrace_table"]) == 7 and "Photon Raytrace" in details["steps"]
    assert details["commands"]["overrides"] == {"domelight": 1000.0, "zenith_v": 1000.0}
    features = json.loads(base["features"])  # base has its catalog.txt; the commands apply
    assert features["n_objects"] == 50 and features["sky_photons"] == 0.0
    assert base["feature_code_version"] == FEATURE_CODE_VERSION
    assert pd.isna(runs.loc["A_bright07", "features"])  # no catalog.txt in that folder
    again = ingest([RUNS / "base"], "phosim", store)[0]
    assert again.stored == 0


def test_phosim_without_time_output_stores_nothing(store, tmp_path):
    broken = tmp_path / "no_time"
    shutil.copytree(RUNS / "base", broken)
    (broken / "time.txt").unlink()
    with pytest.raises(InputError, match=r"phosim.stdout: no /usr/bin/time -v output"):
        ingest([RUNS / "Fx_moondown_v0.5", broken], "phosim", store)
    assert store.count() == 0


def test_phosim_truncated_stdout_with_normal_exit_is_an_error(store, tmp_path):
    cut = tmp_path / "cut"
    cut.mkdir()
    shutil.copy(RUNS / "A_bright07" / "phosim.stdout", cut / "phosim.stdout")
    shutil.copy(RUNS / "base" / "time.txt", cut / "time.txt")
    with pytest.raises(InputError, match="truncated"):
        ingest([cut], "phosim", store)
    assert store.count() == 0


def test_time_file_named_after_the_job(store, tmp_path):
    path = tmp_path / "phosim_230_R22_S11.time"
    shutil.copy(DATA / "phosim_logs" / "phosim34_tiny_R22_S11.time", path)
    report = ingest([path], "time", store)[0]
    run = store.table().iloc[0]
    assert report.stored == 1
    assert (run["obshistid"], run["sensor"], run["outcome"]) == (230, "R22_S11", "finished")
    assert ingest([path], "time", store)[0].stored == 0


def test_csv_runs_table(store, tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text(
        "obshistid,sensor,cpu_seconds,wall_seconds,host,threads,state,ended\n"
        "230,R22_S11,1000,1100,hequ01,1,COMPLETED,2024-05-01T10:00:00Z\n"
        "231,R22_S11,2000,,hequ02,2,TIMEOUT,2024-05-02T10:00:00+02:00\n"
        "232,R22_S11,abc,,hequ02,1,COMPLETED,\n"
        "233,R22_S11,,,hequ02,1,RUNNING,\n"
    )
    report = ingest([path], "csv", store)[0]
    assert (report.stored, report.skipped, [p.line for p in report.problems]) == (
        2, {"active": 1}, [4]
    )
    runs = store.table().set_index("obshistid")
    assert runs.loc[231, "outcome"] == "censored" and runs.loc[231, "threads"] == 2
    assert runs.loc[231, "ended"] == pd.Timestamp("2024-05-02T08:00:00")  # UTC


def test_find_catalogs_naming_rule(tmp_path):
    for name in ("phosim_cat_230.txt", "star_cat_230.txt.gz", "231/instcat.txt",
                 "visit_232/catalog.txt.gz", "instcat_233.txt.gz", "instcat_233.txt",
                 "notes/catalog.txt"):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("")
    found = find_catalogs(tmp_path)
    assert {k: [p.relative_to(tmp_path).as_posix() for p in v] for k, v in found.items()} == {
        230: ["phosim_cat_230.txt"],
        231: ["231/instcat.txt"],
        232: ["visit_232/catalog.txt.gz"],
        233: ["instcat_233.txt", "instcat_233.txt.gz"],
    }


def test_catalog_root_features(store, tmp_path):
    root = tmp_path / "catalogs"
    (root / "9003").mkdir(parents=True)
    shutil.copy(RUNS / "base" / "catalog.txt", root / "9003" / "instcat.txt")
    sacct = tmp_path / "sacct.txt"
    sacct.write_text(
        "JobID|JobName|State|Elapsed|TotalCPU|NCPUS|NodeList|Start|End\n"
        "7|phosim_9003_R22_S11|COMPLETED|00:03:00|00:02:30|1|n1|2024-05-01T10:00:00|"
        "2024-05-01T10:03:00\n"
        "8|phosim_9003_R22_S12|COMPLETED|00:03:00|00:02:00|1|n1|2024-05-01T10:00:00|"
        "2024-05-01T10:03:00\n"
    )
    report = ingest([sacct], "sacct", store, features=FeatureSource(catalog_root=root))[0]
    assert report.training == 2
    table, _ = store.training_table(FEATURE_CODE_VERSION)
    assert table.set_index("sensor").loc["R22_S11", "n_objects"] == 50


@pytest.mark.parametrize("source", ["catalog-root", "phosim"])
def test_cli_ingest_caps_the_includeobj_text_of_catalogs(source, tmp_path, capsys):
    run = tmp_path / "run"
    shutil.copytree(RUNS / "base", run)
    lines = (run / "catalog.txt").read_text().splitlines(keepends=True)
    objects = "".join(line for line in lines if line.startswith("object"))
    (run / "objects.txt").write_text(objects)
    (run / "catalog.txt").write_text("".join(line for line in lines
                                             if not line.startswith("object"))
                                     + "includeobj objects.txt\n")
    if source == "phosim":
        argv = [str(run), "--format", "phosim"]
    else:
        (run / "9003").mkdir()
        (run / "catalog.txt").rename(run / "9003" / "instcat.txt")
        (run / "objects.txt").rename(run / "9003" / "objects.txt")
        sacct = tmp_path / "sacct.txt"
        sacct.write_text(
            "JobID|JobName|State|Elapsed|TotalCPU|NCPUS|NodeList|Start|End\n"
            "7|phosim_9003_R22_S11|COMPLETED|00:03:00|00:02:30|1|n1|2024-05-01T10:00:00|"
            "2024-05-01T10:03:00\n"
        )
        argv = [str(sacct), "--format", "sacct", "--catalog-root", str(run)]
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    size = len(objects.encode())
    assert main(["ingest", *argv, "--runs-db", uri, "--max-included-bytes", str(size - 1)]) == 2
    out = capsys.readouterr()
    assert json.loads(out.out)[0]["without_features"] == 1
    assert f"no features: {run}" in out.err and f"over {size - 1} bytes of text" in out.err
    assert main(["ingest", *argv, "--runs-db", f"{uri}2", "--max-included-bytes", str(size)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["training"] == 1


def test_cli_ingest_and_runs(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    # The unreadable lines are skipped, the rest stored; the status says rows were skipped.
    assert main(["ingest", str(SACCT), "--format", "sacct", "--runs-db", uri]) == 2
    out = capsys.readouterr()
    assert json.loads(out.out)[0]["stored"] == 7
    assert "sacct_parsable2.txt:16: 4 fields" in out.err
    listing = tmp_path / "runs.csv"
    assert main(["runs", "--runs-db", uri, "-o", str(listing)]) == 0
    assert len(pd.read_csv(listing)) == 7
    assert main(["ingest", str(tmp_path / "missing.txt"), "--format", "sacct",
                 "--runs-db", uri]) == 2
    assert "missing.txt: no such file" in capsys.readouterr().err


HEADER = "JobID|JobName|State|Elapsed|TotalCPU|NCPUS|NodeList|Start|End|ExitCode|MaxRSS\n"
START, END = "2024-05-01T10:00:00", "2024-05-01T11:00:00"


def _sacct_line(job: int, state: str, elapsed: str, cpu: str, ncpus: str, node: str,
                start: str = START, end: str = END) -> str:
    return f"{job}|phosim_{job}_R22_S11|{state}|{elapsed}|{cpu}|{ncpus}|{node}|{start}|{end}|0:0|\n"


def test_impossible_rows_and_never_started_jobs_are_skipped_the_rest_stored(tmp_path, capsys):
    sacct = tmp_path / "sacct.txt"
    sacct.write_text(
        HEADER
        + _sacct_line(1, "COMPLETED", "01:00:00", "00:50:00", "1", "node01")  # fine
        + _sacct_line(2, "COMPLETED", "01:00:00", "100000000000-00:00:00", "1", "node01")
        + _sacct_line(3, "COMPLETED", "01:00:00", "00:50:00", "0", "node01")  # NCPUS 0
        + _sacct_line(4, "CANCELLED by 1234", "00:00:00", "00:00:00", "1", "None assigned",
                      start="Unknown", end=END)  # never started
        + _sacct_line(5, "TIMEOUT", "02:00:00", "01:59:00", "1", "node02")  # fine, censored
    )
    factors = tmp_path / "hosts.csv"
    factors.write_text("host,factor\nnode*,1.5\n")  # no row for "None assigned"
    uri = f"sqlite:///{tmp_path / 'runs.db'}"
    code = main(["ingest", str(sacct), "--format", "sacct", "--runs-db", uri,
                 "--host-factors", str(factors)])
    out = capsys.readouterr()
    assert code == 2
    report = json.loads(out.out)[0]
    assert report["stored"] == 2 and report["problems"] == 2
    assert report["skipped"] == {"never started": 1, "impossible cpu_seconds": 1,
                                 "impossible threads": 1}
    assert "sacct.txt:3: not stored: cpu_seconds 8.64e+15 is not a time between 0 and" in out.err
    assert "sacct.txt:4: not stored: 0 CPUs" in out.err
    stored = RunsStore(uri).table().set_index("job_id")
    assert sorted(stored.index) == ["1", "5"]
    assert stored.loc["1", "cpu_seconds_ref"] == pytest.approx(3000 * 1.5)


@pytest.mark.parametrize(
    ("cpu", "wall", "threads", "category"),
    [
        (-5.0, 60.0, 1, "impossible cpu_seconds"),
        (1e308, 60.0, 1, "impossible cpu_seconds"),
        (float("nan"), 60.0, 1, "impossible cpu_seconds"),
        (10.0, -1.0, 1, "impossible wall_seconds"),
        (3.6e14, 3600.0, 1, "impossible cpu_seconds"),
        (8000.0, 3600.0, 1, "impossible cpu_seconds for the wall time"),
        (8000.0, 3600.0, 2, None),
        (50.0, 60.0, 0, "impossible threads"),
    ],
)
def test_impossible_values(cpu, wall, threads, category):
    from cputime.runs.ingest import impossible
    from cputime.runs.store import RunAttempt

    attempt = RunAttempt(attempt_key="k", source_format="csv", source_file="f", state="COMPLETED",
                         outcome="finished", cpu_seconds=cpu, wall_seconds=wall, threads=threads)
    why = impossible(attempt)
    assert (why[0] if why else None) == category


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("host,speed\nnode*,2\n", r"hosts\.csv:1: the header must be 'host,host_slowdown'"),
        ("host,host_slowdown\nnode*,fast\n", r"hosts\.csv:2: host_slowdown: 'fast' is not a num"),
        ("host,factor\nnode01,1\nnode*,0\n", r"hosts\.csv:3: factor: '0' must be positive"),
        ("host,host_slowdown\nnode*,inf\n", r"hosts\.csv:2: host_slowdown: 'inf' must be positive"),
        ("host,host_slowdown\n", r"hosts\.csv: no host rows"),
    ],
)
def test_bad_host_slowdowns_files_name_file_line_and_column(tmp_path, text, message):
    path = tmp_path / "hosts.csv"
    path.write_text(text)
    with pytest.raises(InputError, match=message):
        read_host_slowdowns(path)
