"""Host speed factors: CPU seconds on a host to seconds on the reference host.

A host-factors file is a CSV with columns ``host,factor``; ``host`` is a glob pattern
(``hequ*``) matched against the host name a log reports, first match wins, and ``factor`` is the
reference host's CPU seconds per second of that host (the Twinkles convention: the reference is
the slowest host class, so factors are at least 1 there).
"""

from __future__ import annotations

import csv
import fnmatch
from dataclasses import dataclass
from pathlib import Path

from cputime.errors import InputError, located

__all__ = ["HostFactors", "read_host_factors"]


@dataclass(frozen=True)
class HostFactors:
    """Ordered ``(pattern, factor)`` rules; see the module docstring."""

    rules: tuple[tuple[str, float], ...]
    source: str = "<host factors>"

    def factor(self, host: object) -> float:
        """Reference seconds per second on ``host`` [unitless].

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


def read_host_factors(path: str | Path) -> HostFactors:
    """Read a host-factors CSV (``host,factor``, glob patterns, first match wins)."""
    path = Path(path)
    if not path.exists():
        raise InputError(f"{path}: no such file")
    rules: list[tuple[str, float]] = []
    with path.open(newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:2]] != ["host", "factor"]:
            raise located(str(path), 1, "the header must be 'host,factor'")
        for line, row in enumerate(reader, start=2):
            if not row or not "".join(row).strip() or row[0].startswith("#"):
                continue
            if len(row) < 2:
                raise located(str(path), line, "expected 'host,factor'")
            try:
                value = float(row[1])
            except ValueError:
                raise located(str(path), line, f"factor: {row[1]!r} is not a number") from None
            if not value > 0:
                raise located(str(path), line, f"factor: {row[1]!r} must be positive")
            rules.append((row[0].strip(), value))
    if not rules:
        raise InputError(f"{path}: no host rows")
    return HostFactors(tuple(rules), str(path))
