"""Tests for cputime.inputs.focalplane: layout, projection, sensor lookup, trim margin,
sensor parsing."""

import re

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from cputime.errors import InputError
from cputime.inputs import focalplane as fp

# Twinkles field, the pointing of our PhoSim 3.4 runs.
TWINKLES_RA, TWINKLES_DEC = 53.01, -27.44
# Hand value: 180 mm/deg * (180/pi) deg/rad * tan(1 deg) rad.
ONE_DEG_MM = 180.018282


def sensor_names_at(ra, dec, pointing=(0.0, 0.0), rotskypos=0.0):
    x, y, _ = fp.focal_plane_xy_mm(ra, dec, *pointing, rotskypos)
    index = np.atleast_1d(fp.sensor_index(x, y))
    return [fp.SENSOR_NAMES[i] if i >= 0 else None for i in index]


def test_sensor_names():
    names = fp.SENSOR_NAMES
    assert len(names) == 189
    assert len(set(names)) == 189
    assert list(names) == sorted(names)
    assert names[0] == "R01_S00" and names[-1] == "R43_S22"
    assert all(re.fullmatch(r"R[0-4][0-4]_S[0-2][0-2]", n) for n in names)
    assert not {n[:3] for n in names} & {"R00", "R04", "R40", "R44"}
    assert len({n[:3] for n in names}) == 21


def test_sensor_table_hand_values():
    table = fp.sensor_table().set_index("sensor")
    # Rows of PhoSim 3.4 data/lsst/focalplanelayout.txt (microns there).
    expected = {
        "R01_S00": (-296.25, -169.25),
        "R10_S00": (-169.25, -296.25),
        "R02_S12": (-254.0, 42.25),
        "R22_S11": (0.0, 0.0),
        "R43_S22": (296.25, 169.25),
    }
    for name, (x, y) in expected.items():
        assert_allclose(table.loc[name, ["x_center_mm", "y_center_mm"]], [x, y], atol=1e-12)
    assert_allclose(table["width_mm"], 40.0)
    assert_allclose(table["height_mm"], 40.72)
    assert list(table.index) == list(fp.SENSOR_NAMES)


def test_boresight_lands_on_r22_s11():
    x, y, in_front = fp.focal_plane_xy_mm(
        TWINKLES_RA, TWINKLES_DEC, TWINKLES_RA, TWINKLES_DEC, 33.0
    )
    assert_allclose([x, y], [0.0, 0.0], atol=1e-9)
    assert in_front
    assert fp.SENSOR_NAMES[fp.sensor_index(x, y)] == "R22_S11"


@pytest.mark.parametrize(
    ("ra", "dec", "x_mm", "y_mm", "sensor"),
    [
        # Equator pointing: pure RA offset is +x (east), pure Dec offset is +y (north).
        (1.0, 0.0, ONE_DEG_MM, 0.0, "R32_S21"),
        (0.0, 1.0, 0.0, ONE_DEG_MM, "R23_S12"),
        (-1.0, 0.0, -ONE_DEG_MM, 0.0, "R12_S01"),
        # 1.5 deg north: y = 180 (180/pi) tan(1.5 deg) = 270.0617 mm; raft row 4 starts at 190.5.
        (0.0, 1.5, 0.0, 270.061702, "R24_S11"),
    ],
)
def test_hand_checked_positions(ra, dec, x_mm, y_mm, sensor):
    x, y, _ = fp.focal_plane_xy_mm(ra, dec, 0.0, 0.0, 0.0)
    assert_allclose([x, y], [x_mm, y_mm], atol=1e-5)
    assert sensor_names_at(ra, dec) == [sensor]


def test_dec_offset_on_meridian():
    # On the pointing's meridian eta = tan(delta dec): 18 mm * (1 + (0.1 deg in rad)**2 / 3).
    x, y, _ = fp.focal_plane_xy_mm(TWINKLES_RA, TWINKLES_DEC + 0.1, TWINKLES_RA, TWINKLES_DEC, 0.0)
    assert_allclose([x, y], [0.0, 18.0000183], atol=1e-6)


def test_pole_pointing():
    x, y, in_front = fp.focal_plane_xy_mm([0.0, 90.0], [89.0, 89.0], 0.0, 90.0, 0.0)
    assert_allclose(x, [0.0, ONE_DEG_MM], atol=1e-5)
    assert_allclose(y, [-ONE_DEG_MM, 0.0], atol=1e-5)
    assert in_front.all()


def test_star_1p5_deg_away_is_not_on_r22_s11():
    # 1.5 deg from the Twinkles pointing at position angle 20 deg (east of north):
    # x = 270.0617 sin 20 = 92.366 mm (raft column 3, sensor column 0: centre 84.75),
    # y = 270.0617 cos 20 = 253.776 mm (raft row 4, sensor row 1: centre 254.0).
    rho, pa = np.radians(1.5), np.radians(20.0)
    ra, dec = fp.gnomonic_unproject(
        np.tan(rho) * np.sin(pa),
        np.tan(rho) * np.cos(pa),
        np.radians(TWINKLES_RA),
        np.radians(TWINKLES_DEC),
    )
    ra_deg, dec_deg = np.degrees(ra), np.degrees(dec)
    separation = np.degrees(
        np.arccos(
            np.sin(dec) * np.sin(np.radians(TWINKLES_DEC))
            + np.cos(dec) * np.cos(np.radians(TWINKLES_DEC)) * np.cos(ra - np.radians(TWINKLES_RA))
        )
    )
    assert_allclose(separation, 1.5, atol=1e-9)
    x, y, _ = fp.focal_plane_xy_mm(ra_deg, dec_deg, TWINKLES_RA, TWINKLES_DEC, 0.0)
    assert_allclose([x, y], [92.366, 253.776], atol=1e-3)
    assert sensor_names_at(ra_deg, dec_deg, (TWINKLES_RA, TWINKLES_DEC)) == ["R34_S01"]


@pytest.mark.parametrize(
    ("rotskypos", "sensor"), [(0.0, "R23_S12"), (90.0, "R32_S21"), (-90.0, "R12_S01")]
)
def test_rotation_moves_source_between_sensors(rotskypos, sensor):
    # PhoSim trim.cpp: x = xp cos(r) + yp sin(r), y = -xp sin(r) + yp cos(r): a star 1 deg
    # north goes from +y (rotskypos 0) to +x (rotskypos 90).
    assert sensor_names_at(0.0, 1.0, rotskypos=rotskypos) == [sensor]


def test_rotate_is_counter_clockwise():
    x, y = fp.rotate(np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.pi / 2)
    assert_allclose(x, [0.0, -1.0], atol=1e-15)
    assert_allclose(y, [1.0, 0.0], atol=1e-15)


def test_behind_tangent_plane_is_masked():
    ra = np.array([89.9, 90.0, 180.0, 0.0, 270.0])
    dec = np.array([0.0, 0.0, 0.0, -90.0, 0.0])
    x, y, in_front = fp.focal_plane_xy_mm(ra, dec, 0.0, 0.0, 0.0)
    assert_array_equal(in_front, [True, False, False, False, False])
    assert np.isfinite(x[0]) and np.isfinite(y[0])
    assert np.isnan(x[1:]).all() and np.isnan(y[1:]).all()
    assert_array_equal(fp.sensor_index(x, y), [-1] * 5)


@pytest.mark.parametrize("pointing_deg", [(53.01, -27.44), (359.99, 0.5), (120.0, 89.9)])
def test_project_unproject_round_trip(pointing_deg):
    ra0, dec0 = np.radians(pointing_deg)
    rng = np.random.default_rng(0)
    xi, eta = rng.uniform(-0.05, 0.05, size=(2, 1000))
    ra, dec = fp.gnomonic_unproject(xi, eta, ra0, dec0)
    xi_back, eta_back, in_front = fp.gnomonic_project(ra, dec, ra0, dec0)
    assert in_front.all()
    assert_allclose(xi_back, xi, atol=1e-12)
    assert_allclose(eta_back, eta, atol=1e-12)
    ra_again, dec_again = fp.gnomonic_unproject(xi_back, eta_back, ra0, dec0)
    assert_allclose(np.angle(np.exp(1j * (ra_again - ra))), 0.0, atol=1e-12)
    assert_allclose(dec_again, dec, atol=1e-12)


@pytest.mark.parametrize(
    ("x_mm", "y_mm", "sensor"),
    [
        (0.0, 0.0, "R22_S11"),
        (20.0, 0.0, "R22_S11"),  # edge counts
        (20.1, 0.0, None),  # 2.25 mm gap between sensors along x
        (22.3, 0.0, "R22_S21"),
        (0.0, 20.5, None),  # 1.53 mm gap between sensors along y
        (0.0, 21.9, "R22_S12"),
        (63.5, 0.0, None),  # 2.5 mm gap between rafts along x
        (0.0, 63.5, None),  # 1.78 mm gap between rafts along y
        (-254.0, -254.0, None),  # corner raft R00
        (296.25, 169.25, "R43_S22"),
        (400.0, 0.0, None),  # outside the focal plane
    ],
)
def test_sensor_index_edges_and_gaps(x_mm, y_mm, sensor):
    index = fp.sensor_index(np.array([x_mm]), np.array([y_mm]))[0]
    assert (fp.SENSOR_NAMES[index] if index >= 0 else None) == sensor


def test_sensor_index_matches_brute_force():
    rng = np.random.default_rng(1)
    x, y = rng.uniform(-330.0, 330.0, size=(2, 200_000))
    table = fp.sensor_table()
    expected = np.full(x.shape, -1)
    for i, row in table.iterrows():
        inside = (np.abs(x - row.x_center_mm) <= row.width_mm / 2) & (
            np.abs(y - row.y_center_mm) <= row.height_mm / 2
        )
        assert not (expected[inside] >= 0).any()
        expected[inside] = i
    assert_array_equal(fp.sensor_index(x, y), expected)
    centres = fp.sensor_index(table.x_center_mm.to_numpy(), table.y_center_mm.to_numpy())
    assert_array_equal(centres, np.arange(189))


def test_distance_to_sensor_hand_values():
    x = np.array([1.0, 25.0, 0.0, 25.0, -25.0])
    y = np.array([1.0, 0.0, 30.0, 30.0, -30.0])
    assert_allclose(fp.distance_to_sensor_mm(x, y, "R22_S11"), [0.0, 5.0, 9.64, 9.64, 9.64])
    assert_allclose(
        fp.distance_to_sensor_mm(x, y, "R22_S11", metric="euclidean"),
        [0.0, 5.0, 9.64, np.hypot(5.0, 9.64), np.hypot(5.0, 9.64)],
    )
    assert_allclose(fp.distance_to_sensor_mm(0.0, 0.0, "R22_S12"), 42.25 - 20.36)
    with pytest.raises(ValueError, match="metric"):
        fp.distance_to_sensor_mm(x, y, "R22_S11", metric="manhattan")
    with pytest.raises(ValueError, match="R00_S12"):
        fp.distance_to_sensor_mm(x, y, "R00_S12")


def test_depth_inside_sensor_hand_values():
    # R22_S11 is 40.00 x 40.72 mm around (0, 0); R22_S12 is centred at (0, 42.25).
    x = np.array([0.0, 19.0, 0.0, 20.0, 0.0, 21.0])
    y = np.array([0.0, 0.0, -20.0, 5.0, 42.25, 0.0])
    index = fp.sensor_index(x, y)
    assert_allclose(
        fp.depth_inside_sensor_mm(x, y, index), [20.0, 1.0, 0.36, 0.0, 20.0, -np.inf]
    )


def test_trim_margin_hand_values():
    assert_allclose(
        fp.trim_margin_pixels([17.0, 9.0, 7.0, 22.0]),
        [101.0, 100 + 2.5**8, 9636.7431640625, 100.01024],
        rtol=1e-12,
    )


@pytest.mark.parametrize(
    ("ra", "dec", "magnorm", "phosim_sensors"),
    [
        # Trim output printed by our PhoSim 3.4 runs (/work/shared/data/phosim_runs, README), which
        # trim the nine R22 sensors together: "Found N source(s) for chip ...".
        (53.01, -27.3185, 9.0, {"R22_S11", "R22_S12"}),  # B_off0.5am
        (53.01, -27.1601667, 9.0, {"R22_S12"}),  # B_off10am
        (53.01, -26.3268333, 9.0, set()),  # B_off1deg
        (53.01, -27.44, 11.0, {"R22_S11"}),  # A_bright11
        (53.01, -27.44, 7.0, {f"R22_S{c}{d}" for c in range(3) for d in range(3)}),  # A_bright07
    ],
)
def test_trim_rule_reproduces_phosim_runs(ra, dec, magnorm, phosim_sensors):
    x, y, _ = fp.focal_plane_xy_mm(ra, dec, TWINKLES_RA, TWINKLES_DEC, 0.0)
    margin_mm = fp.trim_margin_pixels(magnorm) * fp.PIXEL_SIZE_MM
    kept = {
        name
        for name in fp.SENSOR_NAMES
        if name.startswith("R22") and fp.distance_to_sensor_mm(x, y, name) <= margin_mm
    }
    assert kept == phosim_sensors


def test_parse_sensors():
    assert fp.parse_sensors("all") == list(fp.SENSOR_NAMES)
    assert fp.parse_sensors(" ALL ") == list(fp.SENSOR_NAMES)
    assert fp.parse_sensors("R22_S11, r01_s00") == ["R22_S11", "R01_S00"]
    assert fp.parse_sensors("R22_S11|R22_S11") == ["R22_S11"]


@pytest.mark.parametrize(
    ("spec", "pattern"),
    [
        ("R22_S11,R00_S12", r"^sensors: sensor 'R00_S12' is on a corner raft"),
        ("R22_S33", r"^sensors: unknown sensor 'R22_S33'"),
        ("R22_S11,,R01_S00", r"^sensors: empty sensor name"),
        ("", r"^sensors: empty sensor name"),
        ("R5_S11", r"^sensors: unknown sensor 'R5_S11'"),
    ],
)
def test_parse_sensors_errors(spec, pattern):
    with pytest.raises(InputError, match=pattern) as info:
        fp.parse_sensors(spec)
    assert "\n" not in str(info.value)


def test_parse_sensors_error_names_the_field():
    with pytest.raises(InputError, match=r"^--sensors: unknown sensor 'X'"):
        fp.parse_sensors("X", field="--sensors")


def test_scale_constants():
    assert_allclose(fp.MM_PER_ARCMIN * 60.0, fp.PLATE_SCALE_MM_PER_DEG)
    # 10 um pixels at 180 mm/deg are 0.2 arcsec.
    assert_allclose(fp.PIXEL_SIZE_MM / fp.PLATE_SCALE_MM_PER_DEG * 3600.0, 0.2)
