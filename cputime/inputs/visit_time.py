"""How a PhoSim visit's time splits into snaps, readouts and open shutter.

A visit of ``nsnap`` snaps lasts ``vistime``: the snaps' exposures plus one readout between two
snaps. PhoSim splits it as ``exptime = (vistime - (nsnap - 1) * readout) / nsnap``
(``atmospheresetup.cpp``), with the LSST readout of ``focalplanelayout.txt``. The catalog reader
(a header giving only ``exptime``), the OpSim reader (visit times from exposure times) and the
photon counts (open-shutter time) all use these two functions, so the readout is written once.
"""

from __future__ import annotations

import numpy as np

__all__ = ["READOUT_SECONDS", "open_shutter_seconds", "vistime_seconds"]

#: Dead time between two snaps of one visit [s]: 2 s readout plus 1 s of shutter motion, so a
#: ``vistime 33`` visit of ``nsnap 2`` has two 15 s exposures.
READOUT_SECONDS = 3.0


def open_shutter_seconds(vistime: np.ndarray | float, nsnap: np.ndarray | int) -> np.ndarray:
    """Total open-shutter time of a visit.

    Parameters
    ----------
    vistime : array_like
        Visit time as written in the catalog header [s].
    nsnap : array_like
        Number of snaps [unitless].

    Returns
    -------
    numpy.ndarray
        Sum of the snaps' exposure times [s]: ``vistime - 3 s * (nsnap - 1)``, never negative.
    """
    vistime = np.asarray(vistime, dtype=float)
    nsnap = np.asarray(nsnap, dtype=float)
    return np.maximum(vistime - READOUT_SECONDS * (nsnap - 1.0), 0.0)


def vistime_seconds(open_shutter_s: np.ndarray | float, nsnap: np.ndarray | int) -> np.ndarray:
    """Visit time of ``nsnap`` snaps exposed for ``open_shutter_s`` in total.

    The inverse of :func:`open_shutter_seconds`: a header's per-snap ``exptime`` gives
    ``vistime_seconds(nsnap * exptime, nsnap)``.

    Parameters
    ----------
    open_shutter_s : array_like
        Sum of the snaps' exposure times [s].
    nsnap : array_like
        Number of snaps [unitless].

    Returns
    -------
    numpy.ndarray
        Visit time [s]: ``open_shutter_s + 3 s * (nsnap - 1)``.
    """
    open_shutter_s = np.asarray(open_shutter_s, dtype=float)
    nsnap = np.asarray(nsnap, dtype=float)
    return open_shutter_s + READOUT_SECONDS * (nsnap - 1.0)
