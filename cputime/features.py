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
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cputime import focalplane
from cputime.catalog import CatalogHeader, iter_object_chunks, read_header
from cputime.checkpoints import (
    SOURCE_TYPE_PHOTON_COLUMNS,
    SOURCE_TYPES_WITH_PHOTON_COLUMNS,
    source_type_of_magnitude,
)
from cputime.commands import PhosimCommands
from cputime.errors import InputError
from cputime.photons import (
    BRIGHT_STAR_MAG,
    DEFAULT_STRAYLIGHT_CUT_MAG,
    N_BRIGHT_STAR_SLOTS,
    open_shutter_seconds,
    sky_photons_per_sensor,
    source_photons,
)
from cputime.sky import airmass_ks91, sky_mag_per_arcsec2
from cputime.validation import check_magnorm, check_visit

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
    values: dict[str, float | None], commands: PhosimCommands | None, where: str
) -> dict[str, float]:
    """Condition features of one visit from canonical header values.

    ``where`` (file, or file:line of a table row) prefixes the error raised when a keyword the
    sky brightness needs is missing: without it the sky's cost, most of a job's CPU, is unknown.
    """
    cmd = commands.overrides() if commands is not None else {}
    check_visit(values, where)
    vistime = float(cmd.get("vistime", values["vistime"]))
    nsnap = int(cmd.get("nsnap", values.get("nsnap") or 1))
    check_visit({"vistime": vistime, "nsnap": nsnap}, where)  # the commands may change either
    altitude = values.get("altitude")
    airmass = values.get("airmass")
    if airmass is None and altitude is not None:
        airmass = float(airmass_ks91(altitude))
    if altitude is None and airmass is not None:
        altitude = float(np.degrees(np.arcsin(min(1.0, 1.0 / airmass))))
    exposure = float(open_shutter_seconds(vistime, nsnap))
    sky = _sky_mag(values, altitude, airmass, cmd, where)
    return {
        "filter": int(values["filter"]),
        "vistime": vistime,
        "nsnap": nsnap,
        "exposure_seconds": exposure,
        "airmass": _nan_if_none(airmass),
        "altitude": _nan_if_none(altitude),
        "moonalt": _nan_if_none(values.get("moonalt")),
        "moonphase": _nan_if_none(values.get("moonphase")),
        "dist2moon": _nan_if_none(values.get("dist2moon")),
        "sunalt": _nan_if_none(values.get("sunalt")),
        "seeing": _nan_if_none(values.get("seeing")),
        "sky_mag_per_arcsec2": sky,
        "sky_photons": float(sky_photons_per_sensor(sky, exposure)),
        "straylight_cut_mag": _straylight_cut_mag(cmd),
    }


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


def _sky_mag(values: dict, altitude, airmass, overrides: dict, where: str) -> float:
    zenith_v = overrides.get("zenith_v")
    if zenith_v is not None and zenith_v >= 100:
        return float("inf")
    given = {**values, "altitude": altitude}
    missing = [k for k in SKY_KEYWORDS if given.get(k) is None]
    if missing:
        raise InputError(
            f"{where}: missing {', '.join(missing)}: the sky brightness, most of a job's CPU, "
            "needs altitude (or airmass), moonalt, moonphase, dist2moon and sunalt "
            "(or a commands file with zenith_v 1000 for no sky)"
        )
    sky = float(
        sky_mag_per_arcsec2(
            int(values["filter"]),
            altitude,
            values["moonalt"],
            values["moonphase"],
            values["dist2moon"],
            values["sunalt"],
            airmass=airmass,
        )
    )
    if zenith_v is not None:
        sky += zenith_v - DEFAULT_ZENITH_V
    return sky


def _nan_if_none(value) -> float:
    return float("nan") if value is None else float(value)


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
        centre = np.where(front[rest], on[rest], -1)
        seen = [centre]
        for dx, dy in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            probe = focalplane.sensor_index(xr + dx * margin, yr + dy * margin)
            for earlier in seen:
                probe = np.where(probe == earlier, -1, probe)
            seen.append(probe)
        for idx in seen:
            ok = idx >= 0
            self.n_trimmed += np.bincount(idx[ok], minlength=n)
            self.faint_star_photons += np.bincount(
                idx[ok & pr], weights=photons[ok & pr], minlength=n
            )
            self.galaxy_photons += np.bincount(
                idx[ok & ~pr], weights=photons[ok & ~pr], minlength=n
            )
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


def header_values(header: CatalogHeader) -> dict[str, float | None]:
    """The header keywords the conditions need, as a plain dict of canonical names."""
    names = (
        "obshistid", "filter", "vistime", "nsnap", "airmass", "altitude", "moonalt",
        "moonphase", "dist2moon", "sunalt", "seeing",
    )  # fmt: skip
    return {name: getattr(header, name) for name in names}


def catalog_features(
    path: str | Path,
    sensors: Sequence[str] | str = "all",
    *,
    commands: PhosimCommands | None = None,
    allow_outside: bool = False,
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
    header = read_header(path, allow_outside=allow_outside)
    values = header_values(header)
    conditions = _conditions(values, commands, header.source)
    exposure = conditions["exposure_seconds"]
    acc = _SensorAccumulator(len(focalplane.SENSOR_NAMES))
    for chunk in iter_object_chunks(path, allow_outside=allow_outside):
        check_magnorm(chunk.magnorm, chunk.source)
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
    from cputime.catalog import canonical_keyword

    renamed = {}
    for column in visits.columns:
        canonical = canonical_keyword(str(column))
        if canonical is not None and canonical not in renamed.values():
            renamed[column] = canonical
    table = visits.rename(columns=renamed)
    for required in ("obshistid", "filter"):
        if required not in table.columns:
            raise InputError(
                f"{source}: missing column '{required}' (a visit table needs header-keyword "
                "columns such as obshistid, filter, altitude, moonalt, moonphase, dist2moon, "
                "sunalt)"
            )
    rows = []
    for position, record in enumerate(table.to_dict("records")):
        values = {k: _number(record, k, source, position) for k in _VISIT_KEYS}
        for key, default in VISIT_DEFAULTS.items():
            if values[key] is None:
                values[key] = default
        if values["filter"] not in range(6):
            raise InputError(
                f"{source}:{position + 2}: filter: {record.get('filter')!r} is not 0..5 "
                "(u g r i z y)"
            )
        where = f"{source}:{position + 2}"
        rows.append({"obshistid": int(values["obshistid"]), **_conditions(values, commands, where)})
    # One frame built at once: adding the catalog columns one by one costs more than the rest
    # for the one-visit requests of the service.
    no_catalog = dict.fromkeys(CATALOG_COLUMNS, np.nan)
    columns = ["obshistid", "sensor", *CONDITION_COLUMNS, *CATALOG_COLUMNS]
    return pd.DataFrame(
        [
            {**row, "sensor": sensor, **no_catalog}
            for row in rows
            for sensor in (sensors or [""])
        ],
        columns=columns,
    )


_VISIT_KEYS = (
    "obshistid", "filter", "vistime", "nsnap", "airmass", "altitude", "moonalt", "moonphase",
    "dist2moon", "sunalt", "seeing",
)  # fmt: skip


def _number(record: dict, key: str, source: str, position: int) -> float | None:
    value = record.get(key)
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(f"{source}:{position + 2}: {key}: {value!r} is not a number") from None
    if key in ("filter", "nsnap", "obshistid"):
        if not number.is_integer():
            raise InputError(f"{source}:{position + 2}: {key}: {value!r} is not an integer")
        return int(number)
    return number


def features_of_inputs(
    inputs: Iterable[str | Path],
    sensors: Sequence[str] | None,
    *,
    commands: PhosimCommands | None = None,
    allow_outside: bool = False,
) -> pd.DataFrame:
    """Features of several inputs (catalogs or visit tables), in input order."""
    frames = []
    for path in inputs:
        path = Path(path)
        if is_visit_table(path):
            visits = read_visit_table(path)
            frames.append(visit_features(visits, sensors, commands=commands, source=str(path)))
        else:
            frames.append(
                catalog_features(
                    path, sensors or "all", commands=commands, allow_outside=allow_outside
                )
            )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def is_visit_table(path: Path) -> bool:
    """True for a table of visits (CSV, Parquet, OpSim SQLite) rather than an instance catalog."""
    from cputime.opsim import OPSIM_DB_SUFFIXES

    return path.suffix.lower() in {".csv", ".parquet", ".pq", *OPSIM_DB_SUFFIXES}


def read_visit_table(
    path: Path, *, where: str | None = None, visits: Sequence[int] | None = None
) -> pd.DataFrame:
    """Read a planned-visit table: CSV (optional space padding, ``#`` comments), Parquet, or an
    OpSim database or export (:mod:`cputime.opsim`: detected, converted to PhoSim's names and
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
    from cputime import opsim

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
