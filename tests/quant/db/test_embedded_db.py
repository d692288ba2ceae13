"""The embedded PostgreSQL through the command line, and the migrations."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from quant.config import Settings
from quant.db import applied_migrations, available_migrations, connect, migrate


@pytest.fixture()
def own_home() -> Iterator[Path]:
    """A QUANT_HOME of the test's own (a second embedded server), stopped afterwards."""
    from quant.db import stop_embedded

    home = Path(tempfile.mkdtemp(prefix="qt-db-", dir="/tmp"))
    try:
        yield home
    finally:
        stop_embedded(home / "pgdata")
        import shutil

        shutil.rmtree(home, ignore_errors=True)


def _quant(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("QUANT_", "AIRFLOW"))}
    env.pop("DATABASE_URL", None)
    env["QUANT_HOME"] = str(home)
    return subprocess.run(
        [sys.executable, "-m", "quant.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_db_up_when_run_twice_then_second_is_harmless(own_home: Path) -> None:
    first = _quant(own_home, "db", "up")
    assert first.returncode == 0, first.stderr
    assert "0001_schemas.sql" in first.stdout
    second = _quant(own_home, "db", "up")
    assert second.returncode == 0, second.stderr
    assert "none (up to date)" in second.stdout
    status = _quant(own_home, "db", "status")
    assert status.returncode == 0, status.stderr
    assert "running: True" in status.stdout
    assert "pending: none" in status.stdout


def test_db_up_when_server_crashed_then_stale_lock_recovered(own_home: Path) -> None:
    assert _quant(own_home, "db", "up").returncode == 0
    pid = int((own_home / "pgdata" / "postmaster.pid").read_text().splitlines()[0])
    os.kill(pid, signal.SIGKILL)
    for _ in range(50):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    assert (own_home / "pgdata" / "postmaster.pid").exists()  # the stale lock is left behind
    again = _quant(own_home, "db", "up")
    assert again.returncode == 0, again.stderr
    url = _quant(own_home, "db", "url")
    import psycopg2

    with psycopg2.connect(url.stdout.strip()) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from ops.schema_migrations")
        assert cur.fetchone()[0] == len(available_migrations())


def test_db_down_then_status_reports_not_running(own_home: Path) -> None:
    assert _quant(own_home, "db", "up").returncode == 0
    down = _quant(own_home, "db", "down")
    assert down.returncode == 0 and "stopped" in down.stdout
    status = _quant(own_home, "db", "status")
    assert status.returncode == 3
    assert "running: False" in status.stdout


def test_migrate_when_all_applied_then_nothing_to_do(pg_settings: Settings) -> None:
    assert migrate(pg_settings) == []
    assert set(applied_migrations(pg_settings)) == {m.name for m in available_migrations()}


def test_migrate_when_applied_file_changed_then_refused(pg_settings: Settings) -> None:
    from quant.exceptions import MigrationError

    conn = connect(pg_settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "update ops.schema_migrations set checksum = 'tampered' where name = '0001_schemas.sql'"
            )
        with pytest.raises(MigrationError, match="0001_schemas.sql was changed"):
            migrate(pg_settings)
    finally:
        with conn, conn.cursor() as cur:
            cur.execute(
                "update ops.schema_migrations set checksum = %s where name = '0001_schemas.sql'",
                (available_migrations()[0].checksum,),
            )
        conn.close()


def test_schemas_when_migrated_then_raw_and_ops_exist(db_conn) -> None:  # noqa: ANN001
    with db_conn.cursor() as cur:
        cur.execute("select schema_name from information_schema.schemata")
        schemas = {row[0] for row in cur.fetchall()}
    assert {"raw", "ops"} <= schemas
