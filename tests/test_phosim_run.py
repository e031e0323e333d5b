"""The one reader of a PhoSim run folder and its censoring rule (cputime.runs.phosim_run), on
real PhoSim 3.4 runs (tests/data/phosim_runs, phosim_checkpoint), and that training and ingestion
both follow it."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest

from cputime.errors import InputError
from cputime.runs.ingest import ingest
from cputime.runs.logs import parse_time_v
from cputime.runs.phosim_run import read_phosim_run, run_outcome
from cputime.runs.store import RunsStore
from cputime.runs.training import phosim_runs_table

DATA = Path(__file__).parent / "data"
RUNS = DATA / "phosim_runs"
SEGMENT = DATA / "phosim_checkpoint" / "K_moondown_v2_T3_k0"
BASE_TIME = (RUNS / "base" / "time.txt").read_text()


def _run(folder: Path, stdout_of: str, time_text: str, *, catalog: bool = True) -> Path:
    """A run folder with a real stdout (of ``stdout_of``) and the given time output."""
    folder.mkdir(parents=True)
    shutil.copy(RUNS / stdout_of / "phosim.stdout", folder / "phosim.stdout")
    shutil.copy(RUNS / stdout_of / "commands.txt", folder / "commands.txt")
    if catalog:  # the base catalog: features can be computed for every case
        shutil.copy(RUNS / "base" / "catalog.txt", folder / "catalog.txt")
    (folder / "time.txt").write_text(time_text)
    return folder


def _exit(status: int) -> str:
    return BASE_TIME.replace("Exit status: 0", f"Exit status: {status}")


def _signal(number: int) -> str:
    return f"\tCommand terminated by signal {number}\n" + BASE_TIME


@pytest.mark.parametrize(
    ("folder", "state", "outcome", "cpu"),
    [
        (RUNS / "base", "COMPLETED", "finished", 153.57),
        (RUNS / "Fx_moondown_v0.5", "COMPLETED", "finished", 428.73),
        (RUNS / "A_bright07", "TIMEOUT", "censored", 594.01),  # the kill note
        (RUNS / "Fx_moonup_v0.5", "TIMEOUT", "censored", 597.77),
        (SEGMENT, "COMPLETED", "finished", 1598.23),  # a checkpoint segment, exit 0
    ],
)
def test_real_runs(folder, state, outcome, cpu):
    run = read_phosim_run(folder)
    assert (run.state, run.outcome, run.sensor) == (state, outcome, "R22_S11")
    assert run.cpu_seconds == pytest.approx(cpu, abs=0.005)
    assert run.censored == (outcome == "censored")


@pytest.mark.parametrize(
    ("stdout_of", "time_text", "outcome"),
    [
        # Killed by the batch system at its limit: censored, whatever the stdout shows.
        ("Fx_moonup_v0.5", _signal(9), "censored"),  # SIGKILL, stdout cut mid-row
        ("Fx_moonup_v0.5", _signal(24), "censored"),  # SIGXCPU: a CPU-time limit
        ("A_bright07", _exit(128 + 15), "censored"),  # a shell reporting its child's SIGTERM
        ("base", _signal(15), "censored"),  # TERM after the raytrace: still killed
        # Crashed: failed, not a CPU observation, even when the raytrace had finished.
        ("base", _exit(1), "failed"),
        ("Fx_moonup_v0.5", _exit(1), "failed"),
        ("Fx_moonup_v0.5", _signal(11), "failed"),  # SIGSEGV
        ("base", _signal(6), "failed"),  # SIGABRT
        ("A_bright07", _exit(128 + 11), "failed"),
    ],
)
def test_killed_is_censored_and_crashed_is_failed(tmp_path, stdout_of, time_text, outcome):
    run = read_phosim_run(_run(tmp_path / "run", stdout_of, time_text))
    assert run.outcome == outcome


def test_cut_stdout_with_a_normal_exit_is_an_error(tmp_path):
    folder = _run(tmp_path / "run", "A_bright07", BASE_TIME)
    with pytest.raises(InputError, match=r"phosim\.stdout: truncated"):
        read_phosim_run(folder)


def test_bare_time_output():
    killed = parse_time_v(RUNS / "A_bright07" / "time.txt")
    finished = parse_time_v(BASE_TIME)
    assert run_outcome(killed, None) == ("TIMEOUT", "censored")
    assert run_outcome(finished, None) == ("COMPLETED", "finished")
    assert run_outcome(parse_time_v(_exit(2)), None) == ("FAILED", "failed")
    no_status = parse_time_v(BASE_TIME.replace("\tExit status: 0\n", ""))
    assert run_outcome(no_status, None) == ("FAILED", "failed")  # nothing says it ended
    assert run_outcome(no_status, True) == ("COMPLETED", "finished")  # the stdout does


def test_training_and_ingest_apply_the_same_rule(tmp_path):
    runs_dir = tmp_path / "runs"
    _run(runs_dir / "finished", "base", BASE_TIME)
    _run(runs_dir / "killed", "Fx_moonup_v0.5", _signal(9))
    _run(runs_dir / "crashed", "base", _exit(1))
    _run(runs_dir / "no_catalog", "base", BASE_TIME, catalog=False)
    shutil.copytree(SEGMENT, runs_dir / SEGMENT.name)
    with pytest.warns(UserWarning, match=r"crashed: the run crashed \(exit status 1"):
        table = phosim_runs_table(runs_dir).set_index("run_id")
    # The crashed run is no CPU observation; without a catalog there are no features.
    assert sorted(table.index) == [SEGMENT.name, "finished", "killed"]
    assert table["censored"].to_dict() == {SEGMENT.name: False, "finished": False,
                                           "killed": True}
    assert table.loc[SEGMENT.name, ["checkpointtotal", "checkpointcount"]].tolist() == [3, 0]

    store = RunsStore(f"sqlite:///{tmp_path / 'runs.db'}")
    reports = ingest(sorted(runs_dir.iterdir()), "phosim", store)
    # no_catalog holds the same logs as finished: the same attempt, stored once.
    assert [r.stored for r in reports] == [1, 1, 1, 1, 0]
    stored = store.table().set_index("job_name")["outcome"].to_dict()
    assert stored == {SEGMENT.name: "finished", "crashed": "failed", "finished": "finished",
                      "killed": "censored"}
    by_run = pd.Series(stored)[table.index]
    assert ((by_run == "censored") == table["censored"]).all()
