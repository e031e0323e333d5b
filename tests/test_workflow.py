"""Workflow outputs: Parsl app keywords, Slurm options, JSON lines, and a real Parsl run."""

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from cputime.frontends.cli import main
from cputime.frontends.workflow import (
    format_slurm,
    parsl_app_kwargs,
    parsl_kwargs_of_row,
    predict_one,
    slurm_options,
)

ROOT = Path(__file__).parents[1]
CATALOG = ROOT / "tests" / "data" / "phosim_runs" / "base" / "catalog.txt"
VISIT = {"obshistid": 230, "filter": 2, "altitude": 66.3, "moonalt": 35.0, "moonphase": 80.0,
         "dist2moon": 40.0, "sunalt": -30.0, "vistime": 33, "nsnap": 2}


def _row(**overrides):
    row = {"obshistid": 230, "sensor": "R22_S11", "cpu_seconds_p50": 1000.0,
           "cpu_seconds_upper": 2000.0, "walltime_seconds": 2280, "segments": 1,
           "slurm_time": "0-00:38:00", "checkpointtotal": 0, "slurm_signal": "B:USR1@300",
           "fits_queue": True, "confidence_level": 0.95, "threads": 1, "model_version": "v1",
           "segment_slurm_times": "0-00:38:00"}
    row = {**row, **overrides}
    if "segment_slurm_times" not in overrides:
        row["segment_slurm_times"] = ";".join([row["slurm_time"]] * int(row["segments"]))
    return row


@pytest.mark.parametrize("source", [CATALOG, VISIT])
def test_parsl_app_kwargs_match_the_prediction(source):
    row = predict_one(source, "R22_S11", threads=4)
    kwargs = parsl_app_kwargs(source, "R22_S11", threads=4, memory_mb=2000)
    assert kwargs == {
        "walltime": int(row["walltime_seconds"]),
        "parsl_resource_specification": {
            "running_time_min": int(row["walltime_seconds"]) // 60,  # whole minutes already
            "cores": 4,
            "memory": 2000,
        },
    }
    assert row["cpu_seconds_upper"] >= row["cpu_seconds_p50"] > 0


def test_the_older_keywords_still_work_with_a_warning():
    new = predict_one(VISIT, "R22_S11", threads=4, host_slowdown=0.585, confidence_level=0.9)
    with pytest.warns(DeprecationWarning) as caught:
        old = predict_one(VISIT, "R22_S11", cores=4, host_factor=0.585, confidence=0.9)
    assert sorted(str(w.message).split(":")[1].split("=")[0].strip() for w in caught) == [
        "confidence", "cores", "host_factor"]
    assert pd.Series(old).equals(pd.Series(new))  # NaN features compare equal here
    assert new["threads"] == 4 and new["confidence_level"] == 0.9 and new["host_slowdown"] == 0.585
    with pytest.warns(DeprecationWarning, match="cores= is deprecated; use threads="):
        kwargs = parsl_app_kwargs(VISIT, "R22_S11", cores=4)
    assert kwargs == parsl_app_kwargs(VISIT, "R22_S11", threads=4)


def test_parsl_kwargs_round_up_minutes_and_omit_unknown_memory():
    kwargs = parsl_kwargs_of_row(_row(walltime_seconds=61, threads=2))
    assert kwargs == {"walltime": 61,
                      "parsl_resource_specification": {"running_time_min": 2, "cores": 2}}


def test_parsl_kwargs_of_one_segment_use_its_own_walltime():
    row = _row(segments=3, checkpointtotal=2,
               segment_slurm_times="1-02:00:00;0-00:38:00;0-00:03:00")
    assert parsl_kwargs_of_row(row, segment=2)["walltime"] == 180
    assert parsl_kwargs_of_row(row, segment=0)["parsl_resource_specification"] == {
        "running_time_min": 26 * 60, "cores": 1}


def test_slurm_options_one_set_per_segment():
    [single] = slurm_options(_row())
    assert single == ["--job-name=phosim_230_R22_S11", "--time=0-00:38:00",
                      "--signal=B:USR1@300", "--cpus-per-task=1"]
    sets = slurm_options(_row(segments=3, checkpointtotal=2, threads=4,
                              segment_slurm_times="1-02:00:00;0-00:38:00;0-00:03:00"))
    assert len(sets) == 3
    # Each segment its own --time and signal lead: PhoSim's segments are not even.
    assert [s[1] for s in sets] == ["--time=1-02:00:00", "--time=0-00:38:00", "--time=0-00:03:00"]
    assert sets[0][2] == "--signal=B:USR1@1800" and sets[2][2] == "--signal=B:USR1@300"
    assert sets[2][0] == "--job-name=phosim_230_R22_S11_seg2"
    assert sets[2][-1] == "--export=ALL,PHOSIM_CHECKPOINTCOUNT=2,PHOSIM_CHECKPOINTTOTAL=2"
    assert "--cpus-per-task=4" in sets[0]


def test_format_slurm_sbatch_blocks_and_args_lines():
    import pandas as pd

    table = pd.DataFrame([_row(), _row(sensor="R22_S12", segments=2, checkpointtotal=1,
                                       fits_queue=False)])
    text = format_slurm(table, "sbatch")
    blocks = text.strip().split("\n\n")
    assert len(blocks) == 3
    assert blocks[0].splitlines()[0].startswith("# obshistid 230 sensor R22_S11")
    assert "#SBATCH --time=0-00:38:00" in blocks[0]
    assert "--dependency=afterok" in blocks[2] and "WARNING" in blocks[2]
    args = format_slurm(table, "args").splitlines()
    assert len(args) == 3 and args[0].startswith("--job-name=phosim_230_R22_S11 --time=")
    with pytest.raises(ValueError, match="sbatch, args"):
        format_slurm(table, "yaml")


def test_cli_slurm_segments_with_a_short_queue(capsys):
    assert main(["slurm", str(CATALOG), "--sensors", "R22_S11"]) == 0
    single = capsys.readouterr().out
    assert single.count("#SBATCH --time=") == 1
    assert "#SBATCH --cpus-per-task=1" in single
    assert "#SBATCH --signal=B:USR1@" in single
    assert main(["slurm", str(CATALOG), "--sensors", "R22_S11", "--queue-max", "400s",
                 "--threads", "2", "--format", "args"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) > 1  # a long job on a 400 s queue is split
    assert all("--cpus-per-task=2" in line and "PHOSIM_CHECKPOINTCOUNT" in line for line in lines)


def test_cli_predict_jsonl_to_stdout(capsys):
    assert main(["predict", str(CATALOG), "--sensors", "R22_S11,R22_S12", "-o", "-",
                 "--format", "jsonl"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["sensor"] for r in rows] == ["R22_S11", "R22_S12"]
    assert {"cpu_seconds_upper", "walltime_seconds", "slurm_time"} <= set(rows[0])


def test_example_workflow_runs_on_a_real_parsl_executor(tmp_path):
    """The stand-in PhoSim runs under Parsl with the predicted walltimes, segments chained."""
    queue_max = predict_one(CATALOG, "R22_S11")["walltime_seconds"] // 2  # a few segments
    result = subprocess.run(
        [sys.executable, str(ROOT / "examples" / "parsl_phosim_workflow.py"), str(CATALOG),
         "--sensors", "R22_S11,R22_S12", "--queue-max", f"{queue_max}s", "--command",
         "echo {catalog} {sensor} checkpointcount {checkpointcount} of {checkpointtotal}"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 2 and all(line.endswith("ok") for line in lines), result.stdout
    outputs = sorted((tmp_path / "phosim_logs").glob("*.out"))
    segments = int(lines[0].split(":")[1].split()[0])
    assert 1 < segments <= 73
    assert len(outputs) == 2 * segments
    last = (tmp_path / "phosim_logs" / f"9003_R22_S11_seg{segments - 1}.out").read_text()
    assert f"checkpointcount {segments - 1} of {segments - 1}" in last


def test_parsl_bash_app_walltime_is_enforced(tmp_path):
    """Parsl kills a bash_app over the ``walltime`` we hand it (real ThreadPoolExecutor)."""
    from parsl import bash_app
    from parsl.app.errors import AppTimeout
    from parsl.config import Config
    from parsl.dataflow.dflow import DataFlowKernel
    from parsl.executors import ThreadPoolExecutor

    def stand_in(seconds, walltime=None):
        return f"sleep {seconds}"

    config = Config(executors=[ThreadPoolExecutor(max_threads=2)], run_dir=str(tmp_path),
                    usage_tracking=0)
    kwargs = parsl_kwargs_of_row(_row(walltime_seconds=1))
    kwargs.pop("parsl_resource_specification")  # ThreadPoolExecutor refuses it
    with DataFlowKernel(config) as dfk:
        app = bash_app(stand_in, data_flow_kernel=dfk)
        assert app(0, **kwargs).result() == 0
        with pytest.raises(AppTimeout):
            app(30, **kwargs).result()
