"""Connections to the pipeline's database and the Airflow metadata database."""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, unquote, urlsplit, urlunsplit

from quant.config import Settings, get_settings
from quant.db._embedded import embedded_server_uri
from quant.exceptions import DatabaseError

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

__all__ = [
    "ConnectionParams",
    "ConnectionPool",
    "airflow_database_url",
    "connect",
    "connection_params",
    "database_url",
    "ensure_database",
    "transaction",
]

QUANT_DATABASE = "quant"
AIRFLOW_DATABASE = "airflow"


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path="/" + database))


def database_url(settings: Settings | None = None) -> str:
    """libpq URL of the pipeline's database (``DATABASE_URL``, or the embedded server).

    On the embedded server the ``quant`` database is created on first use.
    """
    settings = settings or get_settings()
    if settings.database_url:
        return settings.database_url.replace("postgresql+psycopg2://", "postgresql://", 1)
    url = embedded_server_uri(settings.pgdata_dir, QUANT_DATABASE)
    ensure_database(url)
    return url


def airflow_database_url(settings: Settings | None = None) -> str:
    """SQLAlchemy URL of the Airflow metadata database: database ``airflow`` on the same server."""
    settings = settings or get_settings()
    if settings.database_url:
        base = settings.database_url.replace("postgresql+psycopg2://", "postgresql://", 1)
        url = _with_database(base, AIRFLOW_DATABASE)
    else:
        url = embedded_server_uri(settings.pgdata_dir, AIRFLOW_DATABASE)
    ensure_database(url)
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def ensure_database(url: str) -> None:
    """Create the database named in ``url`` when it does not exist (needs CREATEDB)."""
    import psycopg2
    from psycopg2 import sql

    name = urlsplit(url).path.lstrip("/")
    admin_url = _with_database(url, "postgres")
    try:
        conn = psycopg2.connect(admin_url)
    except psycopg2.OperationalError as exc:
        raise DatabaseError(f"cannot reach PostgreSQL at {_redact(admin_url)}: {exc}") from exc
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("select 1 from pg_database where datname = %s", (name,))
            if cur.fetchone() is None:
                try:
                    cur.execute(sql.SQL("create database {}").format(sql.Identifier(name)))
                except psycopg2.errors.DuplicateDatabase:
                    pass  # created concurrently by another process
    finally:
        conn.close()


def connect(settings: Settings | None = None) -> PgConnection:
    """Open a psycopg2 connection to the pipeline's database (not autocommit)."""
    import psycopg2

    url = database_url(settings)
    try:
        return psycopg2.connect(url)
    except psycopg2.OperationalError as exc:
        raise DatabaseError(f"cannot connect to {_redact(url)}: {exc}") from exc


class ConnectionPool:
    """Connections handed out again after their ``close``, by URL; see :func:`reused_connections`."""


    def __init__(self) -> None:
        self.idle: dict[str, list[Any]] = {}
        self.urls: dict[int, tuple[Settings, str]] = {}
        self.open = True

    def connect(self, settings: Settings | None) -> PgConnection:
        """An idle connection to ``settings``' database, or a new one that comes back on close."""
        import psycopg2

        known = self.urls.get(id(settings))
        if known is not None and known[0] is settings:
            url = known[1]
        else:
            url = database_url(settings)
            if settings is not None:  # held, so its id is not reused while the pool lives
                self.urls[id(settings)] = (settings, url)
        idle = self.idle.get(url)
        if idle:
            return idle.pop()
        try:
            conn = psycopg2.connect(url, connection_factory=_pooled_connection_class())
        except psycopg2.OperationalError as exc:
            raise DatabaseError(f"cannot connect to {_redact(url)}: {exc}") from exc
        conn.pool, conn.url = self, url
        return conn

    def give_back(self, conn: Any) -> bool:
        """Keep ``conn`` for the next :meth:`connect`; False when it must really close."""
        if not self.open or conn.closed:
            return False
        try:
            conn.reset()  # rolls back and RESETs every session setting
            conn.autocommit = False
        except Exception:  # a broken connection is not worth keeping
            return False
        self.idle.setdefault(conn.url, []).append(conn)
        return True

    def close(self) -> None:
        self.open = False
        for conns in self.idle.values():
            for conn in conns:
                conn.pool = None
                conn.close()
        self.idle.clear()


@functools.cache
def _pooled_connection_class() -> type:
    import psycopg2.extensions

    class PooledConnection(psycopg2.extensions.connection):
        """A connection whose ``close`` gives it back to its pool while the pool is open."""

        pool: ConnectionPool | None = None
        url: str = ""

        def close(self) -> None:
            if self.pool is not None and self.pool.give_back(self):
                return
            super().close()

    return PooledConnection


@contextmanager
def reused_connections() -> Iterator[ConnectionPool]:
    """A :class:`ConnectionPool` whose connections all end with the block.

    For a process that runs the stages many times over (a backtest, whose run
    context holds the pool): each stage still opens, commits and closes its own
    connection (``pool.connect``), but the closing hands the connection back
    (rolled back and RESET) instead of ending the session, and the next stage
    gets it without a new login.
    """
    pool = ConnectionPool()
    try:
        yield pool
    finally:
        pool.close()


@contextmanager
def transaction(settings: Settings | None = None) -> Iterator[PgConnection]:
    """A connection whose work is committed on success and rolled back on error."""
    conn = connect(settings)
    try:
        with conn:
            yield conn
    finally:
        conn.close()


class ConnectionParams(dict):
    """host, port, user, password and dbname of a PostgreSQL URL (for dbt and GX)."""


def connection_params(url: str) -> ConnectionParams:
    """Split a libpq URL into keyword parameters; a ``host`` query part wins (Unix sockets)."""
    parts = urlsplit(url)
    query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
    return ConnectionParams(
        host=query.get("host") or parts.hostname or "localhost",
        port=int(query.get("port") or parts.port or 5432),
        user=unquote(parts.username or query.get("user") or "postgres"),
        password=unquote(parts.password or query.get("password") or ""),
        dbname=parts.path.lstrip("/") or "postgres",
    )


def _redact(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":***@", 1)
        return urlunsplit(parts._replace(netloc=netloc))
    return url
