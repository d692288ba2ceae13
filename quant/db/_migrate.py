"""Versioned schema migrations: ordered SQL files applied once each.

Files live in ``quant/db/migrations`` and are named ``NNNN_description.sql``.
Each is applied in its own transaction, in file-name order, and recorded in
``ops.schema_migrations`` with its checksum. A file whose content changed
after it was applied is an error (write a new migration instead). Concurrent
callers are serialised by a PostgreSQL advisory lock.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from importlib import resources

from quant.config import Settings
from quant.db._connect import connect
from quant.exceptions import MigrationError

__all__ = ["Migration", "available_migrations", "migrate", "applied_migrations"]

_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
_LOCK_KEY = 0x5155414E54  # "QUANT"


@dataclass(frozen=True, slots=True)
class Migration:
    """One SQL migration file."""

    version: str
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def available_migrations() -> list[Migration]:
    """The migration files shipped with the package, in the order they apply."""
    folder = resources.files("quant.db") / "migrations"
    found: list[Migration] = []
    for entry in folder.iterdir():
        match = _NAME.match(entry.name)
        if entry.name.endswith(".sql") and not match:
            raise MigrationError(f"migration file name {entry.name!r} is not NNNN_name.sql")
        if match:
            found.append(Migration(match.group(1), entry.name, entry.read_text()))
    found.sort(key=lambda m: m.name)
    return found


_BOOTSTRAP = """
create schema if not exists ops;
create table if not exists ops.schema_migrations (
    name        text        primary key,
    checksum    text        not null,
    applied_at  timestamptz not null default now()
);
"""


def applied_migrations(settings: Settings | None = None) -> dict[str, str]:
    """Names of the applied migrations with their checksums."""
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("select to_regclass('ops.schema_migrations')")
            if cur.fetchone()[0] is None:
                return {}
            cur.execute("select name, checksum from ops.schema_migrations")
            return dict(cur.fetchall())
    finally:
        conn.close()


def migrate(settings: Settings | None = None) -> list[str]:
    """Apply every migration not yet applied; return the names applied now.

    Raises
    ------
    MigrationError
        A migration failed (it is rolled back) or an applied file was changed.
    """
    import psycopg2

    conn = connect(settings)
    applied_now: list[str] = []
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            conn.autocommit = False
            with conn, conn.cursor() as cur:
                cur.execute(_BOOTSTRAP)
                cur.execute("select name, checksum from ops.schema_migrations")
                done = dict(cur.fetchall())
            for migration in available_migrations():
                if migration.name in done:
                    if done[migration.name] != migration.checksum:
                        raise MigrationError(
                            f"migration {migration.name} was changed after it was applied; "
                            "add a new migration instead"
                        )
                    continue
                try:
                    with conn, conn.cursor() as cur:
                        cur.execute(migration.sql)
                        cur.execute(
                            "insert into ops.schema_migrations (name, checksum) values (%s, %s)",
                            (migration.name, migration.checksum),
                        )
                except psycopg2.Error as exc:
                    raise MigrationError(f"migration {migration.name} failed: {exc}") from exc
                applied_now.append(migration.name)
        finally:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("select pg_advisory_unlock(%s)", (_LOCK_KEY,))
    finally:
        conn.close()
    return applied_now
