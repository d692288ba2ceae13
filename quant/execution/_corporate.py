"""The corporate actions a simulated account meets on a session, from the raw tables.

Splits and cash dividends come from ``raw.corporate_actions`` (what the providers
deliver, the same rows dbt adjusts prices with): the ones whose ex-date is the
session, one per symbol and type from the first provider of the chain. Closings
come from ``raw.symbols`` (``delisted_at`` on or before the session) and from
``raw.bars`` (a held symbol without a bar for
``QUANT_EXECUTION__CLOSE_AFTER_MISSING_SESSIONS`` sessions), at the last known
close. Point in time: nothing dated after the session is read.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from quant.calendar import TradingCalendar
from quant.execution._market import SessionBar
from quant.typing import CorporateAction, Position

__all__ = ["closing_actions", "ex_date_actions"]


def _order_by_provider(columns: str) -> str:
    return f"order by {columns}, array_position(%s::text[], provider) nulls last, provider"


def ex_date_actions(
    conn: Any, session: date, providers: Sequence[str], cal: TradingCalendar
) -> list[CorporateAction]:
    """Splits and dividends with their ex-date on ``session``, effective at its open.

    A split carries the price its fractional shares are paid at: the symbol's last
    close before the session divided by the ratio.
    """
    with conn.cursor() as cur:
        cur.execute(
            "select distinct on (symbol, action_type) upper(symbol), action_type, split_ratio, "
            "dividend_usd from raw.corporate_actions where ex_date = %s "
            + _order_by_provider("symbol, action_type"),
            (session, list(providers)),
        )
        rows = cur.fetchall()
    if not rows:
        return []
    splits = sorted({r[0] for r in rows if r[1] == "split"})
    before = last_closes(conn, session - timedelta(days=1), providers, splits) if splits else {}
    at = cal.open_at(session)
    actions = []
    for symbol, kind, ratio, dividend in rows:
        if kind == "split":
            last = before.get(symbol)
            actions.append(CorporateAction(
                symbol=symbol, action_type="split", session=session, effective_at=at,
                split_ratio=float(ratio), price_usd=None if last is None else last[1] / ratio,
            ))
        else:
            actions.append(CorporateAction(
                symbol=symbol, action_type="dividend", session=session, effective_at=at,
                dividend_usd=float(dividend),
            ))
    return actions


def last_closes(
    conn: Any, up_to: date, providers: Sequence[str], symbols: Iterable[str]
) -> dict[str, tuple[date, float]]:
    """Each symbol's latest bar on or before ``up_to``: ``(date, close)``."""
    with conn.cursor() as cur:
        cur.execute(
            "select distinct on (symbol) symbol, date, close from raw.bars "
            "where symbol = any(%s) and date <= %s " + _order_by_provider("symbol, date desc"),
            (sorted(symbols), up_to, list(providers)),
        )
        return {r[0]: (r[1], float(r[2])) for r in cur.fetchall()}


def closing_actions(
    conn: Any,
    session: date,
    positions: Sequence[Position],
    bars: Mapping[str, SessionBar],
    providers: Sequence[str],
    cal: TradingCalendar,
    missing_sessions: int,
) -> list[CorporateAction]:
    """Closings of held positions at the session's close, at the last known price.

    A symbol delisted on or before the session (``raw.symbols.delisted_at``, first
    provider of the chain) is closed (``delisting``); so is one whose latest bar is
    ``missing_sessions`` or more sessions old (``dead_symbol``).
    """
    held = {p.symbol: p for p in positions if p.qty_shares != 0}
    if not held:
        return []
    with conn.cursor() as cur:
        cur.execute(
            "select distinct on (symbol) symbol, delisted_at from raw.symbols "
            "where symbol = any(%s) " + _order_by_provider("symbol"),
            (sorted(held), list(providers)),
        )
        delisted = {r[0]: r[1] for r in cur.fetchall() if r[1] is not None and r[1] <= session}
    without_bar = sorted(s for s in held if s not in bars)
    last = last_closes(conn, session, providers, without_bar) if without_bar else {}
    at = cal.close_at(session)
    actions = []
    for symbol in sorted(held):
        if symbol in bars:
            seen: tuple[date, float] | None = (session, bars[symbol].close)
        else:
            seen = last.get(symbol)
        price = seen[1] if seen is not None else held[symbol].market_price_usd
        if symbol in delisted:
            actions.append(CorporateAction(
                symbol=symbol, action_type="delisting", session=session, effective_at=at,
                price_usd=price, detail=f"delisted_at {delisted[symbol].isoformat()}",
            ))
            continue
        if symbol in bars:
            continue
        if seen is None:  # no bar on record at all: closed at the broker's last mark
            detail = "no bar on record"
        else:
            gap = len(cal.sessions(seen[0] + timedelta(days=1), session))
            if gap < missing_sessions:
                continue
            detail = f"no bar for {gap} sessions (last bar {seen[0].isoformat()})"
        actions.append(CorporateAction(
            symbol=symbol, action_type="dead_symbol", session=session, effective_at=at,
            price_usd=price, detail=detail,
        ))
    return actions
