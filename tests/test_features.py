"""Per-sensor features of small catalogs with objects at known positions, and of visit tables."""

import gzip
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from cputime.errors import InputError
from cputime.inputs.commands import parse_commands
from cputime.physics.features import (
    CONDITION_COLUMNS,
    FEATURE_COLUMNS,
    catalog_features,
    read_visit_table,
    visit_features,
)
from cputime.physics.photons import source_photons

DATA = Path(__file__).parent / "data"
ROOT = Path(__file__).resolve().parents[1]
RA0, DEC0 = 53.0, -27.4

NEW_HEADER = f"""rightascension {RA0}
declination {DEC0}
mjd 59580.1
altitude 70.0
azimuth 180.0
filter 2
rotskypos 0.0
rottelpos 0.0
seeing 0.7
moonra 200.0
moondec -10.0
moonphase 10.0
moonalt -30.0
sunalt -40.0
dist2moon 130.0
seed 1000
vistime 33
nsnap 2
obshistid 77
"""

OLD_HEADER = f"""Opsim_obshistid 77
SIM_SEED 1000
Unrefracted_RA {RA0}
Unrefracted_Dec {DEC0}
Opsim_moonra 200.0
Opsim_moondec -10.0
Opsim_rotskypos 0.0
Opsim_filter 2
Opsim_rawseeing 0.7
Opsim_sunalt -40.0
Opsim_moonalt -30.0
Opsim_dist2moon 130.0
Opsim_moonphase 10.0
Opsim_expmjd 59580.1
Opsim_altitude 70.0
Opsim_azimuth 180.0
SIM_NSNAP 2
SIM_VISTIME 33
"""


def star(i: int, ra: float, dec: float, mag: float) -> str:
    return f"object {i} {ra:.7f} {dec:.7f} {mag} flat.txt 0 0 0 0 0 0 point none none"


def galaxy(i: int, ra: float, dec: float, mag: float) -> str:
    return (
        f"object {i} {ra:.7f} {dec:.7f} {mag} gal.txt 0.5 0 0 0 0 0 sersic2d 1.0 0.5 30 1 "
        "CCM 0.1 3.1 none"
    )


def off_north(degrees: float) -> tuple[float, float]:
    return RA0, DEC0 + degrees


OBJECTS = [
    star(1, RA0, DEC0, 9.0),  # at the boresight: on R22_S11, brighter than 10
    star(2, *off_north(1.5), 12.0),  # 270 mm north: R24_S11 by hand (y = 254 + 16 mm)
    star(3, RA0 + 0.01, DEC0 + 0.01, 14.5),
    star(4, RA0 - 0.02, DEC0, 17.0),
    galaxy(5, RA0 + 0.02, DEC0 - 0.02, 21.0),
    galaxy(6, RA0 - 0.01, DEC0 + 0.02, 22.0),
]


def write(path: Path, text: str, gz: bool = False) -> Path:
    data = text.encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


@pytest.fixture
def catalog(tmp_path) -> Path:
    return write(tmp_path / "cat.txt", NEW_HEADER + "\n".join(OBJECTS) + "\n")


def test_objects_land_on_the_sensors_computed_by_hand(catalog):
    table = catalog_features(catalog, ["R22_S11", "R24_S11", "R01_S00"]).set_index("sensor")
    centre = table.loc["R22_S11"]
    assert centre["n_objects"] == 5
    assert centre["n_stars"] == 3 and centre["n_galaxies"] == 2
    assert centre["brightest_star_mag"] == 9.0
    assert centre["n_stars_brighter_than_10"] == 1
    assert centre["n_stars_brighter_than_13"] == 1
    assert centre["n_stars_brighter_than_16"] == 2
    north = table.loc["R24_S11"]
    assert north["n_objects"] == 1 and north["brightest_star_mag"] == 12.0
    assert table.loc["R01_S00", "n_objects"] == 0
    assert math.isinf(table.loc["R01_S00", "brightest_star_mag"])


def test_photon_counts_follow_magnorm_and_exposure(catalog):
    row = catalog_features(catalog, ["R22_S11"]).iloc[0]
    exposure = 30.0  # vistime 33, two snaps with 3 s between them
    assert row["exposure_seconds"] == exposure
    assert_allclose(row["galaxy_photons"], source_photons(np.array([21.0, 22.0]), exposure).sum())
    assert_allclose(row["faint_star_photons"], source_photons(17.0, exposure))
    assert list(row[["bright_star_mag_1", "bright_star_mag_2"]]) == [9.0, 14.5]
    assert_allclose(
        row["source_photons"], source_photons(np.array([9.0, 14.5, 17.0, 21, 22]), exposure).sum()
    )
    assert row["sky_photons"] > 0 and 20 < row["sky_mag_per_arcsec2"] < 22.5


def test_photons_match_what_phosim_printed():
    # PhoSim 3.4 printed "Photons: 1.49e+08" for this catalog (phosim_runs/base).
    row = catalog_features(
        DATA / "instance_catalogs" / "phosim_runs_base_catalog.txt", ["R22_S11"]
    ).iloc[0]
    assert_allclose(row["source_photons"], 1.49e8, rtol=0.005)
    assert row["n_objects"] == 50 and row["n_trimmed_sources"] == 50


def test_bright_star_just_off_the_sensor_is_kept_but_not_counted_on_it(tmp_path):
    # R22_S11's east edge is 20 mm = 6.67 arcmin from the boresight; 0.5 arcmin beyond it.
    dx = (20.0 / 3.0 + 0.5) / 60.0 / math.cos(math.radians(DEC0))
    near = write(tmp_path / "near.txt", NEW_HEADER + star(1, RA0 + dx, DEC0, 9.0) + "\n")
    row = catalog_features(near, ["R22_S11"]).iloc[0]
    assert row["n_objects"] == 0 and row["n_stars_brighter_than_10"] == 0
    assert row["bright_star_mag_1"] == 9.0  # within PhoSim's trim margin of 1626 px
    assert_allclose(row["brightest_near_star_distance_arcmin"], 0.5, atol=0.01)
    far = write(tmp_path / "far.txt", NEW_HEADER + star(1, RA0 + 12 * dx, DEC0, 9.0) + "\n")
    assert np.isnan(catalog_features(far, ["R22_S11"]).iloc[0]["bright_star_mag_1"])


def test_plain_gzip_old_header_and_includes_give_identical_features(tmp_path, catalog):
    reference = catalog_features(catalog, "all")
    gz = write(tmp_path / "cat.txt.gz", catalog.read_text(), gz=True)
    old = write(tmp_path / "old.txt", OLD_HEADER + "\n".join(OBJECTS) + "\n")
    write(tmp_path / "part1.txt.gz", "\n".join(OBJECTS[:3]) + "\n", gz=True)
    write(tmp_path / "part2.txt", "\n".join(OBJECTS[3:]) + "\n")
    split = write(
        tmp_path / "split.txt", NEW_HEADER + "includeobj part1.txt.gz\nincludeobj part2.txt\n"
    )
    for other in (gz, old, split):
        pd.testing.assert_frame_equal(catalog_features(other, "all"), reference)


def test_commands_override_exposure_and_turn_the_sky_off(catalog):
    commands = parse_commands(
        "zenith_v 1000\nvistime 15\nnsnap 1\nraydensity 0.6\n", source="cmd.txt"
    )
    row = catalog_features(catalog, ["R22_S11"], commands=commands).iloc[0]
    assert row["sky_photons"] == 0.0 and math.isinf(row["sky_mag_per_arcsec2"])
    assert row["exposure_seconds"] == 15.0 and row["nsnap"] == 1
    assert '"vistime": 15.0' in row["commands_overrides"]
    assert "raydensity" in row["commands_other"]


def test_bad_sensor_name_is_an_input_error(catalog):
    with pytest.raises(InputError, match="R00_S12"):
        catalog_features(catalog, "R00_S12")


def test_visit_table_one_row_per_visit_or_per_sensor():
    visits = pd.DataFrame(
        {
            "obshistid": [1, 2],
            "filter": [2, 5],
            "altitude": [70.0, 50.0],
            "Opsim_moonalt": [-30.0, 40.0],
            "moonphase": [10.0, 90.0],
            "dist2moon": [120.0, 40.0],
            "sunalt": [-40.0, -30.0],
            "vistime": [33.0, 33.0],
            "nsnap": [2, 2],
        }
    )
    per_visit = visit_features(visits)
    assert list(per_visit["obshistid"]) == [1, 2] and list(per_visit["sensor"]) == ["", ""]
    assert set(FEATURE_COLUMNS) <= set(per_visit.columns)
    assert per_visit["n_objects"].isna().all()
    # Moon up and full makes the sky brighter (smaller magnitude) than the dark r visit.
    assert per_visit.loc[1, "moonalt"] == 40.0
    per_sensor = visit_features(visits, ["R22_S11", "R01_S00"])
    assert len(per_sensor) == 4 and list(per_sensor["sensor"][:2]) == ["R22_S11", "R01_S00"]


@pytest.mark.parametrize(
    "column, value, message",
    [
        ("filter", 7, "filter: 7 is not 0..5"),
        ("moonalt", "high", "moonalt: 'high' is not a number"),
    ],
)
def test_bad_visit_rows_name_row_and_field(column, value, message):
    visits = pd.DataFrame(
        {
            "obshistid": [1, 2],
            "filter": [2, 2],
            "altitude": [70.0, 70.0],
            "moonalt": [-30.0, -30.0],
            "moonphase": [5.0, 5.0],
            "dist2moon": [120.0, 120.0],
            "sunalt": [-40.0, -40.0],
        }
    )
    visits[column] = visits[column].astype(object)
    visits.loc[1, column] = value
    with pytest.raises(InputError, match=rf"visits.csv:3: {message}"):
        visit_features(visits, source="visits.csv")


def test_visit_without_sky_keywords_is_refused_not_taken_as_no_sky():
    visits = pd.DataFrame({"obshistid": [230], "filter": [2], "moonalt": [10.0]})
    with pytest.raises(InputError, match=r"v\.csv:2: missing altitude, moonphase, dist2moon"):
        visit_features(visits, source="v.csv")
    # With the sky turned off by the commands file, the conditions are not needed.
    no_sky = parse_commands("zenith_v 1000\n", source="cmd.txt")
    assert visit_features(visits, commands=no_sky, source="v.csv")["sky_photons"].iloc[0] == 0


def test_visit_table_without_filter_is_refused():
    with pytest.raises(InputError, match="missing column 'filter'"):
        visit_features(pd.DataFrame({"obshistid": [1]}), source="v.csv")


def test_whole_table_reproduces_the_stored_twinkles_features():
    # features/twinkles_run1.csv was written by the earlier row-by-row code: the vectorised
    # conditions must give the same numbers, to the last bits that NumPy's transcendental
    # functions may differ in between CPUs (SIMD paths; 13 of 934 sky values differ by 1 ulp
    # on one machine).
    raw = read_visit_table(ROOT / "cputime" / "data" / "twinkles_run1_train.csv")
    stored = pd.read_csv(ROOT / "features" / "twinkles_run1.csv")
    columns = ["obshistid", *CONDITION_COLUMNS]
    table = visit_features(raw, source="twinkles_run1_train.csv")
    pd.testing.assert_frame_equal(table[columns], stored[columns], check_exact=False,
                                  rtol=1e-14, atol=0)


@pytest.mark.parametrize("commands", [None, "zenith_v 21.5\nvistime 60\nnsnap 2\n"])
def test_one_visit_at_a_time_equals_the_whole_table(commands):
    visits = read_visit_table(ROOT / "cputime" / "data" / "twinkles_run1_train.csv").head(40)
    visits.loc[::3, "airmass"] = np.nan  # taken from the altitude
    visits.loc[1::3, "altitude"] = np.nan  # taken from the airmass
    cmd = parse_commands(commands, source="cmd.txt") if commands else None
    sensors = ["R22_S11", "R01_S00"]
    whole = visit_features(visits, sensors, commands=cmd)
    one_by_one = pd.concat(
        [visit_features(visits.iloc[[i]], sensors, commands=cmd) for i in range(len(visits))],
        ignore_index=True,
    )
    pd.testing.assert_frame_equal(whole, one_by_one, check_exact=True)
    assert whole["altitude"].notna().all() and whole["airmass"].notna().all()


def test_first_bad_row_is_reported_whatever_the_field():
    visits = pd.DataFrame(
        {
            "obshistid": [1, 2, 3],
            "filter": [2, 2, 9],
            "altitude": [70.0, np.nan, 70.0],
            "moonalt": [-30.0, -30.0, -30.0],
            "moonphase": [5.0, 5.0, 5.0],
            "dist2moon": [120.0, 120.0, 120.0],
            "sunalt": [-40.0, -40.0, -40.0],
            "nsnap": [1.0, 1.5, 1.0],
        }
    )
    # Row 2 has a fractional nsnap and no altitude; row 3 a bad filter: row 2's field first.
    with pytest.raises(InputError, match=r"^v\.csv:3: nsnap: 1\.5 is not an integer$"):
        visit_features(visits, source="v.csv")
