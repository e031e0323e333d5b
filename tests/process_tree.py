"""A server's processes read from /proc (Linux): its descendants and their peak memory, for the
service tests and ``benchmarks/bench_service_fair.py``."""

from __future__ import annotations

from pathlib import Path


def process_tree(pid: int) -> list[int]:
    """``pid`` and the ids of its descendants alive now."""
    children = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children += (task / "children").read_text().split()
    return [pid] + [p for child in children for p in process_tree(int(child))]


def peak_rss(pid: int) -> int:
    """Peak resident memory of a process and its descendants so far [bytes]: the sum of their
    VmHWM, an upper bound of their peak together."""
    total = 0
    for each in process_tree(pid):
        status = Path(f"/proc/{each}/status").read_text()
        total += int(status.split("VmHWM:")[1].split()[0]) * 1024
    return total
