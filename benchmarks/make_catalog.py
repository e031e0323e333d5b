"""Write a synthetic full-focal-plane PhoSim instance catalog for benchmarks.

Usage: ``python benchmarks/make_catalog.py N OUT[.gz] [MIX]`` (gzip-compressed when OUT ends in
``.gz``; MIX is ``dc2``, the default, or ``points``).

``dc2`` mimics a DESC DC2 visit in one file: a today's-style header, then 70 % ``sersic2d``
galaxies and 30 % ``point`` stars spread uniformly over a disc of 1.75 degrees radius around the
pointing (the whole LSST focal plane), with fields written the way the real catalogs write them
(full-precision coordinates, SED paths, lensing fields, rest-frame and Milky Way dust).
Magnitudes: galaxies 18-28, stars 14-28 with faint objects more common, plus a few bright stars
(6-10 mag).

``points`` is the other mix: 85 % ``point`` stars and 15 % galaxies, with long SED paths (the
absolute paths of a shared SED library), in two object files next to OUT that OUT pulls in with
``includeobj`` (``star_cat.txt.gz`` and ``gal_cat.txt.gz``, written with ``gzip -1`` as fast
catalog writers do, which also makes ``zcat`` faster and the bar higher).

The random seed is fixed, so the same N and MIX give the same files.
"""

from __future__ import annotations

import gzip
import sys
from pathlib import Path

import numpy as np

POINTING_RA = 53.00913847303155535  # [degrees] (Twinkles field)
POINTING_DEC = -27.43894880881512321  # [degrees]
FIELD_RADIUS = 1.75  # [degrees]
GALAXY_FRACTION = 0.7
N_BRIGHT_STARS = 20
LINES_PER_BLOCK = 100_000

HEADER = f"""rightascension {POINTING_RA}
declination {POINTING_DEC}
mjd 59580.13974597222113516
altitude 66.34657337061349835
azimuth 270.27655488919378968
filter 2
rotskypos 256.75075318193080420
dist2moon 124.2838277
moonalt -36.1323801
moondec -23.4960252
moonphase 3.8193650
moonra 256.4036553
nsnap 2
obshistid 230
rottelpos 0.0000000
seed 230
seeing 0.8662850
sunalt -32.7358290
vistime 33.0000000
"""

STAR_SEDS = (
    "starSED/phoSimMLT/lte033-4.5-1.0a+0.4.BT-Settl.spec.gz",
    "starSED/phoSimMLT/lte027-2.0-0.0a+0.0.BT-Settl.spec.gz",
    "starSED/kurucz/km20_6000.fits_g30_6020.gz",
)
GALAXY_SEDS = (
    "galaxySED/Burst.50E09.04Z.spec.gz",
    "galaxySED/Inst.25E09.002Z.spec.gz",
    "galaxySED/Exp.62E09.04Z.spec.gz",
)
#: Where a site keeps its SED library; the ``points`` mix writes these absolute paths.
SED_LIBRARY = "/global/cfs/cdirs/lsst/groups/SSim/DC2/sims_sed_library/2017.01.24/"
POINTS_STAR_FRACTION = 0.85


def faint_weighted_magnitudes(rng: np.random.Generator, n: int, bright: float,
                              faint: float) -> np.ndarray:
    """Magnitudes in [bright, faint] with counts rising ~10^(0.3 m) towards the faint end."""
    slope = 0.3 * np.log(10.0)
    u = rng.random(n)
    lo, hi = np.exp(slope * bright), np.exp(slope * faint)
    return np.log(lo + u * (hi - lo)) / slope


def random_positions(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Uniform positions in a disc of FIELD_RADIUS around the pointing [degrees]."""
    r = FIELD_RADIUS * np.sqrt(rng.random(n))
    phi = rng.uniform(0.0, 2.0 * np.pi, n)
    dec = POINTING_DEC + r * np.sin(phi)
    ra = POINTING_RA + r * np.cos(phi) / np.cos(np.radians(dec))
    return ra, dec


def object_lines(rng: np.random.Generator, first_id: int, n: int,
                 galaxy_fraction: float = GALAXY_FRACTION, sed_prefix: str = "") -> list[str]:
    """``n`` object lines, a random mix of galaxies and stars; SED paths start with
    ``sed_prefix``."""
    ra, dec = random_positions(rng, n)
    is_galaxy = rng.random(n) < galaxy_fraction
    mag = np.where(is_galaxy, faint_weighted_magnitudes(rng, n, 18.0, 28.0),
                   faint_weighted_magnitudes(rng, n, 14.0, 28.0))
    z = rng.uniform(0.05, 3.0, n)
    gamma = rng.normal(0.0, 0.005, (n, 2))
    kappa = rng.normal(0.015, 0.003, n)
    major = rng.lognormal(-1.2, 0.6, n)
    minor = major * rng.uniform(0.3, 1.0, n)
    angle = rng.uniform(0.0, 360.0, n)
    av_rest = rng.uniform(0.0, 1.0, n)
    rv_rest = rng.uniform(2.1, 3.1, n)
    av_mw = rng.uniform(0.02, 0.03, n)
    sed = rng.integers(0, 3, n)
    # Python floats (not numpy scalars) so that !r writes plain shortest round-trip digits.
    ra, dec, mag, z, kappa = ra.tolist(), dec.tolist(), mag.tolist(), z.tolist(), kappa.tolist()
    gamma, major, minor, angle = gamma.tolist(), major.tolist(), minor.tolist(), angle.tolist()
    av_rest, rv_rest, av_mw = av_rest.tolist(), rv_rest.tolist(), av_mw.tolist()
    is_galaxy, sed = is_galaxy.tolist(), sed.tolist()
    lines = []
    for i in range(n):
        if is_galaxy[i]:
            lines.append(
                f"object {first_id + i} {ra[i]!r} {dec[i]!r} {mag[i]:.7g} "
                f"{sed_prefix}{GALAXY_SEDS[sed[i]]} "
                f"{z[i]:.9g} {gamma[i][0]:.9g} {gamma[i][1]:.9g} {kappa[i]:.9g} 0 0 sersic2d "
                f"{major[i]:.9g} {minor[i]:.9g} {angle[i]:.9g} 1 CCM {av_rest[i]:.9g} "
                f"{rv_rest[i]:.9g} CCM {av_mw[i]:.9g} 3.1\n")
        else:
            lines.append(
                f"object {first_id + i} {ra[i]!r} {dec[i]!r} {mag[i]:.7g} "
                f"{sed_prefix}{STAR_SEDS[sed[i]]} 0 0 0 0 0 0 point none CCM {av_mw[i]:.9g} 3.1\n")
    return lines


def write_catalog(n_objects: int, out: Path, seed: int = 20240230) -> None:
    """Write the header and ``n_objects`` objects to ``out`` (gzip when it ends in .gz)."""
    rng = np.random.default_rng(seed)
    with _open(out, level=6) as f:
        f.write(HEADER)
        n_bright = min(N_BRIGHT_STARS, n_objects)
        _write_bright_stars(f, rng, n_bright)
        for start in range(n_bright, n_objects, LINES_PER_BLOCK):
            f.writelines(object_lines(rng, start, min(LINES_PER_BLOCK, n_objects - start)))


def write_points_catalog(n_objects: int, out: Path, seed: int = 20240231) -> list[Path]:
    """Write the ``points`` mix: ``out`` holds the header and includes two object files.

    Returns the files written, ``out`` first.
    """
    rng = np.random.default_rng(seed)
    n_bright = min(N_BRIGHT_STARS, n_objects)
    n_stars = round(POINTS_STAR_FRACTION * n_objects)
    parts = {"star_cat.txt.gz": (0.0, n_bright, n_stars),
             "gal_cat.txt.gz": (1.0, n_stars, n_objects)}
    with _open(out, level=6) as f:
        f.write(HEADER)
        f.writelines(f"includeobj {name}\n" for name in parts)
    for name, (galaxy_fraction, first, stop) in parts.items():
        with _open(out.parent / name, level=1) as f:
            if galaxy_fraction == 0.0:
                _write_bright_stars(f, rng, n_bright, SED_LIBRARY)
            for start in range(first, stop, LINES_PER_BLOCK):
                f.writelines(object_lines(rng, start, min(LINES_PER_BLOCK, stop - start),
                                          galaxy_fraction, SED_LIBRARY))
    return [out, *(out.parent / name for name in parts)]


def _open(path: Path, level: int):
    return gzip.open(path, "wt", compresslevel=level) if path.suffix == ".gz" else open(path, "w")


def _write_bright_stars(f, rng: np.random.Generator, n: int, sed_prefix: str = "") -> None:
    ra, dec = (a.tolist() for a in random_positions(rng, n))
    for i, m in enumerate(rng.uniform(6.0, 10.0, n).tolist()):
        f.write(f"object {i} {ra[i]!r} {dec[i]!r} {m:.7g} {sed_prefix}{STAR_SEDS[0]} "
                "0 0 0 0 0 0 point none CCM 0.025 3.1\n")


MIXES = {"dc2": write_catalog, "points": write_points_catalog}


def main(argv: list[str] | None = None) -> int:
    """Command line entry point: ``make_catalog.py N OUT [MIX]``."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) not in (2, 3) or (len(args) == 3 and args[2] not in MIXES):
        print(__doc__.strip().splitlines()[2], file=sys.stderr)
        return 2
    out = Path(args[1])
    out.parent.mkdir(parents=True, exist_ok=True)
    MIXES[args[2] if len(args) == 3 else "dc2"](int(args[0]), out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
