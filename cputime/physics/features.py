"""Per-(visit, sensor) features that drive PhoSim's CPU time.

Two entry points, one per kind of input:

- :func:`catalog_features` streams an instance catalog once and returns one row per requested
  sensor: the visit's conditions, what falls on the sensor (object and bright-star counts), what
  PhoSim's trim step keeps for that sensor (source photons, the brightest stars, including those
  just off the sensor), and the expected sky photons.
- :func:`visit_features` turns a table of planned visits (header keywords as columns) into the
  condition features, before any catalog exists; catalog columns are then empty (NaN).

Both produce the columns of :data:`FEATURE_COLUMNS` (plus ``obshistid`` and ``sensor``), so the
model sees the same names whichever way the features were made.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from pandas.api.types import is_numeric_dtype

from cputime.errors import InputError
from cputime.inputs import focalplane
from cputime.inputs.catalog import MAX_INCLUDED_BYTES, CatalogHeader, open_catalog
from cputime.inputs.commands import PhosimCommands
from cputime.inputs.validation import RANGES, check_visit
from cputime.inputs.visit_time import READOUT_SECONDS, open_shutter_seconds
from cputime.physics.checkpoints import (
    SOURCE_TYPE_PHOTON_COLUMNS,
    SOURCE_TYPES_WITH_PHOTON_COLUMNS,
    source_type_of_magnitude,
)
from cputime.physics.photons import (
    BRIGHT_STAR_MAG,
    DEFAULT_STRAYLIGHT_CUT_MAG,
    N_BRIGHT_STAR_SLOTS,
    sky_photons_per_sensor,
    source_photons,
)
from cputime.physics.sky import airmass_ks91, sky_mag_per_arcsec2

__all__ = [
    "CONDITION_COLUMNS",
    "CATALOG_COLUMNS",
    "FEATURE_COLUMNS",
    "FEATURE_CODE_VERSION",
    "catalog_features",
    "visit_features",
]

#: Bumped whenever a feature's definition changes, and stored with ingested runs.
FEATURE_CODE_VERSION = "2"

#: Radius around a sensor's edge within which bright stars are reported as "near" [arcmin].
NEAR_RADIUS_ARCMIN = 90.0

#: Objects deeper inside their sensor than their trim margin plus this [mm] cannot reach another
#: sensor; far above rounding (1e-13 mm), far below a pixel (0.01 mm).
_PROBE_SLACK_MM = 1e-6

CONDITION_COLUMNS: tuple[str, ...] = (
    "filter",
    "vistime",
    "nsnap",
    "exposure_seconds",
    "airmass",
    "altitude",
    "moonalt",
    "moonphase",
    "dist2moon",
    "sunalt",
    "seeing",
    "sky_mag_per_arcsec2",
    "sky_photons",
    "straylight_cut_mag",
)

CATALOG_COLUMNS: tuple[str, ...] = (
    "n_objects",
    "n_stars",
    "n_galaxies",
    "brightest_star_mag",
    "n_stars_brighter_than_10",
    "n_stars_brighter_than_13",
    "n_stars_brighter_than_16",
    "n_bright_stars_near",
    "brightest_near_star_mag",
    "brightest_near_star_distance_arcmin",
    "n_trimmed_sources",
    "source_photons",
    "star_photons",
    "galaxy_photons",
    "faint_star_photons",
    *(f"bright_star_mag_{k}" for k in range(1, N_BRIGHT_STAR_SLOTS + 1)),
    *SOURCE_TYPE_PHOTON_COLUMNS,
)

FEATURE_COLUMNS: tuple[str, ...] = CONDITION_COLUMNS + CATALOG_COLUMNS


# --------------------------------------------------------------------------------------------
# Small physical helpers
# --------------------------------------------------------------------------------------------


# --------------------------------------------------------------------------------------------
# Conditions (from a header or a visit-table row)
# --------------------------------------------------------------------------------------------


def _conditions(
    values: Mapping[str, np.ndarray],
    commands: PhosimCommands | None,
    where: Callable[[int], str],
) -> dict[str, np.ndarray]:
    """Condition features of visits from canonical header values, all visits at once.

    ``values`` maps each keyword of :data:`_VISIT_KEYS` to one float per visit, NaN where the
    visit does not give it. ``where(i)`` (file, or file:line of a table row) prefixes the error
    raised when visit ``i`` lacks a keyword the sky brightness needs: without it the sky's cost,
    most of a job's CPU, is unknown.
    """
    cmd = commands.overrides() if commands is not None else {}
    n = len(values["filter"])
    _check_visits(values, where)
    vistime = np.full(n, float(cmd["vistime"])) if "vistime" in cmd else values["vistime"]
    if "nsnap" in cmd:
        nsnap = np.full(n, int(cmd["nsnap"]), dtype=np.int64)
    else:  # an absent (or zero) snap count is one snap
        given = values["nsnap"]
        nsnap = np.where(np.isnan(given) | (given == 0), 1, given).astype(np.int64)
    if "vistime" in cmd or "nsnap" in cmd:  # the values themselves were checked above
        _check_visits({"vistime": vistime, "nsnap": nsnap.astype(float)}, where)
    altitude, airmass = values["altitude"], values["airmass"]
    airmass = np.where(np.isnan(airmass), airmass_ks91(altitude), airmass)
    with np.errstate(divide="ignore", invalid="ignore"):
        from_airmass = np.degrees(np.arcsin(np.minimum(1.0, 1.0 / airmass)))
    altitude = np.where(np.isnan(altitude), from_airmass, altitude)
    exposure = open_shutter_seconds(vistime, nsnap)
    filters = values["filter"].astype(np.int64)
    sky = _sky_mag(filters, {**values, "altitude": altitude}, airmass, cmd, where)
    return {
        "filter": filters,
        "vistime": vistime.astype(float),
        "nsnap": nsnap,
        "exposure_seconds": exposure,
        "airmass": airmass,
        "altitude": altitude,
        "moonalt": values["moonalt"],
        "moonphase": values["moonphase"],
        "dist2moon": values["dist2moon"],
        "sunalt": values["sunalt"],
        "seeing": values["seeing"],
        "sky_mag_per_arcsec2": sky,
        "sky_photons": sky_photons_per_sensor(sky, exposure),
        "straylight_cut_mag": np.full(n, _straylight_cut_mag(cmd)),
    }


def _check_visits(values: Mapping[str, np.ndarray], where: Callable[[int], str]) -> None:
    """:func:`check_visit` on every visit (NaN: absent), without a loop over the visits.

    A vectorised screen of :data:`RANGES` finds the first visit with a value out of range, and
    :func:`check_visit` on that visit alone raises with its usual message.
    """
    n = len(next(iter(values.values())))
    suspect = np.zeros(n, dtype=bool)
    with np.errstate(invalid="ignore"):
        for name, column in values.items():
            allowed = RANGES.get(name)
            if allowed is None:
                continue
            suspect |= ~np.isnan(column) & ~allowed.mask(column)
        if "vistime" in values and "nsnap" in values:
            suspect |= values["vistime"] <= (values["nsnap"] - 1) * READOUT_SECONDS
    for row in np.flatnonzero(suspect)[:1]:
        visit = {
            name: None if np.isnan(column[row])
            else int(column[row]) if name in RANGES and RANGES[name].integer
            else float(column[row])
            for name, column in values.items()
        }
        check_visit(visit, where(int(row)))


def _straylight_cut_mag(overrides: dict) -> float:
    """Magnorm below which PhoSim traces stray light [mag]; -inf when ``straylight 0``."""
    if overrides.get("straylight") == 0:
        return float("-inf")
    return float(overrides.get("straylightcut", DEFAULT_STRAYLIGHT_CUT_MAG))


#: PhoSim 3.4's default zenith sky brightness in V [mag/arcsec^2] (raytrace/observation.cpp;
#: its atmosphere step draws 22.08 + 0.9 N(0, 1) per visit when the commands do not set it).
#: A ``zenith_v`` override shifts the modelled sky by the difference; ``zenith_v >= 100`` turns
#: the sky off (PhoSim adds the diffuse sky only when ``zenith_v < 100``).
DEFAULT_ZENITH_V = 22.08


#: Keywords the sky brightness needs (altitude may come from airmass instead).
SKY_KEYWORDS = ("altitude", "moonalt", "moonphase", "dist2moon", "sunalt")


def _sky_mag(
    filters: np.ndarray,
    values: Mapping[str, np.ndarray],
    airmass: np.ndarray,
    overrides: dict,
    where: Callable[[int], str],
) -> np.ndarray:
    """Sky brightness of each visit [mag/arcsec^2]; ``inf`` when the commands turn it off."""
    zenith_v = overrides.get("zenith_v")
    if zenith_v is not None and zenith_v >= 100:
        return np.full(filters.size, np.inf)
    missing = np.column_stack([np.isnan(values[k]) for k in SKY_KEYWORDS])
    if missing.any():
        row = int(np.flatnonzero(missing.any(axis=1))[0])
        names = [k for k, absent in zip(SKY_KEYWORDS, missing[row], strict=True) if absent]
        raise InputError(
            f"{where(row)}: missing {', '.join(names)}: the sky brightness, most of a job's "
            "CPU, needs altitude (or airmass), moonalt, moonphase, dist2moon and sunalt "
            "(or a commands file with zenith_v 1000 for no sky)"
        )
    sky = sky_mag_per_arcsec2(
        filters,
        values["altitude"],
        values["moonalt"],
        values["moonphase"],
        values["dist2moon"],
        values["sunalt"],
        airmass=airmass,
    )
    if zenith_v is not None:
        sky = sky + (zenith_v - DEFAULT_ZENITH_V)
    return sky


# --------------------------------------------------------------------------------------------
# Catalog content, per sensor, streamed
# --------------------------------------------------------------------------------------------


@dataclass
class _SensorAccumulator:
    """Running per-sensor sums over the catalog's chunks (index = position in SENSOR_NAMES)."""

    n_sensors: int

    def __post_init__(self) -> None:
        n = self.n_sensors
        self.n_objects = np.zeros(n, dtype=np.int64)
        self.n_stars = np.zeros(n, dtype=np.int64)
        self.n_stars_lt = {m: np.zeros(n, dtype=np.int64) for m in (10, 13, 16)}
        self.brightest_star = np.full(n, np.inf)
        self.n_trimmed = np.zeros(n, dtype=np.int64)
        self.faint_star_photons = np.zeros(n)
        self.galaxy_photons = np.zeros(n)
        # Photons of the same sources by PhoSim source type, for checkpoint plans.
        self.type_photons = np.zeros(n * _N_PHOTON_TYPES)
        # Stars brighter than BRIGHT_STAR_MAG are few: keep them for an exact pass at the end.
        self.bright_x: list[np.ndarray] = []
        self.bright_y: list[np.ndarray] = []
        self.bright_mag: list[np.ndarray] = []

    def add(self, x_mm, y_mm, front, magnorm, is_point, exposure_s) -> None:
        n = self.n_sensors
        on = focalplane.sensor_index(x_mm, y_mm)
        on = np.where(front, on, -1)
        hit = on >= 0
        self.n_objects += np.bincount(on[hit], minlength=n)
        star_hit = hit & is_point
        self.n_stars += np.bincount(on[star_hit], minlength=n)
        for limit, counts in self.n_stars_lt.items():
            sel = star_hit & (magnorm < limit)
            counts += np.bincount(on[sel], minlength=n)
        if star_hit.any():
            np.minimum.at(self.brightest_star, on[star_hit], magnorm[star_hit])

        bright = is_point & (magnorm < BRIGHT_STAR_MAG) & front
        self.bright_x.append(x_mm[bright])
        self.bright_y.append(y_mm[bright])
        self.bright_mag.append(magnorm[bright])

        # Everything else is kept by PhoSim's trim when within ~100 px of a sensor: find the
        # sensors within the margin by probing the four edge directions (corners are a
        # negligible sliver at this margin).
        rest = ~bright & front
        xr, yr, mr, pr = x_mm[rest], y_mm[rest], magnorm[rest], is_point[rest]
        photons = source_photons(mr, exposure_s)
        types = _photon_type_index(mr)
        margin = focalplane.trim_margin_pixels(mr) * focalplane.PIXEL_SIZE_MM
        centre = on[rest]
        self._add_kept(centre, pr, photons, types)
        # Only objects off silicon or within their margin of an edge can reach another sensor;
        # the probes of the others land on their own sensor and count nothing, so they are
        # skipped (the sums below see the same objects in the same order).
        near = np.flatnonzero(
            focalplane.depth_inside_sensor_mm(xr, yr, centre) <= margin + _PROBE_SLACK_MM
        )
        xr, yr, margin, pr, photons = xr[near], yr[near], margin[near], pr[near], photons[near]
        types = types[near]
        seen = [centre[near]]
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            probe = focalplane.sensor_index(xr + dx * margin, yr + dy * margin)
            for earlier in seen:
                probe = np.where(probe == earlier, -1, probe)
            seen.append(probe)
            self._add_kept(probe, pr, photons, types)

    def _add_kept(
        self, idx: np.ndarray, is_point: np.ndarray, photons: np.ndarray, types: np.ndarray
    ) -> None:
        """Count the sources that PhoSim's trim keeps for sensor ``idx`` (-1: none)."""
        n = self.n_sensors
        ok = idx >= 0
        self.n_trimmed += np.bincount(idx[ok], minlength=n)
        stars, galaxies = ok & is_point, ok & ~is_point
        self.faint_star_photons += np.bincount(idx[stars], weights=photons[stars], minlength=n)
        self.galaxy_photons += np.bincount(idx[galaxies], weights=photons[galaxies], minlength=n)
        self.type_photons += np.bincount(
            idx[ok] * _N_PHOTON_TYPES + types[ok],
            weights=photons[ok],
            minlength=n * _N_PHOTON_TYPES,
        )

    def finish(self, sensors: Sequence[str], exposure_s: float) -> dict[str, np.ndarray]:
        """Per-sensor catalog columns for the requested sensors."""
        index = np.array([focalplane.SENSOR_NAMES.index(s) for s in sensors], dtype=int)
        bx = np.concatenate(self.bright_x) if self.bright_x else np.empty(0)
        by = np.concatenate(self.bright_y) if self.bright_y else np.empty(0)
        bm = np.concatenate(self.bright_mag) if self.bright_mag else np.empty(0)
        k = len(sensors)
        out = {
            "n_objects": self.n_objects[index],
            "n_stars": self.n_stars[index],
            "n_galaxies": self.n_objects[index] - self.n_stars[index],
            "brightest_star_mag": self.brightest_star[index],
            "n_stars_brighter_than_10": self.n_stars_lt[10][index],
            "n_stars_brighter_than_13": self.n_stars_lt[13][index],
            "n_stars_brighter_than_16": self.n_stars_lt[16][index],
            "n_trimmed_sources": self.n_trimmed[index].astype(float),
            "faint_star_photons": self.faint_star_photons[index],
            "galaxy_photons": self.galaxy_photons[index],
            "n_bright_stars_near": np.zeros(k, dtype=np.int64),
            "brightest_near_star_mag": np.full(k, np.nan),
            "brightest_near_star_distance_arcmin": np.full(k, np.nan),
        }
        slots = np.full((k, N_BRIGHT_STAR_SLOTS), np.nan)
        extra_star_photons = np.zeros(k)
        type_photons = self.type_photons.reshape(-1, _N_PHOTON_TYPES)[index]
        margin_mm = focalplane.trim_margin_pixels(bm) * focalplane.PIXEL_SIZE_MM
        for row, sensor in enumerate(sensors):
            dist_mm = focalplane.distance_to_sensor_mm(bx, by, sensor)
            dist_arcmin = dist_mm / focalplane.MM_PER_ARCMIN
            near = dist_arcmin <= NEAR_RADIUS_ARCMIN
            if near.any():
                out["n_bright_stars_near"][row] = int(near.sum())
                j = np.flatnonzero(near)[np.argmin(bm[near])]
                out["brightest_near_star_mag"][row] = bm[j]
                out["brightest_near_star_distance_arcmin"][row] = dist_arcmin[j]
            kept = np.sort(bm[dist_mm <= margin_mm])
            out["n_trimmed_sources"][row] += kept.size
            slots[row, : min(kept.size, N_BRIGHT_STAR_SLOTS)] = kept[:N_BRIGHT_STAR_SLOTS]
            # Stars beyond the individually tracked slots count with the faint ones.
            extra = kept[N_BRIGHT_STAR_SLOTS:]
            extra_photons = source_photons(extra, exposure_s)
            extra_star_photons[row] = extra_photons.sum()
            np.add.at(type_photons[row], _photon_type_index(extra), extra_photons)
        out["faint_star_photons"] = out["faint_star_photons"] + extra_star_photons
        bright_photons = np.nansum(source_photons(slots, exposure_s), axis=1)
        out["star_photons"] = out["faint_star_photons"] + bright_photons
        out["source_photons"] = out["star_photons"] + out["galaxy_photons"]
        for s in range(N_BRIGHT_STAR_SLOTS):
            out[f"bright_star_mag_{s + 1}"] = slots[:, s]
        for j, column in enumerate(SOURCE_TYPE_PHOTON_COLUMNS):
            out[column] = type_photons[:, j]
        return out


_N_PHOTON_TYPES = len(SOURCE_TYPE_PHOTON_COLUMNS)


def _photon_type_index(magnorm: np.ndarray) -> np.ndarray:
    """Position of each source's PhoSim source type among the photon-per-type columns."""
    return source_type_of_magnitude(magnorm) - SOURCE_TYPES_WITH_PHOTON_COLUMNS[0]


def header_values(header: CatalogHeader) -> dict[str, np.ndarray]:
    """The header keywords the conditions need, as one-visit float arrays (NaN: absent)."""
    given = {name: getattr(header, name) for name in _VISIT_KEYS}
    return {name: np.array([np.nan if v is None else v], dtype=float) for name, v in given.items()}


def catalog_features(
    path: str | Path,
    sensors: Sequence[str] | str = "all",
    *,
    commands: PhosimCommands | None = None,
    allow_outside: bool = False,
    max_included_bytes: int = MAX_INCLUDED_BYTES,
) -> pd.DataFrame:
    """Features of one instance catalog, one row per sensor.

    Parameters
    ----------
    path : str or Path
        Instance catalog, plain or gzipped; ``includeobj`` files are followed.
    sensors : sequence of str or str, default "all"
        Sensor names (``"R22_S11"``) or a spec accepted by :func:`focalplane.parse_sensors`.
    commands : PhosimCommands, optional
        PhoSim commands-file overrides (``vistime``, ``nsnap``, ``zenith_v`` ...).
    allow_outside : bool, default False
        Follow ``includeobj`` files outside the catalog's folder.
    max_included_bytes : int, default=:data:`cputime.inputs.catalog.MAX_INCLUDED_BYTES`
        Most decompressed text of all ``includeobj`` files together [bytes], a file included
        twice counting twice.

    Returns
    -------
    pandas.DataFrame
        ``obshistid``, ``sensor`` and :data:`FEATURE_COLUMNS`; photon counts in [photons],
        magnitudes in [mag], distances in [arcmin]. ``brightest_star_mag`` is ``inf`` when no star
        falls on the sensor.

    Raises
    ------
    cputime.errors.InputError
        For any malformed catalog, with file and line.
    """
    if isinstance(sensors, str):
        sensors = focalplane.parse_sensors(sensors)
    # One pass over the file.
    header, chunks = open_catalog(path, allow_outside=allow_outside,
                                  max_included_bytes=max_included_bytes)
    one_visit = _conditions(header_values(header), commands, lambda _: header.source)
    conditions = {name: column[0] for name, column in one_visit.items()}
    exposure = conditions["exposure_seconds"]
    acc = _SensorAccumulator(len(focalplane.SENSOR_NAMES))
    for chunk in chunks:
        x, y, front = focalplane.focal_plane_xy_mm(
            chunk.ra, chunk.dec, header.rightascension, header.declination, header.rotskypos
        )
        acc.add(x, y, front, chunk.magnorm, chunk.is_point, exposure)
    table = pd.DataFrame(acc.finish(sensors, exposure))
    for name, value in conditions.items():
        table[name] = value
    table.insert(0, "sensor", list(sensors))
    table.insert(0, "obshistid", int(header.obshistid))
    if commands is not None:
        table["commands_overrides"] = json.dumps(commands.overrides(), sort_keys=True)
        table["commands_other"] = json.dumps(commands.unrecognised(), sort_keys=True)
    return table[["obshistid", "sensor", *FEATURE_COLUMNS, *_extra(table)]]


def _extra(table: pd.DataFrame) -> list[str]:
    fixed = {"obshistid", "sensor", *FEATURE_COLUMNS}
    return [c for c in table.columns if c not in fixed]


#: Defaults for visit-table columns that a planned-visit table may lack, following the Twinkles
#: Run 1 convention (one 30 s snap); a table can always give its own columns.
VISIT_DEFAULTS = {"vistime": 30.0, "nsnap": 1}


def visit_features(
    visits: pd.DataFrame,
    sensors: Sequence[str] | None = None,
    *,
    commands: PhosimCommands | None = None,
    source: str = "<visits>",
) -> pd.DataFrame:
    """Condition features of planned visits, before any catalog exists.

    Parameters
    ----------
    visits : pandas.DataFrame
        One row per visit; columns are header keywords in either style (``moonalt`` or
        ``Opsim_moonalt``, degrees; ``filter`` 0..5; ``moonphase`` in percent). ``obshistid`` and
        ``filter`` are required; ``vistime``/``nsnap`` default to :data:`VISIT_DEFAULTS`.
    sensors : sequence of str, optional
        When given, one row per (visit, sensor); otherwise one row per visit with an empty
        ``sensor``.
    commands : PhosimCommands, optional
        Overrides applied to every visit.
    source : str
        Name of the table, for error messages.

    Returns
    -------
    pandas.DataFrame
        ``obshistid``, ``sensor`` and :data:`FEATURE_COLUMNS`; catalog columns are NaN.
    """
    from cputime.inputs.catalog import canonical_keyword

    # Each keyword's column, by its canonical name (the first column that gives it).
    columns: dict[str, pd.Series] = {}
    for position, name in enumerate(visits.columns):
        canonical = canonical_keyword(str(name))
        if canonical is not None and canonical not in columns:
            columns[canonical] = visits.iloc[:, position]
    for required in ("obshistid", "filter"):
        if required not in columns:
            raise InputError(
                f"{source}: missing column '{required}' (a visit table needs header-keyword "
                "columns such as obshistid, filter, altitude, moonalt, moonphase, dist2moon, "
                "sunalt)"
            )
    values = _visit_values(columns, len(visits), source)
    conditions = _conditions(values, commands, lambda row: f"{source}:{row + 2}")
    names = list(sensors or [""])
    per_visit = len(names)
    # Columns in their final order: naming them again in the constructor would cost a reindex,
    # which the one-visit requests of the service feel.
    data = {
        "obshistid": np.repeat(values["obshistid"].astype(np.int64), per_visit),
        "sensor": np.tile(np.array(names, dtype=object), len(visits)),
        **{name: np.repeat(conditions[name], per_visit) for name in CONDITION_COLUMNS},
        **{name: np.full(len(visits) * per_visit, np.nan) for name in CATALOG_COLUMNS},
    }
    return pd.DataFrame(data, copy=False)


_VISIT_KEYS = (
    "obshistid", "filter", "vistime", "nsnap", "airmass", "altitude", "moonalt", "moonphase",
    "dist2moon", "sunalt", "seeing",
)  # fmt: skip
_INTEGER_KEYS = ("obshistid", "filter", "nsnap")


def _visit_values(
    columns: Mapping[str, pd.Series], n: int, source: str
) -> dict[str, np.ndarray]:
    """Each keyword of :data:`_VISIT_KEYS` as ``n`` floats (NaN: not given), defaults filled in.

    Raises the error of the first bad row (table line ``row + 2``), for the first bad field of
    that row in :data:`_VISIT_KEYS` order.
    """
    values, errors = {}, []  # errors: (row, order within the row, message)
    for order, key in enumerate(_VISIT_KEYS):
        values[key], error = _column_numbers(columns.get(key), key, n)
        if error is not None:
            errors.append((error[0], order, error[1]))
    for key, default in VISIT_DEFAULTS.items():
        values[key] = np.where(np.isnan(values[key]), default, values[key])
    unknown = np.flatnonzero(np.isnan(values["obshistid"]))
    if unknown.size:
        errors.append((int(unknown[0]), -1, "obshistid: missing (every visit needs one)"))
    bad_filter = np.flatnonzero(~np.isin(values["filter"], np.arange(6)))
    if bad_filter.size:
        row = int(bad_filter[0])
        errors.append((row, len(_VISIT_KEYS), (
            f"filter: {_cell(columns['filter'], row)!r} is not 0..5 (u g r i z y)")))
    if errors:
        row, _, message = min(errors)
        raise InputError(f"{source}:{row + 2}: {message}")
    return values


def _column_numbers(
    column: pd.Series | None, key: str, n: int
) -> tuple[np.ndarray, tuple[int, str] | None]:
    """A column as floats (NaN where empty) and its first bad (row, message), if any."""
    if column is None:
        return np.full(n, np.nan), None
    if is_numeric_dtype(column.dtype):
        numbers = column.to_numpy(dtype=float, na_value=np.nan)
    else:  # text or mixed: Python's float() rules, element by element in C
        cells = column.to_numpy(dtype=object)
        given = ~pd.isna(cells)
        numbers = np.full(n, np.nan)
        try:
            numbers[given] = cells[given].astype(float)
        except (TypeError, ValueError):
            row = next(i for i in np.flatnonzero(given) if not _is_number(cells[i]))
            return numbers, (int(row), f"{key}: {_cell(column, row)!r} is not a number")
    if key in _INTEGER_KEYS:
        fractional = ~np.isnan(numbers) & ~(np.isfinite(numbers) & (numbers == np.trunc(numbers)))
        if fractional.any():
            row = int(np.flatnonzero(fractional)[0])
            return numbers, (row, f"{key}: {_cell(column, row)!r} is not an integer")
    return numbers, None


def _is_number(cell) -> bool:
    try:
        float(cell)
    except (TypeError, ValueError):
        return False
    return True


def _cell(column: pd.Series, row: int):
    """The cell as the table gave it, numpy scalars as Python numbers (for messages)."""
    value = column.iloc[row]
    return value.item() if isinstance(value, np.generic) else value


def features_of_inputs(
    inputs: Iterable[str | Path],
    sensors: Sequence[str] | None,
    *,
    commands: PhosimCommands | None = None,
    allow_outside: bool = False,
    max_included_bytes: int = MAX_INCLUDED_BYTES,
) -> pd.DataFrame:
    """Features of several inputs (catalogs or visit tables), in input order (the catalogs' options
    as :func:`catalog_features`')."""
    frames = []
    for path in inputs:
        path = Path(path)
        if is_visit_table(path):
            visits = read_visit_table(path)
            frames.append(visit_features(visits, sensors, commands=commands, source=str(path)))
        else:
            frames.append(
                catalog_features(path, sensors or "all", commands=commands,
                                 allow_outside=allow_outside,
                                 max_included_bytes=max_included_bytes)
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def is_visit_table(path: Path) -> bool:
    """True for a table of visits (CSV, Parquet, OpSim SQLite) rather than an instance catalog."""
    from cputime.inputs.opsim import OPSIM_DB_SUFFIXES

    return path.suffix.lower() in {".csv", ".parquet", ".pq", *OPSIM_DB_SUFFIXES}


def read_visit_table(
    path: Path, *, where: str | None = None, visits: Sequence[int] | None = None
) -> pd.DataFrame:
    """Read a planned-visit table: CSV (optional space padding, ``#`` comments), Parquet, or an
    OpSim database or export (:mod:`cputime.inputs.opsim`: detected, converted to PhoSim's names and
    units).

    Parameters
    ----------
    path : Path
        The table.
    where : str, optional
        SQL condition on the table's own columns (``night < 30 AND filter = 'r'``).
    visits : sequence of int, optional
        Visit ids to keep (``obshistid``, or OpSim's id column).
    """
    from cputime.inputs import opsim

    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if path.suffix.lower() in opsim.OPSIM_DB_SUFFIXES:
        return opsim.read_opsim(path, where=where, visits=visits)
    try:
        if path.suffix.lower() in {".parquet", ".pq"}:
            table, lines = pd.read_parquet(path), None
        else:
            table = pd.read_csv(path, skipinitialspace=True, comment="#")
            lines = _data_lines(path, len(table))
    except (ValueError, OSError, pd.errors.ParserError) as err:
        first = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"{path}: not a readable visit table ({first})") from None
    if opsim.opsim_generation(table.columns) is not None:
        return opsim.opsim_visits(table, source=str(path), where=where, visits=visits, lines=lines)
    if where or visits is not None:
        table = opsim.select_rows(
            table, name="visits", id_column="obshistid", where=where, visits=visits,
            source=str(path),
        )  # fmt: skip
    if "filter" in table.columns and table["filter"].dtype == object:
        # Letters (u g r i z y) as PhoSim's numbers; rows are reported as the file's lines.
        rows = [f"{path}:{n}" for n in (lines or range(2, len(table) + 2))]
        table["filter"] = opsim.filter_numbers(table["filter"], rows)
    return table


def _data_lines(path: Path, n_rows: int) -> list[int] | None:
    """File line of each data row of a CSV whose blank and ``#`` lines pandas skipped."""
    lines = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        for number, text in enumerate(handle, start=1):
            if text.strip() and not text.lstrip().startswith("#"):
                lines.append(number)
    return lines[1 : n_rows + 1] if len(lines) == n_rows + 1 else None
