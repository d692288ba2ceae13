"""Rewinding a simulated account to the start of a session.

Simulator accounts of backfills and of replays of past sessions are a function
of the sessions run through them, in order. Rerunning session D on such an
account first rewinds it to the state it had when D's run started, so that a
backfill run twice, or a replay rerun, gives the same orders and fills:

- orders generated for D and later sessions are removed (``ops.orders``,
  ``ops.execution_runs``, ``ops.sim_orders``);
- fills at or after D's opening auction are removed (``ops.sim_fills``,
  ``ops.fills``) and their cash flows reversed; the previous session's orders,
  which those fills belonged to, rest again at the broker;
- positions are rebuilt from the fills that remain.

The broker accounts of live and paper trading are never rewound (the caller
only does this for separate simulator accounts).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from quant.execution._position_math import next_position

__all__ = ["has_activity_from", "rewind_sim_account"]

def has_activity_from(conn: Any, namespace: str, session: date) -> bool:
    """Whether the account's namespace has orders for a session after ``session``."""
    with conn.cursor() as cur:
        cur.execute(
            "select 1 from ops.execution_runs where namespace = %s and logical_date > %s limit 1",
            (namespace, session),
        )
        return cur.fetchone() is not None


def _rebuilt_positions(fills: list[tuple[str, str, float, float]]) -> dict[str, tuple[float, float]]:
    """Positions (qty, average price) from fills (symbol, side, qty, price) in time order."""
    book: dict[str, tuple[float, float]] = {}
    for symbol, side, qty, price in fills:
        old_qty, old_avg = book.get(symbol, (0.0, 0.0))
        book[symbol] = next_position(old_qty, old_avg, qty if side == "buy" else -qty, price)
    return {s: v for s, v in book.items() if v[0] != 0.0}


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
        Its order namespace in ``ops.orders`` / ``ops.execution_runs``.
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
            return {"orders": 0, "fills": 0}
        # cash: reverse the fills being removed
        cur.execute(
            "select coalesce(sum(case when side = 'buy' then qty_shares * price_usd "
            "else -qty_shares * price_usd end + commission_usd), 0), count(*) "
            "from ops.sim_fills where account = %s and filled_at >= %s",
            (account, cutoff),
        )
        cash_back, n_fills = cur.fetchone()
        cur.execute(
            "update ops.sim_accounts set cash_usd = cash_usd + %s, updated_at = now() "
            "where account = %s",
            (cash_back, account),
        )
        cur.execute(
            "delete from ops.sim_fills where account = %s and filled_at >= %s", (account, cutoff)
        )
        cur.execute(
            "delete from ops.fills where broker = 'sim' and account = %s and filled_at >= %s",
            (account, cutoff),
        )
        # orders of the session and later: gone; the previous session's: resting again
        cur.execute(
            "select client_order_id from ops.orders where namespace = %s and logical_date >= %s",
            (namespace, session),
        )
        later = [r[0] for r in cur.fetchall()]
        cur.execute(
            "delete from ops.sim_orders where account = %s and client_order_id = any(%s)",
            (account, later),
        )
        cur.execute(
            "delete from ops.orders where namespace = %s and logical_date >= %s", (namespace, session)
        )
        cur.execute(
            "delete from ops.execution_runs where namespace = %s and logical_date >= %s",
            (namespace, session),
        )
        cur.execute(
            "delete from ops.reconciliation_breaks where broker = 'sim' and account = %s "
            "and logical_date >= %s",
            (account, session),
        )
        cur.execute(
            "select client_order_id from ops.orders where namespace = %s and logical_date = %s "
            "and broker_order_id is not null",
            (namespace, previous_session),
        )
        resting = [r[0] for r in cur.fetchall()]
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
        cur.execute(
            "update ops.orders set status = 'submitted', filled_qty_shares = 0, "
            "avg_fill_price_usd = null, updated_at = now() "
            "where client_order_id = any(%s) and status in ('partially_filled', 'filled', 'cancelled')",
            (resting,),
        )
        # positions: rebuilt from the fills that remain
        for table, where, params in (
            ("ops.sim_fills", "account = %s", (account,)),
            ("ops.fills", "broker = 'sim' and account = %s", (account,)),
        ):
            cur.execute(
                f"select symbol, side, qty_shares, price_usd from {table} where {where} "
                "order by filled_at, symbol",
                params,
            )
            book = _rebuilt_positions([(r[0], r[1], float(r[2]), float(r[3])) for r in cur.fetchall()])
            if table == "ops.sim_fills":
                cur.execute("delete from ops.sim_positions where account = %s", (account,))
                for symbol, (qty, avg) in book.items():
                    cur.execute(
                        "insert into ops.sim_positions (account, symbol, qty_shares, avg_price_usd, "
                        "market_price_usd) values (%s, %s, %s, %s, %s)",
                        (account, symbol, qty, avg, avg),
                    )
            else:
                cur.execute(
                    "delete from ops.positions where broker = 'sim' and account = %s", (account,)
                )
                for symbol, (qty, avg) in book.items():
                    cur.execute(
                        "insert into ops.positions (broker, account, symbol, qty_shares, "
                        "avg_price_usd) values ('sim', %s, %s, %s, %s)",
                        (account, symbol, qty, avg),
                    )
    return {"orders": len(later), "fills": int(n_fills)}
