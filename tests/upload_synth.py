"""A catalog upload as large as the service accepts, for the hostile-input tests and
``benchmarks/bench_service_fair.py``."""

from __future__ import annotations

import zlib
from pathlib import Path

#: The base catalog of the measured PhoSim runs (header and 50 stars).
BASE_CATALOG = Path(__file__).parent / "data" / "phosim_runs" / "base" / "catalog.txt"


def big_catalog_gzip() -> bytes:
    """250 MB of object lines after the base catalog (under the default 256 MB limit), as a
    0.9 MB gzip."""
    line = b"object 1 53.01 -27.44 17.8 flatlambda.txt 0 0 0 0 0 0 point none none\n"
    packer = zlib.compressobj(6, zlib.DEFLATED, 31)
    block = line * (1 << 16)
    parts = [packer.compress(BASE_CATALOG.read_bytes())]
    parts += [packer.compress(block) for _ in range((250 << 20) // len(block))]
    return b"".join(parts) + packer.flush()
