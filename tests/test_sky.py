"""Tests for cputime.physics.sky: hand-checked values, each model, bad names, monotonicity,
OpSim."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

from cputime.errors import InputError
from cputime.physics import sky

SAMPLE = Path(__file__).parent / "data" / "opsim_visits_sample.csv"

# OpSim v3 visit 228035 (r, moon up, 80 % illuminated); OpSim stores radians.
VISIT_228035 = {
    "filter": 2,
    "altitude": np.degrees(0.890736),
    "moonalt": np.degrees(1.090376),
    "moonphase": 80.142292,
    "dist2moon": np.degrees(1.077568),
    "sunalt": np.degrees(-0.621417),
}
DARK = {"moonalt": -30.0, "moonphase": 0.0, "dist2moon": 120.0, "sunalt": -30.0}


def test_airmass_ks91():
    # (1 - 0.96 sin^2 z)^-1/2 at z = 0, 60 (sin^2 = 0.75: 0.28^-1/2), 90 degrees
    assert_allclose(sky.airmass_ks91([90.0, 30.0, 0.0]), [1.0, 1.889822, 5.0], atol=1e-6)
    assert_allclose(sky.airmass_ks91(-5.0), 5.0)


def test_nanolamberts_round_trip():
    # KS91 eq. 1: 34.08 exp(20.7233 - 0.92104 * 21.587) = 34.08 exp(0.840810) = 79.006 nL
    assert_allclose(sky.nanolamberts_from_mag(21.587), 79.006, atol=1e-3)
    mags = np.array([17.0, 19.5, 22.25])
    assert_allclose(sky.mag_from_nanolamberts(sky.nanolamberts_from_mag(mags)), mags, atol=1e-12)


def test_moon_phase_angle_and_illuminance():
    assert_allclose(sky.moon_phase_angle([100.0, 50.0, 0.0]), [0.0, 90.0, 180.0], atol=1e-9)
    # full moon: 10^(-0.4 * 3.84) = 10^-1.536
    assert_allclose(sky.moon_illuminance_ks91(0.0), 0.0291072, atol=1e-7)


def test_scattering_function_ks91():
    # rho = 90: 10^5.36 * 1.06 (Rayleigh) + 10^(6.15 - 2.25) (Mie) = 242832.0 + 7943.3
    assert_allclose(sky.scattering_function_ks91(90.0), 250775.3, rtol=1e-6)
    # rho = 5: Mie 6.2e7 / 25 plus Rayleigh 10^5.36 (1.06 + cos^2 5 deg)
    assert_allclose(sky.scattering_function_ks91(5.0), 2.48e6 + 229086.8 * 2.052404, rtol=1e-6)
    assert np.isfinite(sky.scattering_function_ks91(0.0))


def test_moon_and_dark_brightness_match_opsim_components():
    v = VISIT_228035
    # OpSim's own moonBright and darkBright columns for this visit [nL]
    moon = sky.moon_brightness_ks91(v["altitude"], v["moonalt"], v["moonphase"], v["dist2moon"])
    assert_allclose(moon, 406.35687, atol=0.01)
    dark = sky.nanolamberts_from_mag(sky.V_DARK_SKY_MAG) * sky.dark_sky_gradient_ks91(v["altitude"])
    assert_allclose(dark, 96.112697, atol=0.01)


def test_moon_below_minus_12_adds_nothing():
    assert_allclose(sky.moon_brightness_ks91(60.0, [-12.0, -40.0], 100.0, 30.0), 0.0)
    half = sky.moon_brightness_ks91(60.0, -6.0, 100.0, 30.0)
    horizon = sky.moon_brightness_ks91(60.0, 0.0, 100.0, 30.0)
    assert_allclose(half, horizon / 2)


def test_twilight_zero_at_night_and_reference_level():
    assert_allclose(sky.twilight_brightness([0, 3, 5], [-18.0, -25.0, -60.0]), 0.0)
    level = sky.twilight_brightness(np.arange(6), -15.0)
    assert_allclose(sky.mag_from_nanolamberts(level), sky.TWILIGHT_MAG_AT_MINUS15, atol=1e-9)


def test_opsim3_hand_checked():
    # OpSim's vSkyBright 19.578385 plus the r offset interpolated between 80 % (0.10) and
    # 100 % (0.31): 0.10 + 0.142292 / 20 * 0.21 = 0.101494 -> 19.679879, OpSim's filtSkyBrightness
    assert_allclose(sky.sky_mag_opsim3(**VISIT_228035), 19.679879, atol=1e-4)
    # y is fixed; z and y are 17.0 in twilight
    assert_allclose(sky.sky_mag_opsim3(5, 60.0, **DARK), 17.3)
    twilight = {**DARK, "sunalt": -15.0}
    assert_allclose(sky.sky_mag_opsim3([4, 5], 60.0, **twilight), [17.0, 17.0])


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("ks91", sky.DARK_SKY_MAG),
        ("dark", sky.DARK_SKY_MAG),
        ("opsim3", [22.247, 21.997, 21.307, 20.227, 19.437, 17.3]),
    ],
)
def test_each_model_dark_zenith(model, expected):
    got = sky.sky_mag_per_arcsec2(np.arange(6), 90.0, **DARK, model=model)
    assert got.shape == (6,)
    assert_allclose(got, expected, atol=1e-9)


def test_scalar_in_scalar_out():
    got = sky.sky_mag_per_arcsec2(2, 60.0, 20.0, 50.0, 70.0, -25.0)
    assert isinstance(got, np.ndarray)
    assert got.shape == ()
    assert 19.0 < float(got) < 21.31


def test_airmass_given_is_used():
    derived = sky.sky_mag_per_arcsec2(3, 40.0, **DARK)
    same = sky.sky_mag_per_arcsec2(3, 40.0, **DARK, airmass=sky.airmass_ks91(40.0))
    higher = sky.sky_mag_per_arcsec2(3, 40.0, **DARK, airmass=2.0)
    assert_allclose(derived, same)
    assert higher < derived


def test_model_name_is_case_insensitive():
    assert_allclose(
        sky.sky_mag_per_arcsec2(1, 50.0, **DARK, model="KS91"),
        sky.sky_mag_per_arcsec2(1, 50.0, **DARK, model="ks91"),
    )


def test_bad_model_name():
    with pytest.raises(ValueError, match=r"'ks99' is not a valid sky model.*ks91.*opsim3.*dark"):
        sky.sky_mag_per_arcsec2(1, 50.0, **DARK, model="ks99")


@pytest.mark.parametrize("bad", [6, -1, 2.5, [0, 7]])
def test_bad_filter(bad):
    with pytest.raises(InputError, match="^filter: "):
        sky.sky_mag_per_arcsec2(bad, 50.0, **DARK)


def _brightens(mags: np.ndarray) -> bool:
    """True when the sky gets brighter (smaller magnitude) along the array, for every filter."""
    return bool(np.all(np.diff(mags, axis=-1) < 0))


FILTERS = np.arange(6)[:, None]


def test_ks91_brighter_when_moon_higher():
    moonalt = np.linspace(-11.0, 90.0, 50)
    assert _brightens(sky.sky_mag_ks91(FILTERS, 60.0, moonalt, 70.0, 45.0, -30.0))


def test_ks91_brighter_when_moon_fuller():
    phase = np.linspace(1.0, 100.0, 50)
    assert _brightens(sky.sky_mag_ks91(FILTERS, 60.0, 30.0, phase, 45.0, -30.0))


def test_ks91_brighter_when_moon_closer():
    # Rayleigh scattering makes the sky brighten again beyond 90 degrees; KS91's Mie term
    # changes form at 10 degrees, so check each side of it.
    for dist in (np.linspace(89.0, 10.5, 50), np.linspace(9.5, 0.5, 20)):
        assert _brightens(sky.sky_mag_ks91(FILTERS, 60.0, 30.0, 70.0, dist, -30.0))


def test_ks91_brighter_when_sun_higher_in_twilight():
    sunalt = np.linspace(-17.9, -5.0, 40)
    assert _brightens(sky.sky_mag_ks91(FILTERS, 60.0, -30.0, 0.0, 120.0, sunalt))
    night = sky.sky_mag_ks91(FILTERS, 60.0, -30.0, 0.0, 120.0, np.array([-40.0, -18.0]))
    assert_allclose(night[:, 0], night[:, 1])


def test_dark_brighter_toward_horizon():
    altitude = np.linspace(90.0, 20.0, 30)
    assert _brightens(sky.sky_mag_dark(FILTERS, altitude))


@pytest.fixture(scope="module")
def opsim_sample():
    table = pd.read_csv(SAMPLE, comment="#")
    inputs = {
        "filter": table["filter"].map({c: i for i, c in enumerate(sky.FILTER_NAMES)}).values,
        "altitude": np.degrees(table["altitude"].values),
        "moonalt": np.degrees(table["moonAlt"].values),
        "moonphase": table["moonPhase"].values,
        "dist2moon": np.degrees(table["dist2Moon"].values),
        "sunalt": np.degrees(table["sunAlt"].values),
        "airmass": table["airmass"].values,
    }
    return inputs, table["filtSkyBrightness"].values


@pytest.mark.parametrize(
    ("model", "max_median", "max_p90"), [("ks91", 0.10, 0.30), ("opsim3", 0.01, 0.02)]
)
def test_agreement_with_opsim(opsim_sample, model, max_median, max_p90):
    inputs, opsim = opsim_sample
    residual = np.abs(sky.sky_mag_per_arcsec2(**inputs, model=model) - opsim)
    assert np.median(residual) <= max_median
    assert np.percentile(residual, 90) <= max_p90


def test_moon_sky_fraction_splits_the_sky_as_phosim_traces_it():
    dark_night = sky.moon_sky_fraction(2, 70.0, **DARK)
    assert dark_night == pytest.approx(0.0, abs=1e-6)
    moonlit = sky.moon_sky_fraction(**VISIT_228035)
    assert 0.5 < moonlit < 1.0
    # The moonlight share of the flux is what separates the total from the moonless sky.
    total = sky.sky_mag_ks91(**VISIT_228035)
    moonless = sky.sky_mag_ks91(**{**VISIT_228035, "moonalt": -90.0})
    assert_allclose(1.0 - moonlit, 10 ** (-0.4 * (moonless - total)), rtol=1e-4)
    missing = sky.moon_sky_fraction(2, 70.0, np.nan, 50.0, 40.0, -30.0)
    assert missing == 0.0
