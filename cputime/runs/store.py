"""The runs store: one table of PhoSim job attempts, on any SQLAlchemy database.

Every attempt has a stable key (:func:`attempt_key`: a SHA-256 of where it came from, e.g. the
source kind, Slurm job id and start time, or the content of a PhoSim run's logs) with a UNIQUE
constraint, and rows are inserted with ``INSERT ... ON CONFLICT DO NOTHING``: ingesting the same
log twice stores each attempt once. :meth:`RunsStore.add` writes all the attempts it is given in
one transaction, so a failure half-way leaves the store as it was.

Outcomes (:data:`OUTCOMES`): ``finished`` (a measurement), ``censored`` (killed at its time limit:
the true CPU is at least ``cpu_seconds``), ``failed`` (FAILED, CANCELLED, OUT_OF_MEMORY, NODE_FAIL
...: recorded, never a training example). Times are UTC, stored without a zone.

``cpu_seconds`` is the raw CPU (user + system) on the job's host; ``cpu_seconds_ref`` is that
divided by ``host_slowdown`` (host CPU seconds per reference-host CPU second, see
:mod:`cputime.runs.hosts`). ``features`` is the JSON object of
:data:`cputime.physics.features.FEATURE_COLUMNS` for the run, computed by the features code of
version ``feature_code_version``; ``details`` holds what a log says beyond the columns (PhoSim's
raytrace table, steps, commands overrides, ...).

A store written by an older cputime has a ``host_factor`` column instead of ``host_slowdown``:
reference-host seconds per host second, the inverse. Opening it renames the column and inverts
its values, in one transaction, keeping every row.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine

from cputime.errors import InputError

__all__ = [
    "DEFAULT_RUNS_URI",
    "OUTCOMES",
    "TRAINING_OUTCOMES",
    "RunAttempt",
    "RunsStore",
    "attempt_key",
    "features_json",
    "features_frame",
    "redacted_uri",
]

#: Default runs store: a SQLite file in the current folder.
DEFAULT_RUNS_URI = "sqlite:///runs.db"

OUTCOMES = ("finished", "censored", "failed")
TRAINING_OUTCOMES = ("finished", "censored")

_metadata = sa.MetaData()

RUNS_TABLE = sa.Table(
    "runs",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("attempt_key", sa.String(64), nullable=False, unique=True),
    sa.Column("obshistid", sa.BigInteger, nullable=True, index=True),
    sa.Column("sensor", sa.String(16), nullable=True),
    sa.Column("job_id", sa.String(64), nullable=True),
    sa.Column("job_name", sa.String(256), nullable=True),
    sa.Column("state", sa.String(64), nullable=False),
    sa.Column("outcome", sa.String(16), nullable=False),
    sa.Column("cpu_seconds", sa.Float, nullable=True),
    sa.Column("host", sa.String(256), nullable=True),
    sa.Column("host_slowdown", sa.Float, nullable=True),
    sa.Column("cpu_seconds_ref", sa.Float, nullable=True),
    sa.Column("wall_seconds", sa.Float, nullable=True),
    sa.Column("threads", sa.Integer, nullable=True),
    sa.Column("max_rss_kb", sa.Float, nullable=True),
    sa.Column("exit_code", sa.String(32), nullable=True),
    sa.Column("started", sa.DateTime, nullable=True),
    sa.Column("ended", sa.DateTime, nullable=True, index=True),
    sa.Column("source_file", sa.String(1024), nullable=False),
    sa.Column("source_line", sa.Integer, nullable=True),
    sa.Column("source_format", sa.String(16), nullable=False),
    sa.Column("feature_code_version", sa.String(32), nullable=True),
    sa.Column("features", sa.Text, nullable=True),
    sa.Column("details", sa.Text, nullable=True),
    sa.Column("ingested_at", sa.DateTime, nullable=False),
    sa.CheckConstraint(f"outcome IN {OUTCOMES!r}", name="runs_outcome"),
)

#: Rows per INSERT statement (all inside one transaction).
_CHUNK = 5000


def attempt_key(*parts: object) -> str:
    """Stable key of one job attempt: SHA-256 (hex) of its identifying parts.

    Parameters
    ----------
    *parts : object
        E.g. ``("sacct", "1234_5", "2024-05-01T10:00:00")``; ``bytes`` are hashed as they are,
        anything else as its ``str``.
    """
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else str(part).encode())
        digest.update(b"\x1f")
    return digest.hexdigest()


@dataclass
class RunAttempt:
    """One job attempt, as stored (see the module docstring for the columns)."""

    attempt_key: str
    source_format: str
    source_file: str
    state: str
    outcome: str
    source_line: int | None = None
    obshistid: int | None = None
    sensor: str | None = None
    job_id: str | None = None
    job_name: str | None = None
    cpu_seconds: float | None = None
    host: str | None = None
    host_slowdown: float | None = None
    cpu_seconds_ref: float | None = None
    wall_seconds: float | None = None
    threads: int | None = None
    max_rss_kb: float | None = None
    exit_code: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    feature_code_version: str | None = None
    features: str | None = None
    details: str | None = None

    @property
    def is_training_example(self) -> bool:
        """Finished or censored, with features and a reference CPU time."""
        return (
            self.outcome in TRAINING_OUTCOMES
            and self.features is not None
            and self.cpu_seconds_ref is not None
        )


_COLUMNS = [f.name for f in fields(RunAttempt)]


def _json_value(value):
    """A value JSON can carry: NaN -> null (inf is kept, Python's json reads it back)."""
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def features_json(features: dict) -> str:
    """JSON text of one run's features (NaN stored as null)."""
    return json.dumps({k: _json_value(v) for k, v in features.items()}, sort_keys=True)


def features_frame(texts: Iterable[str | None]) -> pd.DataFrame:
    """Expand stored ``features`` JSON texts into a table (nulls back to NaN)."""
    records = [json.loads(t) if t else {} for t in texts]
    return pd.DataFrame.from_records(records).apply(pd.to_numeric, errors="coerce")


class RunsStore:
    """The runs table on one database.

    Parameters
    ----------
    uri : str
        SQLAlchemy URL (``sqlite:///runs.db``, ``postgresql://...``). The table is created when
        missing.
    """

    def __init__(self, uri: str = DEFAULT_RUNS_URI):
        self.uri = uri
        self.engine = _engine(uri)
        try:
            _create_tables(self.engine)
            _migrate_host_factor(self.engine)
        except sa.exc.DBAPIError as exc:  # not a database, no server, no permission...
            reason = str(exc.orig).strip().splitlines()[0] if exc.orig else type(exc).__name__
            raise InputError(
                f"uri: {redacted_uri(uri)}: cannot open the runs store ({reason})"
            ) from None

    def add(self, attempts: Iterable[RunAttempt]) -> int:
        """Store attempts not yet stored, all in one transaction.

        Parameters
        ----------
        attempts : iterable of RunAttempt
            May be a generator; if it raises, nothing of this call is stored.

        Returns
        -------
        int
            Attempts newly stored (the rest were already there).
        """
        now = datetime.now(UTC).replace(tzinfo=None)
        rows = [{**asdict(a), "ingested_at": now} for a in attempts]

        def transaction() -> int:
            with self.engine.begin() as conn:
                return sum(_insert_new(conn, chunk) for chunk in _chunks(rows, _CHUNK))

        return _with_retries(transaction)

    def count(self) -> int:
        """Number of stored attempts."""
        with self.engine.connect() as conn:
            return self._count(conn)

    @staticmethod
    def _count(conn: Connection) -> int:
        return conn.execute(sa.select(sa.func.count()).select_from(RUNS_TABLE)).scalar_one()

    def table(
        self,
        *,
        outcomes: Iterable[str] | None = None,
        ended_since: datetime | None = None,
    ) -> pd.DataFrame:
        """Stored attempts as a table, oldest first (by end time, then ingestion).

        Parameters
        ----------
        outcomes : iterable of str, optional
            Keep only these outcomes.
        ended_since : datetime, optional
            Keep only attempts that ended at or after this UTC time.

        Returns
        -------
        pandas.DataFrame
            One row per attempt, the columns of the runs table (``features`` and ``details``
            as JSON text).
        """
        query = sa.select(RUNS_TABLE)
        if outcomes is not None:
            query = query.where(RUNS_TABLE.c.outcome.in_(list(outcomes)))
        if ended_since is not None:
            query = query.where(RUNS_TABLE.c.ended >= ended_since)
        # Oldest first by start time: ordering by end would put the longest jobs of a batch
        # last, so a "most recent" hold-out would be biased towards long jobs.
        when = sa.func.coalesce(RUNS_TABLE.c.started, RUNS_TABLE.c.ended)
        query = query.order_by(when.is_(None), when, RUNS_TABLE.c.ingested_at, RUNS_TABLE.c.id)
        with self.engine.connect() as conn:
            result = conn.execute(query)
            frame = pd.DataFrame(result.fetchall(), columns=list(result.keys()))
        for column in ("started", "ended", "ingested_at"):
            frame[column] = pd.to_datetime(frame[column])
        return frame

    def training_table(
        self, feature_code_version: str, *, ended_since: datetime | None = None
    ) -> tuple[pd.DataFrame, dict]:
        """Training examples: finished or censored attempts with current features.

        Parameters
        ----------
        feature_code_version : str
            Only features computed by this version of the features code are used.
        ended_since : datetime, optional
            Only attempts that ended at or after this UTC time.

        Returns
        -------
        table : pandas.DataFrame
            ``obshistid``, ``sensor``, the stored feature columns, ``cpu_seconds_ref`` [s on the
            reference host], ``censored``, ``ended``, ``id``; oldest first (by start time).
        counts : dict
            ``stored``, ``training``, ``without_features``, ``stale_features`` (another feature
            code version), ``not_training`` (failed).
        """
        runs = self.table(ended_since=ended_since)
        trainable = runs["outcome"].isin(TRAINING_OUTCOMES) & runs["cpu_seconds_ref"].notna()
        has_features = runs["features"].notna()
        current = runs["feature_code_version"] == feature_code_version
        use = trainable & has_features & current
        counts = {
            "stored": int(len(runs)),
            "training": int(use.sum()),
            "without_features": int((trainable & ~has_features).sum()),
            "stale_features": int((trainable & has_features & ~current).sum()),
            "not_training": int((~trainable).sum()),
        }
        chosen = runs[use].reset_index(drop=True)
        features = features_frame(chosen["features"])
        table = pd.concat(
            [
                chosen[["obshistid", "sensor"]],
                features.drop(columns=["obshistid", "sensor"], errors="ignore"),
            ],
            axis=1,
        )
        table["cpu_seconds_ref"] = chosen["cpu_seconds_ref"].astype(float)
        table["censored"] = (chosen["outcome"] == "censored").to_numpy()
        table["ended"] = chosen["ended"]
        table["id"] = chosen["id"]
        return table, counts


#: How long a SQLite writer waits for another one to finish [s] (SQLite has one writer at a
#: time; the others wait instead of failing with "database is locked").
SQLITE_BUSY_SECONDS = 120.0
#: Times a transaction that lost a lock or serialization race is run again.
_RETRIES = 5


def redacted_uri(uri: str) -> str:
    """The URL without its password, for messages."""
    try:
        return sa.engine.make_url(uri).render_as_string(hide_password=True)
    except sa.exc.ArgumentError:
        return uri


def _engine(uri: str) -> Engine:
    try:
        url = sa.engine.make_url(uri)
        if url.get_backend_name() != "sqlite":
            return sa.create_engine(uri, pool_pre_ping=True)
        engine = sa.create_engine(uri, connect_args={"timeout": SQLITE_BUSY_SECONDS})
    except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
        raise InputError(
            f"uri: {uri!r} is not a database URL (use e.g. sqlite:///runs.db): {exc}"
        ) from None

    # SQLite: every transaction takes the write lock when it begins (BEGIN IMMEDIATE), so two
    # writers queue on the busy timeout; a transaction that reads first and then writes would
    # instead fail at once with "database is locked" when another one does the same.
    @sa.event.listens_for(engine, "connect")
    def _driver_leaves_transactions_to_us(dbapi_connection, _record):
        dbapi_connection.isolation_level = None

    @sa.event.listens_for(engine, "begin")
    def _begin_immediate(connection):
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


def _create_tables(engine: Engine) -> None:
    """Create the runs table if missing. Two processes opening a new store at once may both
    try: the loser's CREATE fails, and its second look finds the table."""
    for attempt in range(3):
        try:
            return _with_retries(lambda: _metadata.create_all(engine))
        except (sa.exc.IntegrityError, sa.exc.ProgrammingError):
            if attempt == 2:
                raise
            time.sleep(0.2)


def _migrate_host_factor(engine: Engine) -> None:
    """Rename an older store's ``host_factor`` column (reference seconds per host second) to
    ``host_slowdown`` and invert its values, in one transaction (see the module docstring)."""
    if "host_factor" not in {c["name"] for c in sa.inspect(engine).get_columns("runs")}:
        return

    def transaction() -> None:
        with engine.begin() as conn:  # SQLite: BEGIN IMMEDIATE, so one process migrates
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("LOCK TABLE runs IN ACCESS EXCLUSIVE MODE"))
            if "host_factor" not in {c["name"] for c in sa.inspect(conn).get_columns("runs")}:
                return  # another process migrated it meanwhile
            conn.execute(sa.text("ALTER TABLE runs RENAME COLUMN host_factor TO host_slowdown"))
            conn.execute(sa.text(
                "UPDATE runs SET host_slowdown = 1.0 / host_slowdown WHERE host_slowdown <> 0"
            ))

    _with_retries(transaction)


def _with_retries(work):
    """``work()`` (one whole transaction), run again when another writer won a race.

    SQLite's busy timeout covers waiting for a lock; what is left is a lock that stays taken
    longer than it, and PostgreSQL's serialization and deadlock errors, where the database
    asks the client to try again.
    """
    for attempt in range(_RETRIES):
        try:
            return work()
        except sa.exc.OperationalError as exc:
            text = str(exc.orig).lower()
            retry = "locked" in text or "deadlock" in text or "could not serialize" in text
            if not retry or attempt == _RETRIES - 1:
                raise
            time.sleep(0.1 * 2**attempt)
    raise AssertionError("unreachable")


def _chunks(items: Iterable, size: int) -> Iterator[list]:
    chunk: list = []
    for item in items:
        chunk.append(item)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _insert_new(conn: Connection, rows: list[dict]) -> int:
    """INSERT rows whose attempt key is new (ON CONFLICT DO NOTHING where the dialect has it);
    return how many were inserted."""
    # Looking the keys up first makes re-ingesting a log cheap; the conflict clause below still
    # keeps a concurrent writer from storing an attempt twice.
    keys = [r["attempt_key"] for r in rows]
    known = set(
        conn.execute(
            sa.select(RUNS_TABLE.c.attempt_key).where(RUNS_TABLE.c.attempt_key.in_(keys))
        ).scalars()
    )
    fresh: dict[str, dict] = {}
    for row in rows:
        if row["attempt_key"] not in known:
            fresh.setdefault(row["attempt_key"], row)
    # Always in key order: two writers inserting overlapping keys then wait for each other
    # instead of deadlocking (PostgreSQL locks each new key's index entry in turn).
    rows = sorted(fresh.values(), key=lambda r: r["attempt_key"])
    if not rows:
        return 0
    dialect = conn.dialect.name
    if dialect in ("sqlite", "postgresql"):
        module = sqlite if dialect == "sqlite" else postgresql
        statement = module.insert(RUNS_TABLE).on_conflict_do_nothing(
            index_elements=["attempt_key"]
        )
        # The keys actually inserted: a concurrent writer may have stored some meanwhile.
        return len(conn.execute(statement.returning(RUNS_TABLE.c.attempt_key), rows).all())
    if dialect in ("mysql", "mariadb"):
        statement = sa.insert(RUNS_TABLE).prefix_with("IGNORE")
    else:  # portable fallback: the lookup above, inside the same transaction
        statement = sa.insert(RUNS_TABLE)
    return conn.execute(statement, rows).rowcount
