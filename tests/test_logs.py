"""Tests of cputime.runs.logs on real PhoSim output (tests/data/phosim_runs, phosim_logs)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from cputime.errors import InputError
from cputime.runs.logs import (
    DEFAULT_JOB_NAME_REGEX,
    parse_phosim_stdout,
    parse_runs_csv,
    parse_sacct,
    parse_time_v,
    state_outcome,
)

DATA = Path(__file__).parent / "data"
RUNS = DATA / "phosim_runs"
SHARED_RUNS = Path(__file__).resolve().parents[2] / "shared" / "data" / "phosim_runs"


def _expected(runs_csv: Path) -> pd.DataFrame:
    return pd.read_csv(runs_csv).set_index("run_id")


def _check_against_runs_csv(run_dir: Path, row: pd.Series) -> None:
    """The parsers reproduce every log-derived column of runs.csv for one run."""
    log = parse_phosim_stdout(run_dir / "phosim.stdout")
    timing = parse_time_v(run_dir / "time.txt")
    killed = bool(row["timed_out"] == 1)
    segment = "checkpointtotal" in (run_dir / "commands.txt").read_text()
    if not segment:  # a non-final checkpoint segment traces only its source types
        assert log.completed is not killed
    assert timing.timed_out is killed
    assert timing.cpu_s == pytest.approx(row["cpu_s"], abs=0.005)
    assert timing.wall_s == pytest.approx(row["wall_s"], abs=0.1)  # the note rounds to 0.1 s
    if not killed:
        assert timing.user_s == pytest.approx(row["user_s"])
        assert timing.system_s == pytest.approx(row["sys_s"])
        assert timing.max_rss_kb == row["max_rss_kb"]
        assert timing.exit_status == 0
        expected_types = json.loads(row["raytrace_types"])
        assert log.raytrace_by_type() == expected_types
        assert list(log.raytrace_by_type()) == list(expected_types)  # table order kept
        assert log.raytrace_total_photons == row["raytrace_total_photons"]
        assert log.raytrace_total_s == pytest.approx(row["raytrace_total_s"], abs=1e-9)
    if not pd.isna(row["n_trimmed_sources"]):
        assert log.n_sources == row["n_trimmed_sources"]
    if not pd.isna(row["total_photons_setup"]):
        assert log.total_photons_setup == row["total_photons_setup"]


@pytest.mark.parametrize("run_id", ["base", "A_bright07", "Fx_moonup_v0.5", "Fx_moondown_v0.5"])
def test_fixtures_reproduce_runs_csv(run_id):
    _check_against_runs_csv(RUNS / run_id, _expected(RUNS / "runs.csv").loc[run_id])


@pytest.mark.skipif(not (SHARED_RUNS / "runs.csv").exists(), reason="shared data not present")
def test_all_shared_runs_reproduce_runs_csv():
    expected = _expected(SHARED_RUNS / "runs.csv")
    assert set(expected.index) == {p.parent.name for p in SHARED_RUNS.glob("*/catalog.txt")}
    for run_id, row in expected.iterrows():
        _check_against_runs_csv(SHARED_RUNS / str(run_id), row)


# --- /usr/bin/time -v -------------------------------------------------------------------------


def test_time_v_sidecar():
    timing = parse_time_v(RUNS / "base" / "time.txt")
    assert timing.user_s == 146.56 and timing.system_s == 7.01
    assert timing.cpu_s == pytest.approx(153.57)
    assert timing.wall_s == pytest.approx(155.40)  # "2:35.40"
    assert timing.max_rss_kb == 2323972
    assert timing.exit_status == 0
    assert timing.command.startswith("python3 phosim.py runs/base/catalog.txt")
    assert timing.timed_out is False


def test_time_v_minutes_seconds_format():
    assert parse_time_v(DATA / "phosim_logs" / "phosim34_tiny_R22_S11.time").wall_s == 65.01


def test_time_v_hours_format_and_signal():
    text = (
        "\tCommand terminated by signal 9\n"
        '\tCommand being timed: "sleep 99999"\n'
        "\tUser time (seconds): 3600.50\n"
        "\tSystem time (seconds): 1.00\n"
        "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03\n"
        "\tExit status: 0\n"
    )
    timing = parse_time_v(text)
    assert timing.wall_s == 3723.0
    assert timing.cpu_s == 3601.5
    assert timing.signal == 9
    assert timing.max_rss_kb is None


def test_time_v_timed_out_note():
    timing = parse_time_v(RUNS / "A_bright07" / "time.txt")
    assert timing.timed_out is True
    assert timing.cpu_s == 594.01
    assert timing.wall_s == 600.1
    assert timing.user_s is None and timing.exit_status is None


def test_time_v_appended_to_stdout(tmp_path):
    stdout = (RUNS / "base" / "phosim.stdout").read_text()
    combined = tmp_path / "job.out"
    combined.write_text(stdout + (RUNS / "base" / "time.txt").read_text())
    assert parse_time_v(combined).cpu_s == pytest.approx(153.57)
    log = parse_phosim_stdout(combined)
    assert log.completed
    assert log.time_v is not None and log.time_v.max_rss_kb == 2323972
    assert len(log.rows) == 7


def test_time_v_errors(tmp_path):
    with pytest.raises(InputError, match=r"^catalog\.txt:1: neither /usr/bin/time"):
        parse_time_v(RUNS / "base" / "catalog.txt")
    bad = tmp_path / "time.txt"
    bad.write_text("\tUser time (seconds): abc\n\tSystem time (seconds): 1.0\n")
    with pytest.raises(InputError, match=r"^time\.txt:1: user_s: 'abc' is not a number"):
        parse_time_v(bad)
    with pytest.raises(InputError, match=r"^missing\.txt: cannot read"):
        parse_time_v(tmp_path / "missing.txt")


# --- PhoSim stdout ----------------------------------------------------------------------------


def test_phosim_stdout_base_header_and_table():
    log = parse_phosim_stdout(RUNS / "base" / "phosim.stdout")
    assert (log.obshistid, log.chip, log.filter) == (9003, "R22_S11", 2)
    assert (log.exptime_s, log.nsnap, log.seed) == (15.0, 1, 1000)
    assert log.n_trim_sources == 50 and log.n_sources == 50
    assert log.total_photons_setup == 1.49e8
    assert log.commit == "3b262a41b7b4f45fbf85bb9bf5d747951d273592"
    assert log.command.startswith("/usr/bin/time -v -o runs/base/time.txt python3 phosim.py")
    assert log.steps == ["Atmosphere Creator", "Instrument Configuration", "Trim Catalog",
                         "Photon Raytrace"]
    assert log.completed
    first, last = log.rows[0], log.rows[-1]
    assert (first.label, first.key, first.magnitude) == ("Astrophysical m=22", "m22", 22)
    assert (first.sources, first.photons, first.time_s) == (5, 731_157, 0.59)
    assert (first.sat_pct, first.rem_pct, first.rej_pct, first.acc_pct) == (0, 93, 1, 6)
    assert first.photons_per_s == 1_215_616 and first.line == 200
    assert (last.key, last.sources, last.photons, last.acc_pct) == ("CosmicRays", 11, 11, 100)
    table = log.table()
    assert len(table) == 7 and table["photons"].sum() == 149_069_214
    assert table["magnitude"].isna().sum() == 1  # the cosmic-ray row


def test_phosim_stdout_dark_sky_rows_kept_and_summed():
    log = parse_phosim_stdout(RUNS / "Fx_moondown_v0.5" / "phosim.stdout")
    sky = [row for row in log.rows if row.key == "DarkSky"]
    assert len(sky) == 10
    assert (sky[0].sources, sky[0].photons, sky[0].time_s) == (1_177, 1_050_239_278, 36.94)
    assert log.raytrace_by_type()["DarkSky"]["sources"] == sum(r.sources for r in sky) == 11_765
    assert log.n_trim_sources == 50 and log.n_sources == 11_815
    assert log.completed


def test_phosim_stdout_raytrace_only_log():
    log = parse_phosim_stdout(DATA / "phosim_logs" / "phosim34_raytrace_darksky_R22_S11.stdout")
    assert log.steps == ["Photon Raytrace"]
    assert log.completed
    assert log.raytrace_by_type()["DarkSky"]["sources"] == 11_880
    assert log.n_trim_sources is None  # no trim step in this log


def test_killed_before_raytrace_is_not_an_error():
    log = parse_phosim_stdout(RUNS / "A_bright07" / "phosim.stdout")
    assert not log.completed
    assert log.rows == [] and log.n_sources is None
    assert log.n_trim_sources == 51
    assert len(log.trim_sources) == 9  # the 7 mag star is kept for the 8 neighbours too
    assert (log.obshistid, log.chip) == (9007, "R22_S11")


def test_killed_mid_row_drops_the_partial_line():
    path = RUNS / "Fx_moonup_v0.5" / "phosim.stdout"
    assert not path.read_text().endswith("\n")
    log = parse_phosim_stdout(path)
    assert not log.completed
    assert [row.key for row in log.rows] == ["DarkSky"] * 9
    assert log.n_sources == 23_580


def test_cut_after_a_whole_row_is_not_completed(tmp_path):
    lines = (RUNS / "base" / "phosim.stdout").read_text().splitlines(keepends=True)
    cut = tmp_path / "cut.stdout"
    cut.write_text("".join(lines[:-2]))  # stops after the m18 row: m17 never printed
    log = parse_phosim_stdout(cut)
    assert not log.completed and len(log.rows) == 5


def test_garbled_row_names_file_and_line(tmp_path):
    text = (RUNS / "base" / "phosim.stdout").read_text()
    garbled = tmp_path / "garbled.stdout"
    garbled.write_text(text.replace("3,287,348  (  0, 93,  1,  6)", "3,287,3x8  (  0, 93,  1,  6)"))
    with pytest.raises(InputError, match=r"^garbled\.stdout:201: unreadable raytrace table row"):
        parse_phosim_stdout(garbled)


def test_not_a_phosim_stdout():
    with pytest.raises(InputError, match=r"^catalog\.txt:1: not a PhoSim stdout"):
        parse_phosim_stdout(RUNS / "base" / "catalog.txt")


# --- sacct ------------------------------------------------------------------------------------

SACCT = (DATA / "sacct" / "sacct_parsable2.txt").read_text()


def test_sacct_jobs_steps_not_counted_twice():
    result = parse_sacct(DATA / "sacct" / "sacct_parsable2.txt")
    jobs = {job.job_id: job for job in result.jobs}
    assert list(jobs) == ["1001", "1002_3", "1003", "1004", "1005", "1006", "1007", "1008"]
    done = jobs["1001"]
    assert done.cpu_s == pytest.approx(40 * 60 + 58.123) and done.cpu_from == "job"
    assert done.elapsed_s == 41 * 60 + 20
    assert (done.obshistid, done.sensor, done.outcome) == (230, "R22_S11", "finished")
    assert done.steps == ("batch", "extern") and done.max_rss_kb == 2324196
    assert done.is_training_example and not done.timed_out
    # job line without TotalCPU: the steps are summed instead
    assert jobs["1008"].cpu_s == 570 and jobs["1008"].cpu_from == "steps"
    assert jobs["1008"].ncpus == 2 and jobs["1008"].max_rss_kb == 100 * 1024


def test_sacct_states_and_array_jobs():
    jobs = {job.job_id: job for job in parse_sacct(SACCT).jobs}
    timeout = jobs["1002_3"]
    assert (timeout.array_job_id, timeout.array_task_id) == ("1002", 3)
    assert timeout.outcome == "censored" and timeout.timed_out and timeout.is_training_example
    assert timeout.cpu_s == 86400 + 23 * 3600 + 59 * 60 + 1
    assert timeout.max_rss_kb == pytest.approx(2.2 * 1024**2)
    cancelled = jobs["1003"]
    assert (cancelled.state, cancelled.state_detail) == ("CANCELLED", "CANCELLED by 1234")
    for job_id, state in [("1003", "CANCELLED"), ("1004", "OUT_OF_MEMORY"),
                          ("1005", "NODE_FAIL"), ("1006", "FAILED")]:
        assert jobs[job_id].state == state
        assert jobs[job_id].outcome == "failed" and not jobs[job_id].is_training_example
    assert jobs["1007"].obshistid is None and jobs["1007"].sensor is None


def test_sacct_bad_lines_collected():
    result = parse_sacct(DATA / "sacct" / "sacct_parsable2.txt")
    reasons = [str(error) for error in result.errors]
    assert len(reasons) == 3
    assert reasons[0].startswith("sacct_parsable2.txt:15: TotalCPU: 'xx:yy'")
    assert reasons[1] == "sacct_parsable2.txt:16: 4 fields, the header has 11"
    assert reasons[2] == "sacct_parsable2.txt:17: step of job 9999 without its job line"


def test_sacct_any_column_order_and_parsable_trailing_bar(tmp_path):
    text = (
        "State|TotalCPU|JobName|JobID|\n"
        "COMPLETED|01:00:00|run_42_R10_S21|77|\n"
        "COMPLETED|00:59:00|batch|77.batch|\n"
    )
    path = tmp_path / "sacct.txt"
    path.write_text(text)
    result = parse_sacct(path, name_regex=r"run_(?P<obshistid>\d+)_(?P<sensor>R\d\d_S\d\d)")
    assert result.errors == []
    (job,) = result.jobs
    assert (job.job_id, job.cpu_s, job.obshistid, job.sensor) == ("77", 3600.0, 42, "R10_S21")
    assert job.elapsed_s is None and job.ncpus is None


def test_sacct_header_and_regex_errors():
    with pytest.raises(InputError, match=r"^<text>:1: sacct header lacks state"):
        parse_sacct("JobID|JobName\n1|x\n")
    with pytest.raises(InputError, match="name_regex"):
        parse_sacct(SACCT, name_regex=r"phosim_(\d+)")
    assert "obshistid" in DEFAULT_JOB_NAME_REGEX


def test_state_outcome():
    assert state_outcome("COMPLETED") == "finished"
    assert state_outcome("timeout") == "censored"
    assert state_outcome("CANCELLED by 0") == "failed"
    assert state_outcome("RUNNING") == "active"
    assert state_outcome("BOGUS") is None


# --- plain runs table -------------------------------------------------------------------------


def test_runs_csv_good_and_bad_rows(tmp_path):
    path = tmp_path / "runs.csv"
    path.write_text(
        "obshistid,sensor,cpu_seconds,wall_seconds,host,threads,state\n"
        "230,R22_S11,3600.5,3700,hostA,1,COMPLETED\n"
        "231,R22_S12,172800,172810,hostB,4,timeout\n"
        "232,R22_S13,,,hostB,1,FAILED\n"
        "233,R22_S14,abc,,hostB,1,COMPLETED\n"
        "234,R2_S14,10,,hostB,1,COMPLETED\n"
        "235,R22_S11,,,hostB,1,COMPLETED\n"
        "236,R22_S11,10,,hostB,1,DONE\n"
        "237,R22_S11,10\n"
        "\n"
        "238,R22_S11,-5,,hostB,1,COMPLETED\n"
    )
    table = parse_runs_csv(path)
    assert [(r.obshistid, r.outcome) for r in table.runs] == [
        (230, "finished"), (231, "censored"), (232, "failed")
    ]
    first = table.runs[0]
    assert (first.cpu_s, first.wall_s, first.host, first.threads, first.line) == (
        3600.5, 3700.0, "hostA", 1, 2
    )
    assert table.runs[1].threads == 4 and table.runs[2].cpu_s is None
    assert [str(e) for e in table.errors] == [
        "runs.csv:5: cpu_seconds: 'abc' is not a number",
        "runs.csv:6: sensor: 'R2_S14' is not a sensor id like R22_S11",
        "runs.csv:7: cpu_seconds: empty for a COMPLETED job",
        "runs.csv:8: state: 'DONE' is not a Slurm job state",
        "runs.csv:9: 3 fields, the header has 7",
        "runs.csv:11: cpu_seconds: '-5' is negative",
    ]


def test_runs_csv_minimal_columns_and_missing_header():
    table = parse_runs_csv("obshistid,sensor,cpu_seconds\n5,R22_S11,12\n")
    (run,) = table.runs
    assert (run.threads, run.state, run.host, run.wall_s) == (1, "COMPLETED", None, None)
    with pytest.raises(InputError, match=r"^<text>:1: header lacks column\(s\) cpu_seconds"):
        parse_runs_csv("obshistid,sensor\n5,R22_S11\n")
