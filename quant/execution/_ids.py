"""Deterministic client order ids.

An id is derived from (order namespace, logical date, symbol, side) only, so a
rerun of a stage produces the same ids: ``ops.orders`` refuses a second row
with the same id and brokers refuse a second order with it. The namespace is
the DAG id for runs on the default account (``paper`` simulator, Alpaca,
IB) and ``<dag id>@<account>`` for a separate simulator account (a backfill),
so two backfills over the same dates never share ids.
"""

from __future__ import annotations

import hashlib
import re
from datetime import date

__all__ = ["client_order_id", "order_namespace"]

_MAX_LEN = 48  # Alpaca accepts up to 128 characters; IB's orderRef is free text
_SAFE = re.compile(r"[^A-Z0-9.]")


def order_namespace(dag_id: str, account: str, *, default_account: bool) -> str:
    """The namespace of a run's client order ids: ``dag_id`` on the default account of
    the broker, ``dag_id@account`` on a separate (backfill) simulator account."""
    if not dag_id:
        raise ValueError("dag_id must not be empty")
    return dag_id if default_account else f"{dag_id}@{account}"


def client_order_id(namespace: str, logical_date: date, symbol: str, side: str) -> str:
    """The id of the order of ``symbol`` and ``side`` generated for ``logical_date``.

    Readable prefix (date, symbol, side) plus 12 hex digits of a SHA-256 over
    all four inputs, e.g. ``q20261120-AAPL-B-3f2a9c0d1e4b``; at most 48 characters.
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
    out = f"q{logical_date:%Y%m%d}-{readable}-{'B' if side == 'buy' else 'S'}-{digest}"
    assert len(out) <= _MAX_LEN
    return out
