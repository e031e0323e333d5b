"""Host slowdowns: how much slower than the reference host each host runs PhoSim.

``host_slowdown`` is a host's CPU seconds per CPU second of the reference host [unitless]: 2.0
means the host needs twice the CPU the reference host needs; a job's reference-host CPU is its
CPU divided by its host's slowdown. The same number, with the same name, sets walltimes for a
host (:func:`cputime.planning.policy.walltime_seconds`) and is the ``slowdown`` column of the
measured PhoSim runs.

A host-slowdowns file is a CSV with columns ``host,host_slowdown``; ``host`` is a glob pattern
(``hequ*``) matched against the host name a log reports, first match wins. Files in the older
convention are read too: a ``host,factor`` (or ``host,host_factor``) header gives each host's
*reference* seconds per second of that host (the Twinkles convention, where the reference is the
slowest class, so factors are at least 1), which is inverted on reading
(``cputime/data/twinkles_host_factors.csv`` is such a file: factor 1.71 is slowdown 1/1.71).
"""

from __future__ import annotations

import csv
import fnmatch
from dataclasses import dataclass
from pathlib import Path

from cputime.errors import InputError, located

__all__ = ["HostSlowdowns", "read_host_slowdowns"]

#: Value column of a host-slowdowns file -> True when it holds the inverse (reference seconds
#: per host second, the older convention).
VALUE_COLUMNS = {"host_slowdown": False, "factor": True, "host_factor": True}


@dataclass(frozen=True)
class HostSlowdowns:
    """Ordered ``(pattern, host_slowdown)`` rules; see the module docstring."""

    rules: tuple[tuple[str, float], ...]
    source: str = "<host slowdowns>"

    def slowdown(self, host: object) -> float:
        """Host CPU seconds per reference-host CPU second on ``host`` [unitless].

        Raises
        ------
        InputError
            When no pattern matches (add a ``*`` row to give a default).
        """
        name = str(host).strip()
        for pattern, value in self.rules:
            if fnmatch.fnmatchcase(name, pattern):
                return value
        raise InputError(
            f"{self.source}: no host pattern matches host {name!r} (add a row for it, "
            "or a last row '*,1.0' for a default)"
        )


def read_host_slowdowns(path: str | Path) -> HostSlowdowns:
    """Read a host-slowdowns CSV (``host,host_slowdown``, or the inverse ``host,factor``; glob
    patterns, first match wins)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    rules: list[tuple[str, float]] = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = [h.strip().lower() for h in next(reader, [])[:2]]
        if len(header) != 2 or header[0] != "host" or header[1] not in VALUE_COLUMNS:
            raise located(str(path), 1, "the header must be 'host,host_slowdown' (or the "
                          "inverse 'host,factor': reference seconds per host second)")
        column = header[1]
        inverse = VALUE_COLUMNS[column]
        for line, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip() or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise located(str(path), line, f"expected 'host,{column}'")
            try:
                value = float(row[1])
            except ValueError:
                raise located(str(path), line, f"{column}: {row[1]!r} is not a number") from None
            if not 0 < value < float("inf"):
                raise located(
                    str(path), line, f"{column}: {row[1]!r} must be positive and finite"
                )
            rules.append((row[0].strip(), 1.0 / value if inverse else value))
    if not rules:
        raise InputError(f"{path}: no host rows")
    return HostSlowdowns(tuple(rules), str(path))
