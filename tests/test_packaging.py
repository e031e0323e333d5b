"""A wheel built from the repository carries the shipped model and tables, and an installed
(not editable) cputime predicts from any folder."""

from __future__ import annotations

import hashlib
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import venv
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from cputime.shipped import SHIPPED, shipped_path

ROOT = Path(__file__).resolve().parents[1]
CATALOG = ROOT / "examples" / "catalogs" / "visit230_first200.txt"

#: Files the wheel must hold as real contents, and the repository files they come from.
SHIPPED_FILES = {
    "cputime/data/default_model/booster.json": ROOT / "models" / "default" / "booster.json",
    "cputime/data/default_model/metadata.json": ROOT / "models" / "default" / "metadata.json",
    "cputime/data/phosim_runs.csv": ROOT / "features" / "phosim_runs.csv",
    "cputime/data/twinkles_run1.csv": ROOT / "features" / "twinkles_run1.csv",
}


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_shipped_paths_are_the_repository_files():
    """In a checkout the package's data are links to models/default and features/."""
    for name in SHIPPED:
        assert shipped_path(name).exists(), name
    for member, original in SHIPPED_FILES.items():
        assert (ROOT / member).resolve() == original.resolve(), member


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel built from a copy of the repository's package files (symlinks kept as links)."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    ignore = shutil.ignore_patterns("__pycache__", "evaluation", "*.egg-info")
    for folder in ("cputime", "models", "features"):
        shutil.copytree(ROOT / folder, source / folder, symlinks=True, ignore=ignore)
    assert (source / "cputime" / "data" / "phosim_runs.csv").is_symlink()
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-build-isolation", "--no-deps", "-q",
         "-w", str(out), str(source)],
        check=True,
    )  # fmt: skip
    (path,) = out.glob("cputime-*.whl")
    return path


def test_wheel_holds_the_real_files(wheel):
    with zipfile.ZipFile(wheel) as archive:
        for member, original in SHIPPED_FILES.items():
            assert _sha(archive.read(member)) == _sha(original.read_bytes()), member


def test_installed_wheel_predicts_from_any_folder(wheel, tmp_path):
    env_dir = tmp_path / "venv"
    # System site packages provide the dependencies (no download); cputime itself must be the
    # wheel's copy, which sits before them on sys.path.
    venv.create(env_dir, system_site_packages=True, with_pip=True)
    python = env_dir / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--ignore-installed",
         str(wheel)],
        check=True,
    )  # fmt: skip
    work = tmp_path / "elsewhere"
    work.mkdir()
    environment = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH",
                                                                    "CPUTIME_DEFAULT_MODEL")}
    where = subprocess.run(
        [python, "-c", "import cputime; print(cputime.__file__)"],
        cwd=work, env=environment, check=True, capture_output=True, text=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).is_relative_to(env_dir), where.stdout
    shutil.copy(CATALOG, work / "visit230.txt")
    result = subprocess.run(
        [env_dir / "bin" / "cputime", "predict", "visit230.txt", "--sensors", "R22_S11",
         "-o", "predictions.csv"],
        cwd=work, env=environment, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "wrote 1 rows to predictions.csv" in result.stderr
    table = pd.read_csv(work / "predictions.csv")
    assert table.loc[0, "cpu_seconds_upper"] >= table.loc[0, "cpu_seconds_p50"] > 0
    assert table.loc[0, "model_version"] != ""

    def run(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([env_dir / "bin" / "cputime", *argv], cwd=work, env=environment,
                              capture_output=True, text=True, timeout=300)  # fmt: skip

    # A campaign from an OpSim export, and training with the shipped catalog runs.
    shutil.copy(ROOT / "tests" / "data" / "opsim_visits_sample.csv", work / "opsim.csv")
    planned = run("plan", "opsim.csv", "--visits", "1637,185880", "--queue-max", "2880",
                  "-o", "plan")  # fmt: skip
    assert planned.returncode == 0, planned.stderr
    assert (work / "plan" / "plan.png").exists()
    pd.read_csv(ROOT / "features" / "twinkles_run1.csv").iloc[:120].to_csv(work / "jobs.csv")
    trained = run("train", "jobs.csv", "--target", "cpu_seconds_ref", "--censored-col",
                  "censored", "--out", "mine")  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    assert (work / "mine" / "booster.json").exists()
    # The service starts from the installed package and answers.
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen([env_dir / "bin" / "cputime", "serve", "--port", str(port)],
                              cwd=work, env=environment, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
                    assert r.status == 200
                    break
            except OSError:
                assert time.monotonic() < deadline and server.poll() is None
                time.sleep(0.3)
    finally:
        server.terminate()
        server.wait(timeout=30)


#: Packages of the extras ([mlflow], [service], [plots], [parsl]), absent from a core install.
EXTRA_PACKAGES = ("mlflow", "sqlalchemy", "alembic", "fastapi", "uvicorn", "starlette",
                  "pydantic", "matplotlib", "parsl")  # fmt: skip

_WITHOUT_EXTRAS = """
import sys
import time
import urllib.request


class NoExtras:
    '''Imports of the extras' packages fail, as in an environment without them.'''

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {extras!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)


sys.meta_path.insert(0, NoExtras())
from cputime.frontends.cli import main

sys.exit(main(sys.argv[1:]))
"""


def _core_only(*argv, cwd: Path) -> subprocess.CompletedProcess:
    code = _WITHOUT_EXTRAS.format(extras=EXTRA_PACKAGES)
    environment = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-c", code, *map(str, argv)], cwd=cwd,
                          env=environment, capture_output=True, text=True)  # fmt: skip


def test_the_core_install_predicts_and_plans_without_extras(tmp_path):
    result = _core_only("predict", CATALOG, "--sensors", "R22_S11", "--queue-max", "2880",
                        "-o", "p.csv", cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert len(pd.read_csv(tmp_path / "p.csv")) == 1
    visits = ROOT / "tests" / "data" / "opsim_visits_sample.csv"
    result = _core_only("features", visits, "--where", "filter = 'r'", "-o", "f.csv",
                        cwd=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    "argv, extra",
    [
        (["monitor", "--runs-db", "sqlite:///runs.db"], "mlflow"),
        (["serve"], "service"),
    ],
)
def test_a_missing_extra_is_one_line_naming_it(argv, extra, tmp_path):
    (tmp_path / "runs.db").touch()
    result = _core_only(*argv, cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.strip().endswith(f"pip install 'cputime[{extra}]'"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
