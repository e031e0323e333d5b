"""features_of_many: parallel, resumable, in input order, with real executors."""

import os
from pathlib import Path

import pandas as pd
import pytest

from cputime.errors import InputError
from cputime.frontends.batch import features_of_many, part_is_current, part_path
from cputime.frontends.cli import main

DATA = Path(__file__).parent / "data" / "phosim_runs"
EXAMPLES = Path(__file__).parents[1] / "examples"
SENSORS = ["R22_S11", "R22_S12"]


@pytest.fixture()
def catalogs(tmp_path):
    """Four catalogs made from the real base run: other visit numbers, a bright star added."""
    base = (DATA / "base" / "catalog.txt").read_text()
    bright = "object 99 53.0100000 -27.4400000 7.0 flatlambda.txt 0 0 0 0 0 0 point none none\n"
    paths = []
    for k in range(4):
        text = base.replace("obshistid 9003", f"obshistid {9003 + k}") + (bright if k % 2 else "")
        path = tmp_path / "cats" / f"visit{k}.txt"
        path.parent.mkdir(exist_ok=True)
        path.write_text(text)
        paths.append(path)
    return paths


@pytest.fixture()
def bad_catalog(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text((DATA / "base" / "catalog.txt").read_text() + "object 1 2 3\n")
    return path


@pytest.fixture()
def serial(catalogs):
    return features_of_many(catalogs, SENSORS, progress=False).table


def test_one_table_in_input_order(catalogs, serial):
    assert len(serial) == len(catalogs) * len(SENSORS)
    assert list(serial["sensor"]) == SENSORS * len(catalogs)
    reversed_ = features_of_many(catalogs[::-1], SENSORS, progress=False).table
    pd.testing.assert_frame_equal(
        reversed_, pd.concat([serial.iloc[i:i + 2] for i in (6, 4, 2, 0)], ignore_index=True)
    )


def test_processes_give_the_serial_table(catalogs, serial):
    parallel = features_of_many(catalogs, SENSORS, jobs=2, progress=False).table
    pd.testing.assert_frame_equal(parallel, serial)


def test_resume_skips_inputs_already_done(catalogs, serial, tmp_path):
    work = tmp_path / "work"
    first = features_of_many(catalogs[:2], SENSORS, resume_dir=work, progress=False).table
    parts = sorted(work.glob("*.parquet"))
    assert len(parts) == 2
    stamps = {p: p.stat().st_mtime_ns for p in parts}
    table = features_of_many(catalogs, SENSORS, resume_dir=work, jobs=2, progress=False).table
    pd.testing.assert_frame_equal(table, serial)
    pd.testing.assert_frame_equal(first, serial.iloc[:4])
    assert {p: p.stat().st_mtime_ns for p in parts} == stamps  # not recomputed
    assert len(list(work.glob("*.parquet"))) == 4
    assert not list(work.glob("*.tmp"))


def test_part_key_changes_with_what_rows_depend_on(catalogs, tmp_path):
    key = part_path(tmp_path, catalogs[0], SENSORS)
    assert part_path(tmp_path, catalogs[0], SENSORS) == key
    assert part_path(tmp_path, catalogs[0], ["R22_S11"]) != key
    assert part_path(tmp_path, catalogs[0], SENSORS, allow_outside=True) != key
    os.utime(catalogs[0], ns=(1, 1))  # a rewritten catalog is read again
    assert part_path(tmp_path, catalogs[0], SENSORS) != key


def test_part_key_covers_included_files(tmp_path):
    header = (DATA / "base" / "catalog.txt").read_text().split("object", 1)[0]
    top = tmp_path / "top.txt"
    top.write_text(header + "includeobj stars.txt\n")
    stars = tmp_path / "stars.txt"
    stars.write_text("includeobj more.txt\n")
    more = tmp_path / "more.txt"
    more.write_text("object 1 53.01 -27.44 17.8 flatlambda.txt 0 0 0 0 0 0 point none none\n")
    work = tmp_path / "work"
    first = features_of_many([top], SENSORS, resume_dir=work, progress=False).table
    key = part_path(work, top, SENSORS)
    assert part_is_current(key)
    more.write_text(more.read_text() * 2)  # a nested include changed
    assert not part_is_current(key)
    again = features_of_many([top], SENSORS, resume_dir=work, progress=False).table
    assert again["n_objects"].sum() == 2 * first["n_objects"].sum()


def test_part_key_covers_files_included_after_object_lines(tmp_path):
    catalog = (DATA / "base" / "catalog.txt").read_text()
    top = tmp_path / "top.txt"
    top.write_text(catalog + "includeobj late.txt\n")  # named after the object lines
    late = tmp_path / "late.txt"
    late.write_text("object 1 53.01 -27.44 17.8 flatlambda.txt 0 0 0 0 0 0 point none none\n")
    work = tmp_path / "work"
    first = features_of_many([top], SENSORS, resume_dir=work, progress=False).table
    late.write_text(late.read_text() * 3)
    again = features_of_many([top], SENSORS, resume_dir=work, progress=False).table
    assert again["n_objects"].sum() == first["n_objects"].sum() + 2


@pytest.mark.parametrize("jobs", [1, 2])
def test_bad_input_stops_the_run_naming_it(catalogs, bad_catalog, jobs):
    with pytest.raises(InputError, match=r"bad\.txt:\d+:"):
        features_of_many([*catalogs, bad_catalog], SENSORS, jobs=jobs, progress=False)
    with pytest.raises(InputError, match="missing.txt"):
        features_of_many([catalogs[0], "missing.txt"], SENSORS, jobs=jobs, progress=False)


def test_keep_going_records_bad_inputs(catalogs, bad_catalog, serial, tmp_path):
    batch = features_of_many(
        [catalogs[0], bad_catalog, *catalogs[1:]], SENSORS, keep_going=True, progress=False,
        resume_dir=tmp_path / "work",
    )
    pd.testing.assert_frame_equal(batch.table, serial)
    [failed] = batch.failures
    assert failed.path == str(bad_catalog)
    assert "bad.txt:" in failed.message
    assert len(list((tmp_path / "work").glob("*.parquet"))) == 4  # no part for the bad one


def test_parsl_thread_pool_config_file(catalogs, serial, tmp_path):
    config = tmp_path / "threads.py"
    config.write_text(
        "from parsl.config import Config\n"
        "from parsl.executors import ThreadPoolExecutor\n"
        f"config = Config(executors=[ThreadPoolExecutor(max_threads=2)], run_dir={str(tmp_path)!r},"
        " usage_tracking=0)\n"
    )
    batch = features_of_many(catalogs, SENSORS, executor="parsl", parsl_config=config,
                             progress=False)
    pd.testing.assert_frame_equal(batch.table, serial)
    assert batch.failures == []


def test_parsl_local_provider_example(catalogs, bad_catalog, serial, tmp_path, monkeypatch):
    """The shipped examples/parsl_local.py: HighThroughputExecutor on a LocalProvider."""
    monkeypatch.chdir(tmp_path)  # Parsl's runinfo/
    monkeypatch.setenv("CPUTIME_PARSL_WORKERS", "2")
    batch = features_of_many(
        [*catalogs, bad_catalog], SENSORS, executor="parsl", keep_going=True,
        parsl_config=EXAMPLES / "parsl_local.py", resume_dir=tmp_path / "work", progress=False,
    )
    pd.testing.assert_frame_equal(batch.table, serial)
    assert [f.path for f in batch.failures] == [str(bad_catalog)]


def test_parsl_needs_a_config_defining_config(catalogs, tmp_path):
    with pytest.raises(InputError, match="^parsl_config: "):
        features_of_many(catalogs, SENSORS, executor="parsl")
    empty = tmp_path / "empty.py"
    empty.write_text("x = 1\n")
    with pytest.raises(InputError, match="defines no `config"):
        features_of_many(catalogs, SENSORS, executor="parsl", parsl_config=empty)


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"jobs": 0}, "jobs"),
        ({"executor": "slurm"}, "executor"),
        ({"executor": "parsl"}, "parsl_config"),
    ],
)
def test_errors_name_the_argument_not_a_flag(catalogs, kwargs, field):
    with pytest.raises(InputError, match=f"^{field}: ") as error:
        features_of_many(catalogs, SENSORS, progress=False, **kwargs)
    assert "--" not in str(error.value)


def test_cli_names_the_flags_of_batch_errors(catalogs, tmp_path, capsys):
    assert main(["features", str(catalogs[0]), "--executor", "parsl"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("cputime features: error: --parsl-config: needed for the parsl executor")
    assert len(err.splitlines()) == 1
    missing = tmp_path / "missing.py"
    assert main(["features", str(catalogs[0]), "--executor", "parsl", "--parsl-config",
                 str(missing)]) == 2  # fmt: skip
    assert capsys.readouterr().err == (
        f"cputime features: error: --parsl-config {missing}: no such file\n"
    )


def test_cli_resume_and_keep_going(catalogs, bad_catalog, serial, tmp_path, capsys):
    out = tmp_path / "features.csv"
    argv = ["features", *map(str, catalogs), str(bad_catalog), "--sensors", ",".join(SENSORS),
            "--resume-dir", str(tmp_path / "work"), "-o", str(out), "--jobs", "2"]
    assert main(argv) == 2
    assert "bad.txt" in capsys.readouterr().err
    assert main([*argv, "--keep-going"]) == 2
    assert "skipped: " in capsys.readouterr().err
    assert len(pd.read_csv(out)) == len(serial)
    assert main([*argv[:-2], "--keep-going"]) == 2  # a serial rerun reads the parts
