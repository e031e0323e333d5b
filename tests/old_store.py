"""A runs store as cputime wrote it before the ``host_slowdown`` column, for the migration tests
on SQLite (test_runs.py) and PostgreSQL (test_shared_store.py).

The schema is written out by hand, as cputime's SQLAlchemy table created it then: a
``host_factor`` column holding reference-host CPU seconds per host CPU second, the inverse of
today's ``host_slowdown``.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

_OLD_DDL = """
CREATE TABLE runs (
    id {id_type} NOT NULL,
    attempt_key VARCHAR(64) NOT NULL,
    obshistid BIGINT,
    sensor VARCHAR(16),
    job_id VARCHAR(64),
    job_name VARCHAR(256),
    state VARCHAR(64) NOT NULL,
    outcome VARCHAR(16) NOT NULL,
    cpu_seconds FLOAT,
    host VARCHAR(256),
    host_factor FLOAT,
    cpu_seconds_ref FLOAT,
    wall_seconds FLOAT,
    threads INTEGER,
    max_rss_kb FLOAT,
    exit_code VARCHAR(32),
    started TIMESTAMP,
    ended TIMESTAMP,
    source_file VARCHAR(1024) NOT NULL,
    source_line INTEGER,
    source_format VARCHAR(16) NOT NULL,
    feature_code_version VARCHAR(32),
    features TEXT,
    details TEXT,
    ingested_at TIMESTAMP NOT NULL,
    PRIMARY KEY (id),
    CONSTRAINT runs_outcome CHECK (outcome IN ('finished', 'censored', 'failed')),
    UNIQUE (attempt_key)
)
"""

#: (attempt_key, outcome, cpu_seconds, host, host_factor, cpu_seconds_ref): hosts of the Twinkles
#: classes (factor 1.71 = a host 1.71 times faster than the reference), a failed job without a
#: host, and a store's rows are kept as they are apart from the renamed column.
OLD_ROWS = [
    ("a" * 64, "finished", 1000.0, "dole01", 1.71, 1710.0),
    ("b" * 64, "censored", 432000.0, "hequ07", 1.13, 488160.0),
    ("c" * 64, "finished", 500.0, "fell02", 1.0, 500.0),
    ("d" * 64, "failed", None, None, None, None),
]


def create_old_store(uri: str) -> None:
    """Create the old runs table at ``uri`` and store :data:`OLD_ROWS` in it."""
    engine = sa.create_engine(uri)
    id_type = "SERIAL" if engine.dialect.name == "postgresql" else "INTEGER"
    with engine.begin() as conn:
        conn.execute(sa.text(_OLD_DDL.format(id_type=id_type)))
        conn.execute(sa.text("CREATE INDEX ix_runs_obshistid ON runs (obshistid)"))
        conn.execute(sa.text("CREATE INDEX ix_runs_ended ON runs (ended)"))
        for number, (key, outcome, cpu, host, factor, ref) in enumerate(OLD_ROWS, start=2):
            conn.execute(
                sa.text(
                    "INSERT INTO runs (attempt_key, obshistid, sensor, state, outcome, "
                    "cpu_seconds, host, host_factor, cpu_seconds_ref, ended, source_file, "
                    "source_line, source_format, ingested_at) VALUES (:key, 230, 'R22_S11', "
                    ":state, :outcome, :cpu, :host, :factor, :ref, '2024-05-01 10:00:00', "
                    "'runs.csv', :line, 'csv', '2024-05-02 10:00:00')"
                ),
                {"key": key, "state": outcome.upper(), "outcome": outcome, "cpu": cpu,
                 "host": host, "factor": factor, "ref": ref, "line": number},
            )
    engine.dispose()


def check_migrated(store) -> None:
    """Every old row is there, host_factor turned into host_slowdown = 1 / host_factor."""
    columns = {c["name"] for c in sa.inspect(store.engine).get_columns("runs")}
    assert "host_slowdown" in columns and "host_factor" not in columns
    table = store.table().set_index("attempt_key")
    assert sorted(table.index) == sorted(row[0] for row in OLD_ROWS)
    for key, outcome, cpu, host, factor, ref in OLD_ROWS:
        row = table.loc[key]
        assert row["outcome"] == outcome and row["source_format"] == "csv"
        if factor is None:
            assert row[["host_slowdown", "cpu_seconds", "cpu_seconds_ref"]].isna().all()
            continue
        assert row["host"] == host and row["cpu_seconds"] == cpu
        assert row["host_slowdown"] == 1.0 / factor  # host seconds per reference second
        assert row["cpu_seconds_ref"] == ref  # already in reference seconds: unchanged
        assert row["cpu_seconds_ref"] == pytest.approx(cpu / row["host_slowdown"], rel=1e-12)
