"""The books: the only code that reads or writes the trading records in ``ops.*``.

Execution runs, orders, fills, positions, corporate events and reconciliation breaks, as typed
functions over a psycopg2 connection (or, inside a caller's transaction, a
cursor). The execution stages decide what happens to an order; this package
records it. Reports, the command line and the backtest read the books here too.
"""

from quant.ledger._breaks import open_breaks, record_break, resolve_break
from quant.ledger._corporate import (
    CorporateEvent,
    OrderAdjustment,
    applied_corporate_events,
    book_broker_corporate_actions,
    corporate_events,
    position_events,
    record_corporate_events,
    replayed_positions,
    rewind_corporate_events,
)
from quant.ledger._fills import last_fill_at, positions, record_fills
from quant.ledger._orders import (
    ORDER_FIELDS,
    live_order_ids,
    mark_broker_rejected,
    mark_submitted,
    mark_submitting,
    orders,
    record_verdicts,
    refresh_orders,
    status_counts,
)
from quant.ledger._position_math import QTY_TOLERANCE, event_outcome, next_position, split_shares
from quant.ledger._reads import (
    account_equity,
    account_orders,
    held_symbols,
    latest_execution,
    order_outcomes,
    run_execution,
    run_orders,
    session_order_counts,
)
from quant.ledger._rewind import rebuilt_positions, rewind_books
from quant.ledger._runs import find_run, has_runs_after, load_run, record_run, take_over_run

__all__ = [
    "CorporateEvent",
    "OrderAdjustment",
    "account_equity",
    "applied_corporate_events",
    "book_broker_corporate_actions",
    "corporate_events",
    "event_outcome",
    "held_symbols",
    "position_events",
    "record_corporate_events",
    "replayed_positions",
    "rewind_corporate_events",
    "split_shares",
    "account_orders",
    "latest_execution",
    "order_outcomes",
    "run_execution",
    "run_orders",
    "session_order_counts",
    "ORDER_FIELDS",
    "QTY_TOLERANCE",
    "find_run",
    "has_runs_after",
    "last_fill_at",
    "live_order_ids",
    "load_run",
    "mark_broker_rejected",
    "mark_submitted",
    "mark_submitting",
    "next_position",
    "open_breaks",
    "orders",
    "positions",
    "rebuilt_positions",
    "record_break",
    "record_fills",
    "record_run",
    "record_verdicts",
    "refresh_orders",
    "resolve_break",
    "rewind_books",
    "status_counts",
    "take_over_run",
]
