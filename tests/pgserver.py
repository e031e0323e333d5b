"""A throwaway PostgreSQL server for tests: initdb + pg_ctl in a temporary folder, 127.0.0.1 only.

Debian's package (``apt-get install postgresql``; ``.ci/run`` installs it) puts the programs in
``/usr/lib/postgresql/<major>/bin``. PostgreSQL refuses to run as root, so as root the cluster
is created and started as the ``postgres`` user (``runuser``). When no server can be started the
caller skips with the reason returned.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if found:
        return Path(found[-1]).parent
    pg_ctl = shutil.which("pg_ctl")
    return Path(pg_ctl).resolve().parent if pg_ctl else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def postgres_server() -> Iterator[tuple[str | None, str]]:
    """Yield (SQLAlchemy URL of the ``postgres`` database, "") or (None, why it cannot start)."""
    bindir = _bindir()
    if bindir is None:
        yield None, "PostgreSQL is not installed (apt-get install postgresql)"
        return
    try:
        import psycopg  # noqa: F401
    except ImportError:
        yield None, "psycopg is not installed (pip install 'psycopg[binary]')"
        return
    folder = Path(tempfile.mkdtemp(prefix="cputime-pg-"))
    data = folder / "data"
    prefix: list[str] = []
    if os.geteuid() == 0:
        runuser = shutil.which("runuser")
        try:
            import pwd

            pwd.getpwnam("postgres")
        except KeyError:
            runuser = None
        if runuser is None:
            shutil.rmtree(folder, ignore_errors=True)
            yield None, "running as root without a 'postgres' user to run PostgreSQL as"
            return
        shutil.chown(folder, "postgres", "postgres")
        prefix = [runuser, "-u", "postgres", "--"]
    port = _free_port()
    options = (f"-c listen_addresses=127.0.0.1 -p {port} -k {folder} -c fsync=off "
               "-c synchronous_commit=off -c full_page_writes=off -c max_connections=50")
    started = False
    try:
        init = subprocess.run(
            [*prefix, str(bindir / "initdb"), "-D", str(data), "-U", "postgres",
             "--auth=trust", "-E", "UTF8", "--no-sync"],
            capture_output=True, text=True, timeout=120,
        )
        if init.returncode != 0:
            yield None, f"initdb failed: {init.stderr.strip().splitlines()[-1:]}"
            return
        start = subprocess.run(
            [*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-l", str(folder / "log"),
             "-o", options, "-w", "-t", "60", "start"],
            capture_output=True, text=True, timeout=90,
        )
        if start.returncode != 0:
            yield None, f"pg_ctl start failed: {start.stderr.strip().splitlines()[-1:]}"
            return
        started = True
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", ""
    finally:
        if started:
            subprocess.run([*prefix, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                            "stop"], capture_output=True, timeout=60)
        shutil.rmtree(folder, ignore_errors=True)


def create_database(url: str, name: str) -> str:
    """Create database ``name`` on the server of ``url``; return its URL."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    engine.dispose()
    return url.rsplit("/", 1)[0] + f"/{name}"
