"""The physical cost model: named parts, monotone in brightness, fits what it is given."""

import numpy as np
import pandas as pd
import pytest
from numpy.testing import assert_allclose
from sklearn.exceptions import NotFittedError

from cputime.physics.cost import DEFAULT_PARAMETERS, NEUTRAL_PARAMETERS, PhosimCostModel
from cputime.physics.photons import source_photons


def _features(**columns) -> pd.DataFrame:
    base = {
        "filter": 2,
        "nsnap": 1,
        "exposure_seconds": 15.0,
        "faint_star_photons": 1.49e8,
        "galaxy_photons": 0.0,
        "sky_photons": 0.0,
        **{f"bright_star_mag_{k}": np.nan for k in range(1, 6)},
    }
    base.update(columns)
    return pd.DataFrame([base])


def test_parts_are_named_and_add_up():
    model = PhosimCostModel.from_parameters()
    parts = model.predict_parts(_features())
    assert list(parts.columns) == [
        "setup",
        "star",
        "galaxy",
        "bright_star_bundles",
        "bright_star_straylight",
        "sky",
    ]
    assert_allclose(parts.sum(axis=1), model.predict(_features()))
    assert parts["sky"].iloc[0] == 0.0
    assert_allclose(parts["setup"].iloc[0], DEFAULT_PARAMETERS["setup_seconds_per_snap"])


def test_bright_star_cost_rises_with_brightness_but_less_than_photons():
    model = PhosimCostModel.from_parameters()
    mags = np.arange(6.0, 16.5, 0.5)
    cost = model.bright_star_bundle_seconds(source_photons(mags, 15.0))
    assert np.all(np.diff(cost) < 0)  # fainter (larger mag) costs less
    per_photon = cost / source_photons(mags, 15.0)
    assert np.all(np.diff(per_photon) > 0)  # saturation: brighter stars cost less per photon


def test_filter_factor_is_one_in_r_and_interpolated_between_measured_filters():
    model = PhosimCostModel.from_parameters()
    factors = model.filter_factor(np.arange(6))
    assert factors[2] == 1.0
    assert factors[0] < factors[1] < factors[2] < factors[3] < factors[4] < factors[5]


def test_sky_part_only_when_the_sky_is_on():
    model = PhosimCostModel.from_parameters()
    off = model.predict_parts(_features(sky_photons=0.0))["sky"].iloc[0]
    on = model.predict_parts(_features(sky_photons=1e10))["sky"].iloc[0]
    assert off == 0.0
    assert on > DEFAULT_PARAMETERS["sky_setup_seconds_per_snap"]


def test_fit_recovers_parameters_and_respects_censoring():
    truth = PhosimCostModel.from_parameters(
        {"setup_seconds_per_snap": 60.0, "seconds_per_star_photon": 1e-6}
    )
    rng = np.random.default_rng(0)
    photons = rng.uniform(1e7, 5e8, 12)
    features = pd.concat([_features(faint_star_photons=p) for p in photons], ignore_index=True)
    cpu = truth.predict(features)
    fitted = PhosimCostModel(
        fixed=tuple(
            k
            for k in DEFAULT_PARAMETERS
            if k not in ("setup_seconds_per_snap", "seconds_per_star_photon")
        )
    )
    fitted.fit(features, cpu)
    assert_allclose(fitted.parameters_["setup_seconds_per_snap"], 60.0, rtol=1e-3)
    assert_allclose(fitted.parameters_["seconds_per_star_photon"], 1e-6, rtol=1e-3)
    # A censored run whose lower bound the model already exceeds adds nothing to the fit.
    censored = np.zeros(len(cpu), bool)
    censored[0] = True
    cpu_lower = cpu.copy()
    cpu_lower[0] = cpu[0] / 10
    again = PhosimCostModel(fixed=fitted.fixed).fit(features, cpu_lower, censored)
    assert_allclose(again.parameters_["seconds_per_star_photon"], 1e-6, rtol=1e-3)


def test_fit_without_filter_runs_makes_every_filter_cost_as_r():
    features = pd.concat([_features(faint_star_photons=p) for p in (1e8, 2e8, 3e8)])
    model = PhosimCostModel().fit(features, np.array([120.0, 190.0, 260.0]))
    assert model.measured_filters_ == []
    assert_allclose(model.filter_factor(np.arange(6)), 1.0)
    # No bright-star run: a bright star costs in proportion to its photons (no bundling), and
    # a stray-light photon what an unsaturated one costs: the expensive side of the unknown.
    for name, value in NEUTRAL_PARAMETERS.items():
        assert model.parameters_[name] == value
    p = model.parameters_
    assert p["seconds_per_straylight_photon"] == p["seconds_per_star_photon"]


def test_stars_below_the_straylight_cut_pay_a_stray_light_part():
    model = PhosimCostModel.from_parameters()
    below = model.predict_parts(_features(bright_star_mag_1=9.5))
    above = model.predict_parts(_features(bright_star_mag_1=10.1))
    assert above["bright_star_straylight"].iloc[0] == 0.0
    photons = source_photons(9.5, 15.0)
    assert_allclose(
        below["bright_star_straylight"].iloc[0],
        DEFAULT_PARAMETERS["seconds_per_straylight_photon"] * photons,
    )
    # The cut is the commands file's: straylightcut 9 spares the 9.5 mag star, straylight 0
    # (a cut of -inf) spares every star.
    for cut in (9.0, -np.inf):
        parts = model.predict_parts(_features(bright_star_mag_1=9.5, straylight_cut_mag=cut))
        assert parts["bright_star_straylight"].iloc[0] == 0.0


def test_source_types_hold_the_sources_in_their_magnitude_bins():
    model = PhosimCostModel.from_parameters()
    features = _features(
        bright_star_mag_1=9.5, faint_star_photons=3e8, **{"photons_source_type_54": 1e8}
    )
    features["photons_source_type_49"] = 2e8
    by_type, unplaced = model.source_type_seconds(features)
    parts = model.predict_parts(features)
    assert unplaced[0] == 0.0
    assert_allclose(by_type.sum(), parts.drop(columns=["setup", "sky"]).to_numpy().sum())
    bright = parts[["bright_star_bundles", "bright_star_straylight"]].to_numpy().sum()
    assert_allclose(by_type[0, 62], bright)  # 8.5 < 9.5 <= 9.5
    assert_allclose(by_type[0, 49] / by_type[0, 54], 2.0)
    # Without per-type photons the faint part's bins are unknown.
    by_type, unplaced = model.source_type_seconds(_features())
    assert by_type.sum() == 0.0 and unplaced[0] > 0


def test_learned_state_only_after_fit_and_unknown_parameter():
    # Saving and loading: tests/test_persistence.py.
    model = PhosimCostModel(parameters={"setup_seconds_per_snap": 33.0})
    assert not hasattr(model, "parameters_")  # learned state only after fit
    for predict in (model.predict, model.predict_parts, model.source_type_seconds):
        with pytest.raises(NotFittedError):
            predict(_features())
    # The physical model at given values is asked for by name.
    given = PhosimCostModel.from_parameters({"setup_seconds_per_snap": 33.0})
    assert given.predict_parts(_features())["setup"].iloc[0] == 33.0
    assert given.parameters_ == {**DEFAULT_PARAMETERS, "setup_seconds_per_snap": 33.0}
    assert given.get_params()["parameters"] == {"setup_seconds_per_snap": 33.0}
    with pytest.raises(ValueError, match="unknown"):
        PhosimCostModel.from_parameters({"warp_drive": 1.0})
    with pytest.raises(ValueError, match="unknown"):
        PhosimCostModel(parameters={"warp_drive": 1.0}).fit(_features(), [100.0])
