"""The simulator's market for one session: the auction that fills resting orders."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from quant.execution._common import calendar, resolve_settings, time_in_force
from quant.execution._corporate import closing_actions, ex_date_actions
from quant.execution._market import session_bars
from quant.typing import BatchBroker, TimeInForce

if TYPE_CHECKING:
    from quant.config import Settings

__all__ = ["settle_simulator"]


def settle_simulator(
    broker: Any, conn: Any, session: date, settings: Settings | None = None, *, cache: Any = None
) -> dict[str, Any]:
    """Let the simulator's market happen for ``session``: resting orders (submitted by
    earlier sessions' runs) fill at this session's opening or closing auction
    (``QUANT_EXECUTION__FILL_AUCTION``) with the session's volume capping
    participation; whatever did not fill expires; positions are marked at the close.

    Corporate actions happen with it (:mod:`quant.execution._corporate`): the splits
    and dividends whose ex-date is the session before the auction, the closings of
    delisted and dead symbols after the close. Each is a recorded event in the books
    (``ops.corporate_events``).

    Called by :func:`generate_orders` for simulator accounts; the backtest can call it
    the same way. Idempotent: a second call finds no resting order, and no action
    applies twice. ``cache``: the run context's relations
    (:func:`~quant.execution.session_bars`).
    """
    settings = resolve_settings(settings)
    cal = calendar(settings)
    bars = session_bars(conn, session, settings.providers, cache=cache)
    events = []
    actions = ex_date_actions(conn, session, settings.providers, cal)
    if actions:
        events += broker.apply_corporate_actions(actions)
    auction = settings.execution.fill_auction
    prices = {s: (b.open if auction == "open" else b.close) for s, b in bars.items()}
    volumes = {s: b.volume for s, b in bars.items()}
    at = cal.open_at(session) if auction == "open" else cal.close_at(session)
    fills = broker.fill_auction(prices, at=at, auction=auction, volumes=volumes)
    expiring = [
        o.order_id
        for o in broker.open_orders()
        if o.time_in_force in (TimeInForce.DAY, time_in_force(settings))
    ]
    if isinstance(broker, BatchBroker):
        expired = broker.cancel_many(expiring)
    else:
        expired = sum(int(broker.cancel(order_id)) for order_id in expiring)
    broker.mark({s: b.close for s, b in bars.items()})
    closings = closing_actions(
        conn, session, broker.positions(), bars, settings.providers, cal,
        settings.execution.close_after_missing_sessions,
    )
    if closings:
        events += broker.apply_corporate_actions(closings)
    return {
        "auction": auction,
        "fills": len(fills),
        "filled_shares": float(sum(f.qty_shares for f in fills)),
        "expired_orders": expired,
        "corporate_events": [
            {"symbol": e.action.symbol, "type": e.action.action_type, "cash_usd": e.cash_usd,
             "qty_before_shares": e.qty_before_shares, "qty_after_shares": e.qty_after_shares}
            for e in events
        ],
    }
