"""One validation of physical inputs: the catalog header, visit tables, commands files (see
test_commands.py) and the service (test_service_hostile.py) refuse the same nonsense."""

from __future__ import annotations

import gzip
import os
import random
from pathlib import Path

import pytest

from cputime.errors import InputError
from cputime.frontends.cli import main
from cputime.inputs.catalog import read_catalog, read_header
from cputime.inputs.validation import RANGES, Range, check_value, closest
from cputime.physics.features import catalog_features, visit_features

BASE = Path(__file__).parent / "data" / "instance_catalogs" / "phosim_runs_base_catalog.txt"
HEADER = BASE.read_text().split("object", 1)[0]
OBJECT = "object 1 53.01 -27.44 17.8 flatlambda.txt 0 0 0 0 0 0 point none none\n"


def catalog(tmp_path: Path, replace: dict[str, str | None], name: str = "cat.txt") -> Path:
    """The base catalog's header with keywords replaced (None drops one), and one object."""
    lines = []
    for line in HEADER.splitlines():
        key = line.split()[0]
        if key in replace:
            if replace[key] is not None:
                lines.append(f"{key} {replace[key]}")
        else:
            lines.append(line)
    lines += [f"{k} {v}" for k, v in replace.items() if v is not None and k not in HEADER]
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n" + OBJECT)
    return path


def line_of(path: Path, key: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1)
                if line.split()[0] == key)


@pytest.mark.parametrize(
    ("replace", "key", "message"),
    [
        ({"vistime": "-30"}, "vistime", "vistime: '-30' is not a number > 0 and <= 86400 s"),
        ({"vistime": "0"}, "vistime", "vistime: '0' is not a number > 0"),
        ({"vistime": "1e300"}, "vistime", "vistime: '1e+300' is not a number > 0"),
        ({"vistime": None, "exptime": "-15"}, "exptime", "exptime: '-15' is not a number > 0"),
        ({"nsnap": "-3"}, "nsnap", "nsnap: '-3' is not a whole number >= 1 and <= 100"),
        ({"nsnap": "0"}, "nsnap", "nsnap: '0' is not a whole number >= 1"),
        ({"nsnap": "6"}, "vistime", "vistime: 15 s leaves no exposure for 6 snaps"),
        ({"altitude": "200"}, "altitude", "altitude: '200' is not a number > 0 and <= 90 deg"),
        ({"moonphase": "500"}, "moonphase", "moonphase: '500' is not a number >= 0 and <= 100 "
                                            "percent"),
        ({"rightascension": "400"}, "rightascension", "rightascension: '400' is not a number "
                                                      ">= 0 and <= 360 deg"),
        ({"declination": "-95"}, "declination", "declination: '-95' is not a number >= -90"),
        ({"rawseeing": "1e6"}, "rawseeing", "seeing: '1e+06' is not a number > 0 and <= 20 "
                                            "arcsec"),
        ({"dist2moon": "-1"}, "dist2moon", "dist2moon: '-1' is not a number >= 0 and <= 180"),
        ({"obshistid": "-4"}, "obshistid", "obshistid: '-4' is not a whole number >= 0"),
    ],
)
def test_catalog_header_out_of_range_names_file_line_and_range(tmp_path, replace, key, message):
    path = catalog(tmp_path, replace)
    with pytest.raises(InputError) as caught:
        read_header(path)
    assert str(caught.value) == f"{path}:{line_of(path, key)}: {message}" or str(
        caught.value).startswith(f"{path}:{line_of(path, key)}: {message}")


def test_nonsense_header_is_exit_status_2_not_a_walltime(tmp_path, capsys):
    path = catalog(tmp_path, {"vistime": "-30"})
    assert main(["predict", str(path), "--sensors", "R22_S11", "-o", "-"]) == 2
    err = capsys.readouterr().err
    assert f"{path}:{line_of(path, 'vistime')}: vistime: '-30'" in err


def test_byte_order_mark_is_not_part_of_the_first_keyword(tmp_path):
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + BASE.read_bytes())
    header, objects = read_catalog(path)
    assert header.rightascension == pytest.approx(53.01) and len(objects) > 0
    gz = tmp_path / "bom.txt.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    assert read_header(gz).rightascension == pytest.approx(53.01)


def test_ten_megabyte_line_is_reported_with_its_line_number(tmp_path):
    path = tmp_path / "long.txt"
    path.write_bytes(b"rightascension 53\ndeclination -27\n" + b"x" * (10 << 20) + b"\n")
    with pytest.raises(InputError, match=rf"^{path}:3: line longer than \d+ bytes"):
        read_header(path)


def test_fifo_is_refused_instead_of_blocking(tmp_path):
    fifo = tmp_path / "catalog.fifo"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="not a regular file"):
        read_header(fifo)
    visits = tmp_path / "visits.csv"
    os.mkfifo(visits)
    for path in (fifo, visits):
        assert main(["features", str(path), "-o", str(tmp_path / "f.csv")]) == 2


def test_gzip_inside_gzip_is_refused(tmp_path):
    path = tmp_path / "twice.txt.gz"
    path.write_bytes(gzip.compress(gzip.compress(BASE.read_bytes())))
    with pytest.raises(InputError, match="gzip data inside gzip data"):
        read_header(path)


def test_include_chain_1000_deep_is_one_line_error(tmp_path):
    for i in range(1000):
        (tmp_path / f"part{i}.txt").write_text(f"includeobj part{i + 1}.txt\n" + OBJECT)
    (tmp_path / "part1000.txt").write_text(OBJECT)
    top = tmp_path / "top.txt"
    top.write_text(HEADER + OBJECT + "includeobj part0.txt\n")
    with pytest.raises(InputError, match=r"part15\.txt:1: includeobj 'part16\.txt' nests more "
                                         r"than 16 files deep"):
        catalog_features(top, ["R22_S11"])


def test_visit_table_rows_are_checked_with_their_line(tmp_path):
    import pandas as pd

    good = {"obshistid": 1, "filter": 2, "altitude": 70, "moonalt": -30, "moonphase": 10,
            "dist2moon": 90, "sunalt": -40}
    assert len(visit_features(pd.DataFrame([good]), source="v.csv")) == 1
    for key, value, message in [
        ("vistime", -30, "v.csv:3: vistime: '-30' is not a number > 0"),
        ("nsnap", 0, "v.csv:3: nsnap: '0' is not a whole number >= 1"),
        ("moonphase", 500, "v.csv:3: moonphase: '500' is not a number >= 0 and <= 100"),
        ("altitude", 200, "v.csv:3: altitude: '200'"),
        ("seeing", float("inf"), "v.csv:3: seeing: 'inf' is not a number > 0"),
    ]:
        with pytest.raises(InputError) as caught:
            visit_features(pd.DataFrame([good, {**good, key: value}]), source="v.csv")
        assert str(caught.value).startswith(message)


def test_range_words_and_closest_key():
    assert Range(0, 86400, "s", low_open=True).describe() == "a number > 0 and <= 86400 s"
    assert closest("ZENITH_V", ["zenith_v", "zenith"]) == "zenith_v"
    assert closest("zenithv", ["zenith_v", "domelight"]) == "zenith_v"
    assert closest("qqqqqq", ["zenith_v"]) is None
    check_value("no_such_key", -1e300, "x")  # names without a range are not checked here


def test_seeded_fuzz_of_headers_never_tracebacks(tmp_path):
    """Random headers (values in and out of range, junk tokens): InputError or a header."""
    rng = random.Random(12)
    keys = [line.split()[0] for line in HEADER.splitlines()] + ["exptime", "airmass", "nsnap"]
    junk = ["nan", "inf", "-inf", "1e999", "-0", "0x10", "", "1e-320", "١", "\x00", "\ufeff",
            "9" * 400, "1,5", "--1", "+.5", ".", "e5"]
    for trial in range(300):
        replace: dict[str, str | None] = {}
        for key in rng.sample(keys, rng.randint(1, 4)):
            choice = rng.random()
            if choice < 0.15:
                replace[key] = None
            elif choice < 0.45:
                replace[key] = rng.choice(junk)
            else:
                scale = 10 ** rng.uniform(-3, 12)
                replace[key] = repr(rng.uniform(-scale, scale))
        path = catalog(tmp_path, replace, name=f"fuzz{trial}.txt")
        try:
            header = read_header(path)
        except InputError as err:
            assert "\n" not in str(err) and str(err).startswith(str(path))
            continue
        for name, allowed in RANGES.items():
            value = getattr(header, name, None)
            if value is not None:
                assert allowed.contains(float(value)), (name, value)


def test_object_brighter_than_the_sun_is_refused_not_an_overflowed_walltime(tmp_path, capsys):
    path = tmp_path / "bright.txt"
    path.write_text(BASE.read_text() + OBJECT.replace("17.8", "-1e30"))
    assert main(["predict", str(path), "--sensors", "R22_S11", "-o", "-"]) == 2
    line = len(BASE.read_text().splitlines()) + 1
    assert f"{path}:{line}: field 5 (magnorm): '-1e30' is not a number >= -30 mag" in (
        capsys.readouterr().err)


def test_seeded_fuzz_of_commands_files_never_tracebacks():
    from cputime.inputs.commands import COST_KEYS, KNOWN_PHOSIM_KEYS, parse_commands

    rng = random.Random(12)
    keys = [*COST_KEYS, *sorted(KNOWN_PHOSIM_KEYS)[:40], "zenithv", "ZENITH_V", "#", "x"]
    values = ["1000", "-1", "0", "nan", "inf", "1e300", "2.5", "", "a b", "3", "-0", "1e-320",
              "\x00", "٣"]
    for _ in range(500):
        text = "\n".join(f"{rng.choice(keys)} {rng.choice(values)}"
                         for _ in range(rng.randint(0, 6)))
        for allow in (False, True):
            try:
                commands = parse_commands(text, source="cmd.txt", allow_unknown=allow)
            except InputError as err:
                assert str(err).startswith("cmd.txt:") and "\n" not in str(err)
                continue
            for key, value in commands.overrides().items():
                assert RANGES[key].contains(float(value)), (key, value)
