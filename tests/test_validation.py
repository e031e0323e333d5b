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


# --- seeded fuzz of whole catalogs, commands files and visit tables ---------------------------

_OBJECT_TEMPLATES = [
    OBJECT,
    "object 2 53.02 -27.45 21.5 galaxySED/Exp.40E09.02Z.spec.gz 0.55 0.001 0.002 0.01 0 0 "
    "sersic2d 0.58 0.44 2.78 1 CCM 0.1 3.1 CCM 0.059 3.1\n",
    "object 3 53.03 -27.40 19 sed.txt 0 0 0 0 0 0 knots 1 2 3 4 none none\n",
    "object 4 53.0 -27.4 18 sed.txt 0 0 0 0 0 0 galaxy.fits 0.1 0 calzetti 0.1 3.1 none\n",
]
_JUNK_TOKENS = ["nan", "inf", "-1e999", "1e308", "-1e30", "400", "-91", "0x1f", "", "٣", "\x00",
                "\ufeff", "9" * 400, "1,5", "--1", ".", "e5", "object", "includeobj", "#", "\t",
                "sersic2d", "ccm", "none", "point", "../x.txt", "/etc/passwd"]


def _fuzzed_line(rng: random.Random, tmp_path: Path, names: list[str]) -> str:
    """One random line: a (mutated) object, header keyword, includeobj, comment or junk."""
    kind = rng.random()
    if kind < 0.45:
        fields = rng.choice(_OBJECT_TEMPLATES).split()
        for _ in range(rng.choice([0, 0, 0, 1, 2])):
            action, at = rng.random(), rng.randrange(len(fields))
            if action < 0.5:
                fields[at] = rng.choice(_JUNK_TOKENS)
            elif action < 0.75:
                del fields[at]
            else:
                fields.insert(at, rng.choice(_JUNK_TOKENS))
        sep = rng.choice([" ", " ", "\t", "  "])
        return sep.join(fields) + rng.choice(["\n", "\n", "\r\n", " \n"])
    if kind < 0.65:
        key = rng.choice(HEADER.split()[::2] + ["exptime", "Opsim_moonalt", "SIM_NSNAP"])
        return f"{key} {rng.choice(_JUNK_TOKENS + ['1', '30', '-27.4', '2'])}\n"
    if kind < 0.75:
        return f"includeobj {rng.choice(names + _JUNK_TOKENS)}\n"
    if kind < 0.9:
        return rng.choice(["#\n", "\n", "   # x\n", " \t\r\n", "# object 1 2 3\n"])
    return rng.choice(["\x00\x01\x02\n", "\xff\n", "é\n", "a" * rng.randint(1, 5000) + "\n",
                       "object\n", "includeobj\n", "includeobj a b\n"])


def _fuzzed_catalog(rng: random.Random, tmp_path: Path, trial: int) -> Path:
    """A random catalog: the base header (sometimes damaged), then random lines; some object
    files next to it, sometimes including each other; plain, gzip, BOM or truncated gzip."""
    names = [f"inc{trial}_{i}.txt" for i in range(3)]
    for name in names[: rng.randint(0, 3)]:
        body = "".join(_fuzzed_line(rng, tmp_path, names) for _ in range(rng.randint(0, 8)))
        (tmp_path / name).write_text(body, encoding="utf-8", errors="surrogatepass")
    header = HEADER if rng.random() < 0.7 else "".join(
        line + "\n" for line in HEADER.splitlines() if rng.random() < 0.9)
    text = header + "".join(_fuzzed_line(rng, tmp_path, names)
                            for _ in range(rng.randint(0, 40)))
    data = text.encode("utf-8", errors="surrogatepass")
    path = tmp_path / f"fuzz{trial}.txt"
    form = rng.random()
    if form < 0.2:
        data = gzip.compress(data)
    elif form < 0.25:
        data = gzip.compress(data)[: rng.randint(2, 40)]
    elif form < 0.3:
        data = b"\xef\xbb\xbf" + data
    path.write_bytes(data)
    return path


def _assert_one_line_error(err: InputError, *sources: Path) -> None:
    message = str(err)
    assert "\n" not in message and "Traceback" not in message
    assert message.startswith(tuple(str(s) for s in sources)), message


def test_seeded_fuzz_of_catalogs_commands_and_visit_tables_gives_only_input_errors(tmp_path):
    """Random catalogs (header, objects, includes, junk), commands files and visit tables:
    each reader gives a result in range or a one-line InputError naming the file, never
    another exception, within bounded memory."""
    import tracemalloc

    import numpy as np
    import pandas as pd

    from cputime.inputs.catalog import iter_object_chunks
    from cputime.inputs.commands import read_commands
    from cputime.inputs.validation import OBJECT_RANGES

    rng = random.Random(2024)
    tracemalloc.start()
    try:
        for trial in range(100):
            path = _fuzzed_catalog(rng, tmp_path, trial)
            includes = [tmp_path / f"inc{trial}_{i}.txt" for i in range(3)]
            try:
                read_header(path)
                header, objects = read_catalog(path)
            except InputError as err:
                _assert_one_line_error(err, path, *includes)
            else:
                for name, allowed in OBJECT_RANGES.items():
                    assert allowed.mask(objects[name].to_numpy()).all(), name
            try:
                for _ in iter_object_chunks(path, chunk_bytes=rng.choice([64, 1 << 20])):
                    pass
            except InputError as err:
                _assert_one_line_error(err, path, *includes)
        for trial in range(150):
            commands = tmp_path / f"commands{trial}.txt"
            lines = [f"{rng.choice(['vistime', 'nsnap', 'zenith_v', 'zenithv', 'seed', 'x'])} "
                     f"{rng.choice(_JUNK_TOKENS + ['2', '30'])}" for _ in range(rng.randint(0, 5))]
            data = "\n".join(lines).encode("utf-8", errors="surrogatepass")
            commands.write_bytes(rng.choice([b"", b"\xef\xbb\xbf", b"\xff\xfe"]) + data)
            try:
                read_commands(commands, allow_unknown=rng.random() < 0.5)
            except InputError as err:
                _assert_one_line_error(err, Path(commands.name))
        columns = ["obshistid", "filter", "altitude", "moonalt", "moonphase", "dist2moon",
                   "sunalt", "vistime", "nsnap", "seeing", "Opsim_moonalt", "rawseeing", "airmass"]
        values = [1, 2, 0, -1, 45.5, 1e300, float("nan"), float("inf"), None, "x", "", "3",
                  "1e999", -30, 200, 2**63, True]
        for _ in range(150):
            chosen, n_rows = rng.sample(columns, rng.randint(0, len(columns))), rng.randint(0, 4)
            table = pd.DataFrame({c: [rng.choice(values) for _ in range(n_rows)] for c in chosen})
            try:
                features = visit_features(table, source="v.csv")
            except InputError as err:
                _assert_one_line_error(err, Path("v.csv"))
            else:
                assert np.isfinite(features["exposure_seconds"]).all()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200 << 20, peak
