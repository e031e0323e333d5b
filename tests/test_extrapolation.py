"""Bounds that know their limits: distances beyond the fitted range, flags and wider bounds."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose

import cputime
from cputime.model.extrapolation import describe_extrapolation, extrapolation_dex, range_limits
from cputime.physics.photons import source_photons
from cputime.runs.report import evaluate_runs
from cputime.runs.training import load_runs_table

RUNS = Path(__file__).resolve().parents[1] / "features" / "phosim_runs.csv"


def _jobs(mags, filters=2, exposure=15.0) -> pd.DataFrame:
    mags = np.atleast_1d(np.asarray(mags, dtype=float))
    return pd.DataFrame(
        {
            "filter": filters,
            "exposure_seconds": exposure,
            "bright_star_mag_1": mags,
            "source_photons": np.nan_to_num(source_photons(mags, exposure)),
            "n_trimmed_sources": 1.0,
            "sky_photons": 0.0,
        }
    )


def test_distance_is_dex_beyond_the_largest_finished_value():
    fitted = _jobs([9.5, 7.0, 12.0])
    limits = range_limits(fitted, finished=np.array([True, False, True]))  # 7 mag was killed
    dex = extrapolation_dex(_jobs([6.0, 11.0]), limits, measured_filters=[])
    # A 6 mag star is 3.5 mag = 1.4 dex of photons brighter than the brightest finished one.
    assert_allclose(dex.loc[0, "brightest_star_photons"], 1.4)
    assert (dex.loc[1] == 0).all()  # fainter than the range: cheaper, not an extrapolation
    assert describe_extrapolation(dex)[0].startswith("brightest_star_photons +1.40 dex")
    assert describe_extrapolation(dex)[1] == ""


def test_a_filter_without_runs_is_its_wavelength_distance_from_the_measured_ones():
    limits = range_limits(_jobs([12.0]), finished=np.array([True]))
    dex = extrapolation_dex(_jobs([12.0, 12.0], filters=[2, 5]), limits, measured_filters=[3])
    assert dex.loc[0, "filter"] == 0.0
    assert_allclose(dex.loc[1, "filter"], np.log10(971.0 / 755.0))  # y from i


@pytest.fixture(scope="module")
def model():
    return cputime.load_model()


def test_a_star_beyond_the_measured_range_is_flagged_and_gets_a_wider_bound(model):
    base = load_runs_table(RUNS).features
    base = base[base["run_id"] == "A_bright11"].reset_index(drop=True)
    inside = model.predict_frame(base)
    beyond = model.predict_frame(base.assign(bright_star_mag_1=6.0, brightest_star_mag=6.0))
    assert inside.loc[0, "extrapolation"] == ""
    assert "brightest_star_photons" in beyond.loc[0, "extrapolation"]
    assert beyond.loc[0, "extrapolation_dex"] == pytest.approx(0.4 * (9.5 - 6.0))
    ratio_inside = inside.loc[0, "cpu_seconds_upper"] / inside.loc[0, "cpu_seconds_p50"]
    ratio_beyond = beyond.loc[0, "cpu_seconds_upper"] / beyond.loc[0, "cpu_seconds_p50"]
    widening = np.exp(model.extrapolation_log_slope(0.95) * 1.4)
    assert ratio_beyond == pytest.approx(ratio_inside * widening, rel=1e-6)
    assert widening > 1.5


def test_runs_out_of_sample_meet_the_bright_star_targets():
    runs = load_runs_table(RUNS)
    table, metrics = evaluate_runs(runs)
    for scheme in ("loro", "logo"):
        m = metrics[scheme]
        assert m["finished_below_upper"] == 1.0, scheme  # no finished run above its bound
        assert m["killed_predicted_above"] == 1.0, scheme
        assert m["median_abs_dex"] <= 0.03, scheme
        assert m["max_abs_dex_inside_range"] <= 0.10, scheme
        assert m["bright_star_monotone"], scheme
    # The bright-star sequence, 15 ... 9.5 mag, predicted in measured order out of sample.
    star = table[table["group"].isin(["A", "A2", "check"]) & ~table["censored"]]
    star = star[star["bright_star_mag_1"].lt(16)].sort_values("bright_star_mag_1")
    assert list(star["bright_star_mag_1"]) == [9.5, 10.1, 11.0, 12.0, 15.0]
    assert np.all(np.diff(star["predicted_seconds_loro"].to_numpy()) < 0)
