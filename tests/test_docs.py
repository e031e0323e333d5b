"""Every ``bash`` block of the README and docs/ runs as written, in order, in a scratch folder
holding the files the page names; a block that needs a cluster or a running server is marked
``<!-- docs-test: skip: REASON -->`` on the line before it. Every ``$ command`` of a ``console``
block prints what the page shows after it: ``python tests/test_docs.py`` rewrites those outputs
from what the commands print now (after the shipped model changes, for example)."""

from __future__ import annotations

import gzip
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sacct_synth import host_factors_csv, synthetic_sacct

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
SKIP = re.compile(r"^<!-- docs-test: skip: (?P<reason>.+) -->$")

#: Stand-ins for the user's own programs that the pages pipe into.
PREAMBLE = "set -euo pipefail\nyour-engine-submit() { wc -l >/dev/null; }\n"


def shell_blocks(page: Path) -> list[tuple[int, str, str | None]]:
    """``(line, code, skip reason or None)`` of each bash block of a page."""
    lines = page.read_text().splitlines()
    blocks, start = [], None
    for number, line in enumerate(lines, start=1):
        if start is None and line.strip() == "```bash":
            start = number
        elif start is not None and line.strip() == "```":
            marker = SKIP.match(lines[start - 2]) if start >= 2 else None
            code = "\n".join(lines[start:number - 1]) + "\n"
            blocks.append((start, code, marker["reason"] if marker else None))
            start = None
    return blocks


def console_blocks(page: Path) -> list[tuple[int, int]]:
    """``(first, end)`` 0-based line indexes (end exclusive) of the inside of each console block."""
    lines = page.read_text().splitlines()
    blocks, start = [], None
    for index, line in enumerate(lines):
        if start is None and line.strip() == "```console":
            start = index + 1
        elif start is not None and line.strip() == "```":
            blocks.append((start, index))
            start = None
    return blocks


def _sessions(lines: list[str]) -> list[tuple[str, list[str]]]:
    """``(command, output lines)`` of each ``$ `` line of a console block."""
    sessions: list[tuple[str, list[str]]] = []
    for line in lines:
        if line.startswith("$ "):
            sessions.append((line[2:], []))
        elif sessions:
            sessions[-1][1].append(line)
    return sessions


def _run_console(command: str, folder: Path, env: dict[str, str]) -> list[str]:
    """What a command prints (stdout, then stderr), line by line."""
    result = subprocess.run(["bash", "-c", PREAMBLE + command], cwd=folder, env=env,
                            capture_output=True, text=True, timeout=600)  # fmt: skip
    return [line.rstrip() for line in (result.stdout + result.stderr).splitlines()]


def _workspace(folder: Path) -> dict[str, str]:
    """The files the pages name, made from the examples and test data; returns the env."""
    catalog = ROOT / "examples" / "catalogs" / "visit230_first200.txt"
    shutil.copy(catalog, folder / "visit230_first200.txt")
    zipped = gzip.compress(catalog.read_bytes())
    for name in ("visit230_first200.txt.gz", "visit230.txt.gz", "instcat/phosim_cat_230.txt.gz",
                 "instcat/phosim_cat_231.txt.gz", "catalogs/visit230.txt.gz"):
        (folder / name).parent.mkdir(exist_ok=True)
        (folder / name).write_bytes(zipped)
    (folder / "instcat" / "bad.txt").write_text("obshistid 1\nfilter 2\n")  # no pointing
    (folder / "examples").symlink_to(ROOT / "examples")
    visits = pd.read_csv(ROOT / "cputime" / "data" / "twinkles_run1_train.csv",
                         skipinitialspace=True).head(120)  # fmt: skip
    visits.to_csv(folder / "planned_visits.csv", index=False)
    (folder / "sacct_may.txt").write_text(synthetic_sacct(visits, 480))
    (folder / "hosts.csv").write_text(host_factors_csv())
    for run in ("base", "A_bright07"):
        shutil.copytree(DATA / "phosim_runs" / run, folder / "runs" / run)
    (folder / "logs").mkdir()
    shutil.copy(DATA / "phosim_logs" / "phosim34_tiny_R22_S11.time",
                folder / "logs" / "phosim_230_R22_S11.time")  # fmt: skip
    # `cputime` is this interpreter running this checkout's package.
    (folder / "bin").mkdir()
    shim = folder / "bin" / "cputime"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m cputime "$@"\n')
    shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "CPUTIME_"))}
    env["PATH"] = f"{folder / 'bin'}{os.pathsep}{env['PATH']}"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def test_every_page_has_a_block_or_none_is_lost():
    assert sum(len(shell_blocks(page)) for page in PAGES) >= 20


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_shell_blocks_run(page, tmp_path):
    blocks = shell_blocks(page)
    runnable = [(line, code) for line, code, reason in blocks if reason is None]
    for _, _, reason in blocks:
        assert reason is None or "needs" in reason or "installs" in reason or "starts" in reason
    if not runnable:
        pytest.skip(f"{page.name}: every block needs a cluster, a server or an install")
    env = _workspace(tmp_path)
    for line, code in runnable:
        result = subprocess.run(["bash", "-c", PREAMBLE + code], cwd=tmp_path, env=env,
                                capture_output=True, text=True, timeout=900)  # fmt: skip
        assert result.returncode == 0, (
            f"{page.name}:{line}: exit {result.returncode}\n{code}\n{result.stderr[-3000:]}"
        )


CONSOLE_PAGES = [page for page in PAGES if console_blocks(page)]


@pytest.mark.parametrize("page", CONSOLE_PAGES, ids=lambda p: p.name)
def test_console_blocks_show_what_the_commands_print(page, tmp_path):
    env = _workspace(tmp_path)
    lines = page.read_text().splitlines()
    for first, end in console_blocks(page):
        for command, shown in _sessions(lines[first:end]):
            printed = _run_console(command, tmp_path, env)
            assert printed == shown, (
                f"{page.name}:{first}: `{command}` now prints\n" + "\n".join(printed)
                + "\n(python tests/test_docs.py rewrites the page's console outputs)"
            )


def update_console_outputs(page: Path, folder: Path) -> None:
    """Rewrite the outputs of a page's console blocks with what the commands print."""
    env = _workspace(folder)
    lines = page.read_text().splitlines()
    for first, end in reversed(console_blocks(page)):
        block = []
        for command, _ in _sessions(lines[first:end]):
            block += [f"$ {command}", *_run_console(command, folder, env)]
        lines[first:end] = block
    page.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    import tempfile

    for page in CONSOLE_PAGES:
        with tempfile.TemporaryDirectory() as scratch:
            update_console_outputs(page, Path(scratch))
        print(f"updated {page.relative_to(ROOT)}")


#: Numbers the pages quote from benchmark results: (page, pattern with one group per number,
#: results file, JSON paths of those numbers).
QUOTED = [
    ("feature-extraction-on-a-cluster.md",
     r"took ([\d.]+) s of wall time and ([\d,]+) MB peak memory .*?about ([\d.]+) times",
     "catalog.json",
     [f"catalogs.dc2.{key}" for key in (
         "features_189_sensors_wall_s", "features_peak_rss_mb", "features_over_zcat")]),
    ("feature-extraction-on-a-cluster.md", r"\(([\d,]+) MB\s+compressed\)", "catalog.json",
     ["catalogs.dc2.compressed_mb"]),
    ("service.md", r"p99 latency \| ([\d.]+) / ([\d.]+) / ([\d.]+) ms "
     r"\| ([\d.]+) / ([\d.]+) / ([\d.]+) ms",
     "service.json",
     [f"{server}.single_visit.latency_ms.{q}" for server in ("cputime", "mlflow")
      for q in ("p50", "p90", "p99")]),
    ("service.md", r"new connection per request: p50 / p90 / p99 latency \| ([\d.]+) / ([\d.]+) / "
     r"([\d.]+) ms \| ([\d.]+) / ([\d.]+) / ([\d.]+) ms", "service.json",
     [f"{server}.single_visit_new_connections.latency_ms.{q}" for server in ("cputime", "mlflow")
      for q in ("p50", "p90", "p99")]),
    ("service.md", r"while a ([\d,]+)-row request runs for ([\d.]+) s: single-visit p50 / p99 "
     r"([\d.]+) / ([\d.]+) ms against ([\d.]+) / ([\d.]+) ms quiet, ([\d.]+)× at p99",
     "service_fair.json",
     ["big_request.rows", "big_request.seconds", "single_visit_under_big_request.p50_ms",
      "single_visit_under_big_request.p99_ms", "single_visit_quiet.p50_ms",
      "single_visit_quiet.p99_ms", "p99_ratio_loaded_to_quiet"]),
    ("service.md", r"With the bulk lane in the server's thread, same run: ([\d.]+)× .*?"
     r"A 10,000-visit request alone: ([\d.]+) s through the child against ([\d.]+) s in the thread",
     "service_fair.json",
     ["bulk_lane_in_thread.p99_ratio_loaded_to_quiet", "batch_10000_visits_seconds_median_of_7",
      "bulk_lane_in_thread.batch_10000_visits_seconds_median_of_7"]),
    ("service.md", r"one visit costs ([\d.]+) ms of CPU at the default level and ([\d.]+) ms "
     r"with a 1 h queue limit .*?10,000 visits ([\d.]+) s", "predict.json",
     ["after.one_visit.default_level.predict_visits.cpu_ms_median",
      "after.one_visit.queue_1h.predict_visits.cpu_ms_median",
      "after.table.default_level.predict_visits.cpu_s"]),
    ("service.md", r"throughput \| ([\d.]+) requests/s \| ([\d.]+) requests/s", "service.json",
     ["cputime.single_visit.requests_per_second", "mlflow.single_visit.requests_per_second"]),
    ("service.md", r"batch: latency \(median of 5\) \| ([\d.]+) s \| ([\d.]+) s", "service.json",
     ["cputime.batch.latency_s.p50", "mlflow.batch.latency_s.p50"]),
    ("service.md", r"batch: throughput \| ([\d,]+) visits/s \| ([\d,]+) visits/s", "service.json",
     ["cputime.batch.visits_per_second", "mlflow.batch.visits_per_second"]),
]  # fmt: skip


def _value(document: dict, path: str) -> float:
    for key in path.split("."):
        document = document[key]
    return float(document)


@pytest.mark.parametrize("page, pattern, results, paths", QUOTED, ids=lambda v: str(v)[:24])
def test_quoted_benchmark_numbers_are_the_results_files(page, pattern, results, paths):
    import json

    text = " ".join((ROOT / "docs" / page).read_text().split())
    match = re.search(pattern, text, flags=re.S)
    assert match, f"{page}: no match for {pattern}"
    measured = json.loads((ROOT / "benchmarks" / "results" / results).read_text())
    for quoted, path in zip(match.groups(), paths, strict=True):
        value = _value(measured, path)
        # quoted as rounded: to 2 significant digits at least
        assert float(quoted.replace(",", "")) == pytest.approx(value, rel=0.01, abs=0.05), (
            f"{page} quotes {quoted} for {results}:{path} = {value}"
        )
