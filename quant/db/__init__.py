"""Database access: the embedded server, connections and schema migrations."""

from quant.db._cache import (
    CachedRelation,
    RelationCache,
    quote_identifier,
)
from quant.db._connect import (
    ConnectionPool,
    airflow_database_url,
    connect,
    connection_params,
    database_url,
    ensure_database,
    reused_connections,
    transaction,
)
from quant.db._embedded import embedded_status, start_embedded, stop_embedded
from quant.db._migrate import applied_migrations, available_migrations, migrate
from quant.db._scratch import scratch_environment, scratch_home

__all__ = [
    "CachedRelation",
    "ConnectionPool",
    "RelationCache",
    "airflow_database_url",
    "applied_migrations",
    "available_migrations",
    "connect",
    "connection_params",
    "database_url",
    "embedded_status",
    "ensure_database",
    "migrate",
    "quote_identifier",
    "reused_connections",
    "scratch_environment",
    "scratch_home",
    "start_embedded",
    "stop_embedded",
    "transaction",
]
