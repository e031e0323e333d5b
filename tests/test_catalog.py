"""Tests for cputime.inputs.catalog and its header and objects modules: headers, objects,
includes, plain/gzip input, and bad input."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from cputime.errors import InputError
from cputime.inputs import catalog
from cputime.inputs import objects as object_parser
from cputime.inputs.catalog import (
    SPATIAL_MODELS,
    CatalogHeader,
    iter_object_chunks,
    read_catalog,
    read_header,
)
from cputime.inputs.lines import tokens

DATA = Path(__file__).parent / "data" / "instance_catalogs"

HEADER = """rightascension 53.0091385
declination -27.4389488
mjd 59580.1354
altitude 67.7483059
azimuth 270.941772
filter 1
rotskypos 256.719412
dist2moon 124.329951
moonalt -36.2196989
moondec -23.4843941
moonphase 3.838714
moonra 256.312326
nsnap 1
obshistid 220
seed 11699
seeing 0.869226
sunalt -32.2253236
vistime 30
"""
OLD_HEADER = """Opsim_obshistid 220
SIM_SEED 11699
Unrefracted_RA 53.0091385
Unrefracted_Dec -27.4389488
Opsim_moonra 256.312326
Opsim_moondec -23.4843941
Opsim_rotskypos 256.719412
Opsim_filter 1
Opsim_rawseeing 0.869226
Opsim_sunalt -32.2253236
Opsim_moonalt -36.2196989
Opsim_dist2moon 124.329951
Opsim_moonphase 3.838714
Opsim_expmjd 59580.1354
Opsim_altitude 67.7483059
Opsim_azimuth 270.941772
exptime 30
airmass 1.080465
SIM_NSNAP 1
SIM_VISTIME 30
"""
STAR = ("object {i} {ra} -27.3 {mag} starSED/phoSimMLT/lte033-4.5-1.0a+0.4.BT-Settl.spec.gz "
        "0 0 0 0 0 0 point none CCM 0.0635 3.1\n")
GALAXY = ("object {i} {ra} -27.5 {mag} galaxySED/Exp.40E09.02Z.spec.gz 0.55 0.001 0.002 0.01 0 0 "
          "sersic2d 0.58 0.44 2.78 1 CCM 0.1 3.1 CCM 0.059 3.1\n")


def object_lines(n: int = 40) -> list[str]:
    rng = np.random.default_rng(1)
    return [(GALAXY if i % 3 else STAR).format(i=i, ra=53 + rng.random(), mag=20 + i % 7)
            for i in range(n)]


def write(path: Path, text: str, gz: bool = False) -> Path:
    if gz:
        with gzip.open(path, "wt") as f:
            f.write(text)
    else:
        path.write_text(text)
    return path


def objects(path: Path, **kwargs) -> dict[str, np.ndarray]:
    chunks = list(iter_object_chunks(path, **kwargs))
    names = ("ra", "dec", "magnorm", "model_code", "is_point")
    return {n: np.concatenate([getattr(c, n) for c in chunks]) if chunks else np.empty(0)
            for n in names}


def assert_same_objects(a: dict, b: dict) -> None:
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


# --- the example catalogs -------------------------------------------------------------------


def test_imsim_tiny_catalog():
    header, table = read_catalog(DATA / "imsim_tiny_instcat.txt")
    assert header.obshistid == 161899
    assert header.filter == 2
    assert header.vistime == 33.0
    assert header.nsnap == 2
    assert header.moonphase == pytest.approx(59.6288830)
    assert header.airmass is None
    assert header.raw["seqnum"] == "0"
    # The commented-out object is skipped; knots and FITS-image models are known.
    assert len(table) == 24
    counts = table["spatial_model"].value_counts()
    assert (counts["point"], counts["sersic2d"], counts["knots"], counts["image"]) == (10, 11, 2, 1)
    assert table["is_point"].sum() == 10
    assert table["magnorm"].max() == 1000.0
    assert table["ra"].iloc[0] == pytest.approx(31.2400746)


def test_old_style_header_maps_to_canonical_names():
    header = read_header(DATA / "phosim_instance_catalog_visit220_excerpt.txt")
    assert isinstance(header, CatalogHeader)
    assert header.obshistid == 220
    assert header.rightascension == pytest.approx(53.0091385)
    assert header.declination == pytest.approx(-27.4389488)
    assert header.filter == 1
    assert header.seeing == pytest.approx(0.869226)
    assert header.mjd == pytest.approx(59580.1354)
    assert (header.vistime, header.nsnap, header.seed) == (30.0, 1, 11699)
    assert header.airmass == pytest.approx(1.080465)
    assert header.raw["Opsim_filter"] == "1"
    _, table = read_catalog(DATA / "phosim_instance_catalog_visit220_excerpt.txt")
    assert len(table) == 79 and table["is_point"].all()


@pytest.mark.parametrize(("name", "n_objects", "obshistid"), [
    ("phosim_combined_first200.txt", 181, 230),
    ("phosim_runs_base_catalog.txt", 50, 9003),
])
def test_more_example_catalogs(name, n_objects, obshistid):
    header, table = read_catalog(DATA / name)
    assert header.obshistid == obshistid
    assert len(table) == n_objects


def test_header_only_catalog_with_missing_includes():
    header = read_header(DATA / "phosim_cat_466749_header_only.txt")
    assert header.minsource == 100 and header.camconfig == 1
    assert [p.name for p in header.includes][:2] == ["star_cat_466749.txt.gz",
                                                     "knots_cat_466749.txt.gz"]
    with pytest.raises(InputError, match=r"header_only\.txt:22: includeobj file "
                                         r"'star_cat_466749\.txt\.gz' not found"):
        list(iter_object_chunks(DATA / "phosim_cat_466749_header_only.txt"))


# --- the same objects however the catalog is written ---------------------------------------


def test_plain_gzip_old_header_and_includes_give_the_same_objects(tmp_path):
    lines = object_lines(60)
    reference = objects(write(tmp_path / "plain.txt", HEADER + "".join(lines)))
    assert len(reference["ra"]) == 60
    assert reference["is_point"].sum() == 20
    # gzip detected by content, whatever the name says
    gz = write(tmp_path / "catalog.txt", HEADER + "".join(lines), gz=True)
    assert_same_objects(reference, objects(gz))
    assert_same_objects(reference, objects(write(tmp_path / "old.txt",
                                                 OLD_HEADER + "".join(lines))))
    # split into includeobj files, one gzipped, one in a sub-folder, nested one level
    (tmp_path / "sub").mkdir()
    write(tmp_path / "part1.txt.gz", "".join(lines[:25]), gz=True)
    write(tmp_path / "sub" / "part3.txt", "".join(lines[40:]))
    write(tmp_path / "part2.txt", "".join(lines[25:40]) + "includeobj sub/part3.txt\n")
    top = write(tmp_path / "top.txt", HEADER + "includeobj part1.txt.gz\nincludeobj part2.txt\n")
    assert_same_objects(reference, objects(top))
    assert [p.name for p in read_header(top).includes] == ["part1.txt.gz", "part2.txt"]


def test_small_chunks_keep_objects_and_line_numbers(tmp_path):
    lines = object_lines(300)
    path = write(tmp_path / "cat.txt", HEADER + "# a comment\n\n" + "".join(lines), gz=True)
    reference = objects(path)
    assert_same_objects(reference, objects(path, chunk_bytes=1000))
    bad = lines.copy()
    bad[250] = bad[250].replace(" 0.55 ", " zz ", 1)
    path = write(tmp_path / "bad.txt", HEADER + "# a comment\n\n" + "".join(bad))
    line = len(HEADER.splitlines()) + 2 + 251
    for chunk_bytes in (1000, 1 << 20):
        with pytest.raises(InputError, match=rf"bad\.txt:{line}: field 7 \(redshift\): 'zz'"):
            objects(path, chunk_bytes=chunk_bytes)


def test_windows_line_endings_tabs_and_odd_spacing(tmp_path):
    lines = object_lines(10)
    odd = [line.replace(" ", "\t", 3).replace("\n", "\r\n") for line in lines[:5]]
    odd += ["   " + line.replace(" 0 0 ", "  0   0 ") for line in lines[5:]]
    path = write(tmp_path / "odd.txt", HEADER.replace("\n", "\r\n") + "".join(odd))
    assert_same_objects(objects(write(tmp_path / "ref.txt", HEADER + "".join(lines))),
                        objects(path))


def test_other_spatial_models_and_dust(tmp_path):
    base = "object 1 10 -5 20 sed.txt 0 0 0 0 0 0 "
    lines = [base + "gauss 0.5 calzetti 0.1 3.1 none\n",
             base + "movingpoint 1 2 none none\n",
             base + "sersic 1 2 3 4 5 6 7 none none\n",
             base + "pinhole 1 2 3 4 none CALZETTI 1 2\n",
             base + "sersicDiscComplex " + " ".join(["1"] * 15) + " none none\n",
             base + "Sersic2D 1 2 3 4 ccm 1 2 none\n",
             base + "galaxy.fits.gz 0.1 0 none none\n"]
    found = objects(write(tmp_path / "m.txt", HEADER + "".join(lines)))
    names = [SPATIAL_MODELS[c] for c in found["model_code"]]
    assert names == ["gauss", "movingpoint", "sersic", "pinhole", "sersiccomplex", "sersic2d",
                     "image"]


def test_empty_catalog_has_no_objects(tmp_path):
    path = write(tmp_path / "empty.txt", HEADER)
    assert list(iter_object_chunks(path)) == []
    header, table = read_catalog(path)
    assert header.obshistid == 220 and len(table) == 0


def test_vistime_from_exptime(tmp_path):
    no_vistime = HEADER.replace("vistime 30\n", "exptime 15\n").replace("nsnap 1", "nsnap 2")
    assert read_header(write(tmp_path / "a.txt", no_vistime)).vistime == 33.0
    single = HEADER.replace("vistime 30\n", "exptime 30\n").replace("nsnap 1\n", "")
    assert read_header(write(tmp_path / "b.txt", single)).vistime == 30.0


def test_agreeing_duplicates_and_late_keywords(tmp_path):
    text = HEADER + "SIM_VISTIME 30.0\n" + "".join(object_lines(3)) + "filter 1\n"
    path = write(tmp_path / "dup.txt", text)
    assert read_header(path).vistime == 30.0
    assert len(objects(path)["ra"]) == 3


def test_filter_letter_and_keyword_case(tmp_path):
    header = read_header(write(tmp_path / "f.txt", HEADER.replace("filter 1", "FILTER g")))
    assert header.filter == 1


# --- bad input -----------------------------------------------------------------------------

GOOD_STAR = STAR.format(i=7, ra=53.1, mag=21)
N_HEADER = len(HEADER.splitlines())


@pytest.mark.parametrize(("line", "message"), [
    (GOOD_STAR.replace(" 21 ", " x1 "), r"field 5 \(magnorm\): 'x1' is not a number"),
    (GOOD_STAR.replace(" 53.1 ", " 53.1.2 "), r"field 3 \(ra\): '53.1.2' is not a number"),
    (GOOD_STAR.replace(" 21 ", " 1e999 "), r"field 5 \(magnorm\): '1e999' is not a finite"),
    ("object 7 53.1 -27.3 21 sed.txt 0 0 0\n", r"field 10 \(kappa\) is missing"),
    (GOOD_STAR.replace(" point ", " blob "), r"field 13 \(spatialmodel\): unknown spatial model "
                                             r"'blob'"),
    (GALAXY.format(i=1, ra=53, mag=22).replace(" 1 CCM 0.1", " CCM 0.1"),
     r"field 17 \(sersic2d parameter 4\): 'CCM' is not a number"),
    (GOOD_STAR.replace(" none ", " dusty "), r"field 14 \(dust_rest\): 'dusty' is not a dust "
                                             r"model"),
    (GOOD_STAR.replace(" 3.1\n", "\n"), r"field 17 \(dust_lab Rv\) is missing"),
    (GOOD_STAR.replace(" 3.1\n", " 3.1 junk\n"), r"field 18: unexpected extra field 'junk'"),
    (GOOD_STAR.replace("0.0635", "0.06x"), r"field 16 \(dust_lab Av\): '0.06x'"),
    ("object\n", r"field 2 \(id\) is missing"),
    (GOOD_STAR.replace(" 53.1 ", " 400 "), r"field 3 \(ra\): '400' is not a number >= 0 and "
                                           r"<= 360 deg"),
    (GOOD_STAR.replace(" 53.1 ", " -0.5 "), r"field 3 \(ra\): '-0.5' is not a number >= 0"),
    (GOOD_STAR.replace(" -27.3 ", " -90.01 "), r"field 4 \(dec\): '-90.01' is not a number "
                                               r">= -90 and <= 90 deg"),
    (GOOD_STAR.replace(" -27.3 ", " 1e3 "), r"field 4 \(dec\): '1e3' is not a number"),
    (GOOD_STAR.replace(" 21 ", " -1e30 "), r"field 5 \(magnorm\): '-1e30' is not a number >= "
                                           r"-30 mag"),
    # Written unusually (leading blanks), so read by the per-line parser: the same checks.
    ("  " + GOOD_STAR.replace(" -27.3 ", " 91 "), r"field 4 \(dec\): '91' is not a number"),
], ids=["magnorm", "ra", "infinite", "few-fields", "model", "params", "dust", "dust-rv", "junk",
        "dust-av", "bare", "ra-over-360", "ra-negative", "dec-below-pole", "dec-huge",
        "brighter-than-the-sun", "indented-dec"])
def test_bad_object_lines(tmp_path, line, message):
    lines = object_lines(5)
    path = write(tmp_path / "cat.txt", HEADER + "".join(lines[:3]) + line + "".join(lines[3:]))
    with pytest.raises(InputError, match=rf"^{tmp_path}/cat\.txt:{N_HEADER + 4}: {message}") as e:
        list(iter_object_chunks(path))
    assert "\n" not in str(e.value)


@pytest.mark.parametrize(("text", "line", "message"), [
    (HEADER.replace("rotskypos 256.719412\n", "").replace("obshistid 220\n", ""), None,
     r"missing required header keyword\(s\): rotskypos, obshistid"),
    (HEADER.replace("vistime 30\n", ""), None,
     r"missing required header keyword\(s\): vistime \(or exptime\)"),
    (HEADER + "SIM_VISTIME 33\n", N_HEADER + 1,
     r"'SIM_VISTIME 33' disagrees with 'vistime 30' on line 18"),
    (HEADER.replace("filter 1", "filter 7"), 6, r"filter: '7' is not a filter"),
    (HEADER.replace("moonalt -36.2196989", "moonalt low"), 9, r"moonalt: 'low' is not a number"),
    (HEADER + "seeing\n", N_HEADER + 1, r"header keyword 'seeing' has no value"),
], ids=["required", "vistime", "duplicate", "filter", "number", "no-value"])
def test_bad_headers(tmp_path, text, line, message):
    path = write(tmp_path / "h.txt", text + GOOD_STAR)
    where = f"{tmp_path}/h.txt:{line}" if line else f"{tmp_path}/h.txt"
    with pytest.raises(InputError, match=rf"^{where}: {message}"):
        read_header(path)
    with pytest.raises(InputError, match=rf"^{where}: {message}"):
        read_catalog(path)


def test_late_keyword_that_disagrees_or_is_new(tmp_path):
    lines = "".join(object_lines(3))
    path = write(tmp_path / "late.txt", HEADER + lines + "filter 3\n")
    with pytest.raises(InputError, match=rf"late\.txt:{N_HEADER + 4}: 'filter 3' disagrees"):
        list(iter_object_chunks(path))
    path = write(tmp_path / "new.txt", HEADER + lines + "airmass 1.2\n")
    with pytest.raises(InputError, match=r"new\.txt:\d+: header keyword 'airmass' after the "):
        list(iter_object_chunks(path))


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.txt: no such file"):
        read_header(tmp_path / "nope.txt")
    with pytest.raises(InputError, match=r"nope\.txt: no such file"):
        list(iter_object_chunks(tmp_path / "nope.txt"))


def test_truncated_gzip(tmp_path):
    full = write(tmp_path / "full.txt.gz", HEADER + "".join(object_lines(2000)), gz=True)
    cut = tmp_path / "cut.txt.gz"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.raises(InputError, match=r"cut\.txt\.gz: gzip data is truncated"):
        list(iter_object_chunks(cut))


def test_corrupt_gzip(tmp_path):
    data = bytearray(write(tmp_path / "g.gz", HEADER + "".join(object_lines(500)),
                           gz=True).read_bytes())
    data[200:260] = bytes(60)
    (tmp_path / "g.gz").write_bytes(bytes(data))
    with pytest.raises(InputError, match=r"g\.gz: corrupt gzip data"):
        list(iter_object_chunks(tmp_path / "g.gz"))


@pytest.mark.parametrize("garbage", [b"\x00\x01\x02\xff\xfe" * 20, b"\x89PNG\r\n\x1a\n\x00\x00"])
def test_binary_garbage(tmp_path, garbage):
    lines = object_lines(4)
    path = tmp_path / "bin.txt"
    path.write_bytes((HEADER + "".join(lines[:2])).encode() + garbage + b"\n"
                     + "".join(lines[2:]).encode())
    with pytest.raises(InputError, match=rf"bin\.txt:{N_HEADER + 3}: binary \(non-text\) data"):
        list(iter_object_chunks(path))
    path.write_bytes(garbage + b"\n" + HEADER.encode())
    with pytest.raises(InputError, match=r"bin\.txt:1: binary \(non-text\) data"):
        read_header(path)


def test_include_outside_folder_is_refused(tmp_path):
    (tmp_path / "cat").mkdir()
    write(tmp_path / "outside.txt", "".join(object_lines(3)))
    top = write(tmp_path / "cat" / "top.txt", HEADER + "includeobj ../outside.txt\n")
    with pytest.raises(InputError, match=rf"top\.txt:{N_HEADER + 1}: includeobj "
                                         r"'\.\./outside\.txt' resolves outside"):
        list(iter_object_chunks(top))
    with pytest.raises(InputError, match="resolves outside"):
        read_header(top)
    assert len(objects(top, allow_outside=True)["ra"]) == 3


def test_include_symlink_escaping_is_refused(tmp_path):
    (tmp_path / "cat").mkdir()
    write(tmp_path / "outside.txt", "".join(object_lines(3)))
    (tmp_path / "cat" / "link.txt").symlink_to(tmp_path / "outside.txt")
    top = write(tmp_path / "cat" / "top.txt", HEADER + "includeobj link.txt\n")
    with pytest.raises(InputError, match="resolves outside"):
        list(iter_object_chunks(top))


def test_header_keyword_in_included_file_and_include_cycle(tmp_path):
    write(tmp_path / "part.txt", "filter 2\n" + "".join(object_lines(2)))
    top = write(tmp_path / "top.txt", HEADER + "includeobj part.txt\n")
    with pytest.raises(InputError, match=r"part\.txt:1: header keyword 'filter' in an included"):
        list(iter_object_chunks(top))
    write(tmp_path / "loop.txt", "includeobj loop.txt\n")
    top = write(tmp_path / "top2.txt", HEADER + "includeobj loop.txt\n")
    with pytest.raises(InputError, match=r"loop\.txt:1: includeobj 'loop\.txt' includes itself"):
        list(iter_object_chunks(top))


_REAL_CATALOGS = [
    "imsim_tiny_instcat.txt",
    "phosim_combined_first200.txt",
    "phosim_instance_catalog_visit220_excerpt.txt",
    "phosim_runs_base_catalog.txt",
]


def _respaced(line: bytes) -> bytes:
    """The same object line with runs of blanks, tabs and a Windows line ending."""
    return line.rstrip(b"\n").replace(b" ", b" \t ", 3).replace(b" ", b"  ") + b"\r\n"


@pytest.mark.parametrize("name", _REAL_CATALOGS)
@pytest.mark.parametrize("spacing", ["as written", "respaced"])
def test_vectorised_object_parse_equals_the_line_by_line_one(name, spacing):
    # The fast path (fields located from the blanks, numbers cast in place), its fallback
    # (lines split at any whitespace) and the per-line checker that explains bad lines must
    # read the same numbers from real catalogs' object lines.
    lines = [line + b"\n" for line in (DATA / name).read_bytes().splitlines()
             if line.startswith(b"object")]
    if spacing == "respaced":
        lines = [_respaced(line) for line in lines]
    data = b"".join(lines)
    parsed = object_parser.parse_chunk(data)
    assert parsed.error is None and parsed.object_line.size == len(lines)
    buf = np.frombuffer(data, dtype=np.uint8)
    blanks = np.flatnonzero(buf <= 32)
    starts = np.concatenate([[0], blanks[buf[blanks] == 10][:-1] + 1])
    # Single blanks take the fast path; runs of blanks fall back to splitting.
    located = object_parser._located_fields(data, blanks, starts)
    assert (located is None) == (spacing == "respaced")
    slow = np.array([object_parser._parse_object_tokens(tokens(line.decode()))
                     for line in lines])
    text = pa.array([line.decode() for line in lines])
    numbers, position = object_parser._split_fields(text)
    split = object_parser._object_values(text, numbers, position)
    for column, values in enumerate((parsed.ra, parsed.dec, parsed.magnorm, parsed.model_code)):
        assert np.array_equal(values, slow[:, column])
        assert np.array_equal(values, split[column])


def test_positions_at_the_edges_of_their_ranges_are_read(tmp_path):
    edges = [STAR.format(i=i, ra=ra, mag=20).replace(" -27.3 ", f" {dec} ")
             for i, (ra, dec) in enumerate([(0, -90), (360, 90), (359.999, 0), (0.0, -27)])]
    found = objects(write(tmp_path / "edges.txt", HEADER + "".join(edges)))
    assert found["ra"].tolist() == [0, 360, 359.999, 0]
    assert found["dec"].tolist() == [-90, 90, 0, -27]


# --- comment and blank lines, however many ---------------------------------------------------


def _reference_meaningful_lines(data: bytes) -> list[tuple[int, bytes]]:
    return [(i, line) for i, line in enumerate(data.splitlines(keepends=True))
            if tokens(line.decode("latin-1")) and not tokens(line.decode("latin-1"))[0]
            .startswith("#")]


def test_meaningful_lines_skips_blank_and_comment_lines_like_the_line_by_line_reader(
        monkeypatch):
    from cputime.inputs import lines as lines_module

    monkeypatch.setattr(lines_module, "_SLICE_BYTES", 64)  # many slices, lines across them
    rng = np.random.default_rng(3)
    kinds = [b"\n", b"#\n", b"# note\n", b"   # indented\n", b" \t \r\n", b"\r\n", b"#",
             b"x 1\n", b"  object 1 2\n", b"\tfilter 2\n", GOOD_STAR.encode(), b"a" * 150 + b"\n"]
    for _ in range(50):
        picks = rng.integers(0, len(kinds), rng.integers(1, 60))
        data = b"".join(kinds[k] for k in picks)
        data = data if data.endswith(b"\n") else data + b"\n"
        index, start, end, n_lines = lines_module.meaningful_lines(data)
        assert n_lines == data.count(b"\n")
        got = [(int(i), data[s:e]) for i, s, e in zip(index, start, end, strict=True)]
        assert got == _reference_meaningful_lines(data)


def test_catalog_of_mostly_comment_lines_is_read_in_bounded_memory(tmp_path):
    import tracemalloc

    # 48 MB of blank and comment lines (each chunk is parsed packed, without a Python object
    # per line) between objects, one of them bad: same objects, the right line numbers.
    lines = object_lines(30)
    filler = b"#\n" * (8 << 20) + b"\n" * (8 << 20) + b"  # indented\n" * (1 << 20)
    n_filler = filler.count(b"\n")
    text = (HEADER + "".join(lines[:10])).encode() + filler + "".join(lines[10:]).encode()
    path = tmp_path / "comments.txt.gz"
    path.write_bytes(gzip.compress(text, compresslevel=1))
    tracemalloc.start()
    try:
        found = objects(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert_same_objects(found, objects(write(tmp_path / "plain.txt",
                                             HEADER + "".join(lines))))
    # Old reader: one Python tuple and bytes object per comment line, over 2 GB here.
    assert peak < 200 << 20, peak
    bad = lines[10].replace(" 0.55 ", " zz ")  # the first object line after the filler
    path.write_bytes(gzip.compress(text.replace(lines[10].encode(), bad.encode()),
                                   compresslevel=1))
    line = N_HEADER + 10 + n_filler + 1
    with pytest.raises(InputError, match=rf"comments\.txt\.gz:{line}: field 7 \(redshift\)"):
        objects(path)


def test_header_after_many_comment_lines_keeps_its_line_numbers(tmp_path):
    path = write(tmp_path / "h.txt", "#\n" * 300_000 + "\n  # x\n" + HEADER.replace(
        "moonalt -36.2196989", "moonalt low") + GOOD_STAR)
    with pytest.raises(InputError, match=rf"h\.txt:{300_000 + 2 + 9}: moonalt: 'low'"):
        read_header(path)


# --- includeobj fan-out ----------------------------------------------------------------------


def test_includeobj_fan_out_is_capped_with_the_line_that_crossed_the_limit(tmp_path):
    # 10 files that each include the same 10 files, 3 levels: 1,110 includes of 30 files.
    for level in (1, 2, 3):
        for j in range(10):
            includes = "".join(f"includeobj L{level + 1}_{i}.txt\n" for i in range(10))
            write(tmp_path / f"L{level}_{j}.txt", (includes if level < 3 else "") + GOOD_STAR)
    top = write(tmp_path / "top.txt",
                HEADER + "".join(f"includeobj L1_{i}.txt\n" for i in range(10)))
    # Depth first, each L1 file brings 1 + 10 + 100 files: 222 for L1_0 and L1_1, then L1_2
    # and its first 3 L2 files with their 10 L3 files each make 256; L1_2 line 4 is the 257th.
    with pytest.raises(InputError, match=rf"^{tmp_path}/L1_2\.txt:4: includeobj 'L2_3\.txt' "
                                         r"is one file too many: a catalog may pull in at most "
                                         r"256 object files"):
        objects(top)
    # The header walk lists each file once: 30 files, under the cap.
    assert len(catalog.header_includes(top)) == 30


def test_tens_of_includes_are_read(tmp_path):
    lines = object_lines(40)
    for i, line in enumerate(lines):
        write(tmp_path / f"part{i}.txt.gz", line, gz=True)
    top = write(tmp_path / "top.txt",
                HEADER + "".join(f"includeobj part{i}.txt.gz\n" for i in range(40)))
    assert len(read_header(top).includes) == 40
    assert_same_objects(objects(top), objects(write(tmp_path / "one.txt",
                                                    HEADER + "".join(lines))))



def test_header_includes_lists_includes_after_objects_only_where_a_line_starts(tmp_path):
    for name in ("a.txt", "b.txt", "c.txt"):
        write(tmp_path / name, GOOD_STAR)
    top = write(tmp_path / "top.txt", HEADER + "includeobj a.txt\n" + GOOD_STAR
                + "# includeobj nothere.txt\n" + " \tIncludeObj b.txt\n" + GOOD_STAR
                + "includeobj\tc.txt\n")
    assert catalog.header_includes(top) == tuple(tmp_path / n for n in ("a.txt", "b.txt",
                                                                        "c.txt"))


def test_included_text_is_capped_with_the_line_that_crossed_the_limit(tmp_path):
    part = write(tmp_path / "part.txt.gz", GOOD_STAR * 10, gz=True)  # the limit counts text
    size = len(GOOD_STAR) * 10
    top = write(tmp_path / "top.txt", HEADER + "includeobj part.txt.gz\n" + GOOD_STAR
                + "includeobj part.txt.gz\n")
    assert len(objects(top, max_included_bytes=2 * size)["ra"]) == 21
    line = HEADER.count("\n") + 3  # the second include
    with pytest.raises(InputError, match=rf"^{tmp_path}/top\.txt:{line}: includeobj 'part\.txt"
                                         rf"\.gz' takes the included object files over "
                                         rf"{2 * size - 1} bytes of text in all"):
        objects(top, max_included_bytes=2 * size - 1)
    assert part.stat().st_size < size
    with pytest.raises(InputError, match=rf"top\.txt:{line - 2}: includeobj"):
        catalog.read_catalog(top, max_included_bytes=size - 1)


def test_open_catalog_reads_header_and_objects_in_one_pass_as_the_two_readers_do(tmp_path):
    lines = object_lines(30)
    write(tmp_path / "a.txt", "".join(lines[:10]))
    write(tmp_path / "late.txt", "".join(lines[20:]))
    first, rest = HEADER.split("\n", 1)
    # An include inside the header block, header lines after it, a long comment run before
    # them, and an include after the objects.
    text = (first + "\nincludeobj a.txt\n" + "# comment\n" * 5000 + rest + "".join(lines[10:20])
            + "includeobj late.txt\n")
    for gz in (False, True):
        top = write(tmp_path / "top.txt", text, gz=gz)
        header, items = catalog.open_catalog(top, chunk_bytes=4096)
        chunks = list(items)
        assert header == read_header(top)
        assert [p.name for p in header.includes] == ["a.txt"]
        got = {n: np.concatenate([getattr(c, n) for c in chunks])
               for n in ("ra", "dec", "magnorm", "model_code", "is_point")}
        assert_same_objects(objects(top), got)
        assert len(got["ra"]) == 30
    # Header problems come before any object; object-line problems while iterating.
    with pytest.raises(InputError, match=r"top\.txt: missing required header keyword"):
        catalog.open_catalog(write(tmp_path / "top.txt", rest.split("\n", 1)[1] + lines[0]))
    header, chunks = catalog.open_catalog(write(tmp_path / "top.txt", text + "object 1\n"))
    with pytest.raises(InputError, match=rf"top\.txt:{text.count(chr(10)) + 1}: "):
        list(chunks)


def test_recording_reads_lists_every_file_opened_with_its_size_and_time(tmp_path):
    write(tmp_path / "a.txt", GOOD_STAR)
    write(tmp_path / "late.txt", GOOD_STAR + "includeobj a.txt\n")
    top = write(tmp_path / "top.txt", HEADER + "includeobj a.txt\n" + GOOD_STAR
                + "includeobj late.txt\n")
    with catalog.recording_reads() as files:
        catalog.read_catalog(top)
    assert [Path(name).name for name, _, _ in files] == ["top.txt", "a.txt", "late.txt", "a.txt"]
    stat = (tmp_path / "late.txt").stat()
    assert files[2] == (str(tmp_path / "late.txt"), stat.st_size, stat.st_mtime_ns)
    objects(top)  # outside the block nothing is recorded
    assert len(files) == 4
