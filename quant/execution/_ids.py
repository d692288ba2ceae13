"""Deterministic client order ids.

An id is derived from (order namespace, logical date, symbol, side) only, so a
rerun of a stage produces the same ids: ``ops.orders`` refuses a second row
with the same id and brokers refuse a second order with it. The namespace is
the DAG id for runs on the default account (``paper`` simulator, Alpaca,
IB) and ``<dag id>@<account>`` for a separate simulator account (a backfill),
so two backfills over the same dates never share ids.

A dry run has a namespace of its own, ``<namespace>/dry-run/<run id>``, and its
ids start with ``d`` where every other run's start with ``q``: a dry run's
orders can never take the place of a real run's, in ``ops.orders``, at the
sidecar (which refuses an id it approved earlier in the session) or at a broker.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

__all__ = ["client_order_id", "is_dry_run_namespace", "order_namespace"]

_DRY_RUN = "/dry-run/"  # never in a DAG id ([A-Za-z0-9_.-]) nor in a simulator account name
_MAX_LEN = 48  # Alpaca accepts up to 128 characters; IB's orderRef is free text
_SAFE = re.compile(r"[^A-Z0-9.]")


def order_namespace(
    dag_id: str, account: str, *, default_account: bool, dry_run_id: str | None = None
) -> str:
    """The namespace of a run's client order ids: ``dag_id`` on the default account of
    the broker, ``dag_id@account`` on a separate (backfill) simulator account; for the
    dry run ``dry_run_id`` (its Airflow run id), that followed by ``/dry-run/<run id>``."""
    if not dag_id:
        raise ValueError("dag_id must not be empty")
    namespace = dag_id if default_account else f"{dag_id}@{account}"
    if dry_run_id is None:
        return namespace
    if not dry_run_id:
        raise ValueError("dry_run_id must not be empty")
    return f"{namespace}{_DRY_RUN}{dry_run_id}"


def is_dry_run_namespace(namespace: str) -> bool:
    """Whether ``namespace`` is a dry run's (:func:`order_namespace` with ``dry_run_id``)."""
    return _DRY_RUN in namespace


def client_order_id(namespace: str, logical_date: date, symbol: str, side: str) -> str:
    """The id of the order of ``symbol`` and ``side`` generated for ``logical_date``.

    Readable prefix (date, symbol, side) plus 12 hex digits of a SHA-256 over
    all four inputs, e.g. ``q20261120-AAPL-B-3f2a9c0d1e4b``; at most 48 characters.
    The first letter is ``d`` in a dry run's namespace, ``q`` in any other.
    """
    if side not in ("buy", "sell"):
        raise ValueError(f"side must be 'buy' or 'sell', got {side!r}")
    if not namespace or not symbol:
        raise ValueError("namespace and symbol must not be empty")
    symbol = symbol.upper()
    digest = hashlib.sha256(
        f"{namespace}\0{logical_date.isoformat()}\0{symbol}\0{side}".encode()
    ).hexdigest()[:12]
    readable = _SAFE.sub("_", symbol)[:20]
    kind = "d" if is_dry_run_namespace(namespace) else "q"
    out = f"{kind}{logical_date:%Y%m%d}-{readable}-{'B' if side == 'buy' else 'S'}-{digest}"
    assert len(out) <= _MAX_LEN
    return out
