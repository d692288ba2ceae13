"""Rewinding a simulated account to the start of a session.

Simulator accounts of backfills and of replays of past sessions are a function
of the sessions run through them, in order. Rerunning session D on such an
account first rewinds it to the state it had when D's run started, so that a
backfill run twice, or a replay rerun, gives the same orders and fills:

- orders generated for D and later sessions are removed (the books' orders and
  execution runs, :func:`quant.ledger.rewind_books`, and the simulator's);
- fills at or after D's opening auction are removed and their cash flows
  reversed; the previous session's orders, which those fills belonged to, rest
  again at the simulator;
- corporate events (splits, dividends, closings) of D and later are removed, their
  cash taken back and the orders they resized given their quantities back;
- positions are rebuilt from the fills and corporate events that remain.

This module is the simulator's store for the rewind (``ops.sim_*``); the books'
part is the ledger's. Both happen in one transaction. The broker accounts of
live and paper trading are never rewound (the caller only does this for
separate simulator accounts).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from quant.ledger import (
    position_events,
    replayed_positions,
    rewind_books,
    rewind_corporate_events,
)

__all__ = ["rewind_sim_account"]


def rewind_sim_account(
    conn: Any,
    *,
    account: str,
    namespace: str,
    session: date,
    previous_session: date,
    cutoff: datetime,
) -> dict[str, int]:
    """Rewind ``account`` to the start of ``session`` (one transaction).

    Parameters
    ----------
    conn : psycopg2 connection
    account : str
        The simulator account (``ops.sim_accounts``).
    namespace : str
        Its order namespace in the books.
    session, previous_session : date
        The session to rerun and the one before it.
    cutoff : datetime
        Start of ``session`` (its opening auction, UTC): later fills are undone.

    Returns
    -------
    dict
        Counts of what was removed.
    """
    with conn, conn.cursor() as cur:
        cur.execute("select 1 from ops.sim_accounts where account = %s for update", (account,))
        if cur.fetchone() is None:
            return {"orders": 0, "fills": 0, "corporate_events": 0}
        # cash: reverse the fills being removed
        cur.execute(
            "select coalesce(sum(case when side = 'buy' then qty_shares * price_usd "
            "else -qty_shares * price_usd end + commission_usd), 0), count(*) "
            "from ops.sim_fills where account = %s and filled_at >= %s",
            (account, cutoff),
        )
        cash_back, n_fills = cur.fetchone()
        # corporate events of the session and later: their cash back, their orders resized back
        n_events, event_cash, resized = rewind_corporate_events(cur, "sim", account, session)
        cur.execute(
            "update ops.sim_accounts set cash_usd = cash_usd + %s - %s, updated_at = now() "
            "where account = %s",
            (cash_back, event_cash, account),
        )
        for order in resized:
            cur.execute(
                "update ops.sim_orders set qty_shares = %s, limit_price_usd = %s, "
                "updated_at = now() where account = %s and client_order_id = %s",
                (order["qty_shares"], order["limit_price_usd"], account,
                 order["client_order_id"]),
            )
        cur.execute(
            "delete from ops.sim_fills where account = %s and filled_at >= %s", (account, cutoff)
        )
        later, resting = rewind_books(
            cur, account=account, namespace=namespace, session=session,
            previous_session=previous_session, cutoff=cutoff,
        )
        # orders of the session and later: gone; the previous session's: resting again
        cur.execute(
            "delete from ops.sim_orders where account = %s and client_order_id = any(%s)",
            (account, later),
        )
        cur.execute(
            """
            update ops.sim_orders as o
               set filled_qty_shares = coalesce(f.filled, 0),
                   status = case when coalesce(f.filled, 0) > 0 then 'partially_filled' else 'open' end,
                   status_reason = null, updated_at = now()
              from (select unnest(%s::text[]) as client_order_id) as r
              left join (select client_order_id, sum(qty_shares) as filled from ops.sim_fills
                          where account = %s group by client_order_id) as f using (client_order_id)
             where o.account = %s and o.client_order_id = r.client_order_id
            """,
            (resting, account, account),
        )
        # positions: rebuilt from the fills and the corporate events that remain
        cur.execute(
            "select filled_at, symbol, side, qty_shares, price_usd from ops.sim_fills "
            "where account = %s order by filled_at, symbol",
            (account,),
        )
        fills = [(r[0], r[1], r[2], float(r[3]), float(r[4])) for r in cur.fetchall()]
        book = replayed_positions(fills, position_events(cur, "sim", account))
        cur.execute("delete from ops.sim_positions where account = %s", (account,))
        for symbol, (qty, avg) in book.items():
            cur.execute(
                "insert into ops.sim_positions (account, symbol, qty_shares, avg_price_usd, "
                "market_price_usd) values (%s, %s, %s, %s, %s)",
                (account, symbol, qty, avg, avg),
            )
    return {"orders": len(later), "fills": int(n_fills), "corporate_events": n_events}
