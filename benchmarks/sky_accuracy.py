"""Agreement of cputime.physics.sky with OpSim v3's own sky brightness, and a refit of its
constants.

Usage: ``python benchmarks/sky_accuracy.py [OPSIM_CSV]``

Reads OpSim Summary rows (default: the Twinkles Run 1 training visits in
/work/shared/data/twinkles_run1/opsim_visits_train.csv if present, else the 160-row copy in
tests/data/opsim_visits_sample.csv), predicts ``filtSkyBrightness`` from the header-keyword
inputs only (filter, altitude, moonAlt, moonPhase, dist2Moon, sunAlt, airmass) and reports the
median and 90th percentile of |model - OpSim| [mag], overall and per filter, for every model in
SKY_MODELS. For "ks91" it also refits the 12 constants (zenith dark sky and moonlight colour per
filter) on all rows and in 5-fold cross-validation, to show how much of the agreement is fit.
Writes benchmarks/results/sky_accuracy.json.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.optimize import least_squares

from cputime.physics import sky

HERE = Path(__file__).resolve().parent
SHARED = Path("/work/shared/data/twinkles_run1/opsim_visits_train.csv")
SAMPLE = HERE.parent / "tests" / "data" / "opsim_visits_sample.csv"
OUT = HERE / "results" / "sky_accuracy.json"
N_FOLDS = 5
SEED = 0
MOON_COLOUR_BOUND = 3.0  # [mag]; y has no moon signal in OpSim, so its colour runs to the bound


def load_visits(path: Path) -> dict[str, np.ndarray]:
    """OpSim rows as model inputs in degrees (OpSim stores radians) plus the OpSim values."""
    table = pd.read_csv(path, comment="#")
    return {
        "filter": table["filter"].map({name: i for i, name in enumerate(sky.FILTER_NAMES)}).values,
        "altitude": np.degrees(table["altitude"].values),
        "moonalt": np.degrees(table["moonAlt"].values),
        "moonphase": table["moonPhase"].values,
        "dist2moon": np.degrees(table["dist2Moon"].values),
        "sunalt": np.degrees(table["sunAlt"].values),
        "airmass": table["airmass"].values,
        "opsim": table["filtSkyBrightness"].values,
    }


def agreement(residual: np.ndarray, filters: np.ndarray) -> dict:
    """Median and 90th percentile of |residual| [mag], overall and per filter."""

    def summary(r):
        a = np.abs(r)
        return {
            "n": int(a.size),
            "median": round(float(np.median(a)), 4),
            "p90": round(float(np.percentile(a, 90)), 4),
            "max": round(float(np.max(a)), 4),
        }

    out = {"all": summary(residual)}
    for index, name in enumerate(sky.FILTER_NAMES):
        if np.any(filters == index):
            out[name] = summary(residual[filters == index])
    return out


def ks91_residual(params: np.ndarray, v: dict, rows, use_airmass: bool) -> np.ndarray:
    return (
        sky.sky_mag_ks91(
            v["filter"][rows],
            v["altitude"][rows],
            v["moonalt"][rows],
            v["moonphase"][rows],
            v["dist2moon"][rows],
            v["sunalt"][rows],
            v["airmass"][rows] if use_airmass else None,
            dark_mags=params[:6],
            moon_colours=params[6:],
        )
        - v["opsim"][rows]
    )


def fit_ks91(v: dict, rows, use_airmass: bool) -> np.ndarray:
    """Zenith dark sky and moonlight colour per filter, robust least squares (soft L1)."""
    start = np.r_[sky.DARK_SKY_MAG, sky.MOON_COLOUR_MAG]
    low = np.r_[np.full(6, 15.0), np.full(6, -MOON_COLOUR_BOUND)]
    high = np.r_[np.full(6, 25.0), np.full(6, MOON_COLOUR_BOUND)]
    start = np.clip(start, low + 1e-6, high - 1e-6)
    fit = least_squares(
        ks91_residual,
        start,
        args=(v, rows, use_airmass),
        bounds=(low, high),
        loss="soft_l1",
        f_scale=0.1,
    )
    return fit.x


def cross_validated(v: dict, use_airmass: bool) -> np.ndarray:
    n = v["opsim"].size
    fold = np.random.default_rng(SEED).permutation(n) % N_FOLDS
    residual = np.empty(n)
    for k in range(N_FOLDS):
        train, test = np.flatnonzero(fold != k), np.flatnonzero(fold == k)
        residual[test] = ks91_residual(fit_ks91(v, train, use_airmass), v, test, use_airmass)
    return residual


def main(argv: list[str]) -> dict:
    path = Path(argv[0]) if argv else (SHARED if SHARED.exists() else SAMPLE)
    v = load_visits(path)
    inputs = [v[k] for k in ("filter", "altitude", "moonalt", "moonphase", "dist2moon", "sunalt")]
    result = {"data": str(path), "n_visits": int(v["opsim"].size), "models": {}}
    for model in sky.SKY_MODELS:
        for use_airmass in (False, True):
            predicted = sky.sky_mag_per_arcsec2(
                *inputs, airmass=v["airmass"] if use_airmass else None, model=model
            )
            key = f"{model}, airmass={'header' if use_airmass else 'from altitude'}"
            result["models"][key] = agreement(predicted - v["opsim"], v["filter"])
    constant = np.array([np.median(v["opsim"][v["filter"] == f]) for f in range(6)])
    result["models"]["constant per filter (median)"] = agreement(
        constant[v["filter"]] - v["opsim"], v["filter"]
    )
    all_rows = np.arange(v["opsim"].size)
    refit = fit_ks91(v, all_rows, use_airmass=False)
    result["ks91_refit_all_rows"] = {
        "dark_sky_mag": dict(zip(sky.FILTER_NAMES, np.round(refit[:6], 3).tolist(), strict=True)),
        "moon_colour_mag": dict(
            zip(sky.FILTER_NAMES, np.round(refit[6:], 3).tolist(), strict=True)
        ),
        "agreement": agreement(ks91_residual(refit, v, all_rows, False), v["filter"]),
    }
    result[f"ks91_{N_FOLDS}fold_cv"] = {
        "airmass from altitude": agreement(cross_validated(v, False), v["filter"]),
        "airmass from header": agreement(cross_validated(v, True), v["filter"]),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    results = main(sys.argv[1:])
    for name, table in results["models"].items():
        print(f"{name:40s} {table['all']}")
    for name, table in results[f"ks91_{N_FOLDS}fold_cv"].items():
        print(f"ks91 {N_FOLDS}-fold CV, {name:25s} {table['all']}")
    print(f"wrote {OUT}")
