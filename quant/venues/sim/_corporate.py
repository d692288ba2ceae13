"""Corporate actions in a simulated account: splits, cash dividends and closings.

On a split's ex-date the position's shares are multiplied by the ratio (whole
shares; the fractional remainder is paid as cash in lieu at the post-split
price), its average cost and market price divided by it, and its resting orders
scaled the same way (whole shares, limits divided; an order left with no share
is cancelled). On a dividend's ex-date the cash is credited (a short is
debited). A closing (delisted symbol, or one without a bar for too many
sessions) sells the position, or buys a short back, at the last known price
with no commission and cancels the symbol's live orders.

Each action is applied once per account, symbol, session and type, in one
transaction with its record in the books
(:func:`quant.ledger.record_corporate_events`), which applies it to the
pipeline's own positions as well. A rewind takes them back
(:mod:`quant.venues.sim._rewind`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from quant import ledger
from quant.ledger import CorporateEvent, OrderAdjustment, event_outcome, split_shares
from quant.typing import CorporateAction

if TYPE_CHECKING:
    from quant.venues.sim._store import SimAccountStore

__all__ = ["apply_corporate_actions"]

_ORDER = {"split": 0, "dividend": 1, "delisting": 2, "dead_symbol": 2}


def apply_corporate_actions(
    store: SimAccountStore, actions: Sequence[CorporateAction]
) -> list[CorporateEvent]:
    """Apply the actions on positions the account holds; the events applied now.

    Actions on symbols the account does not hold, and actions the account already
    applied (same symbol, session and type), are skipped. One transaction, under
    the account's lock.
    """
    if not actions:
        return []
    account = store.account_name
    symbols = sorted({a.symbol.upper() for a in actions})
    with store.locked() as cur:
        row = cur.fetchone()
        if row is None:
            raise store.missing()
        cash = float(row[0])
        cur.execute(
            "select symbol, qty_shares, avg_price_usd, market_price_usd from ops.sim_positions "
            "where account = %s and symbol = any(%s) and qty_shares <> 0",
            (account, symbols),
        )
        book = {r[0]: (float(r[1]), float(r[2]), float(r[3])) for r in cur.fetchall()}
        if not book:
            return []
        cur.execute(
            "select order_id, client_order_id, symbol, qty_shares, filled_qty_shares, "
            "limit_price_usd from ops.sim_orders where account = %s and symbol = any(%s) "
            "and status in ('open', 'partially_filled') order by submitted_at, order_id",
            (account, sorted(book)),
        )
        live = {r[0]: r for r in cur.fetchall()}  # order id -> row, updated as actions apply
        done: set[tuple[str, str, object]] = set()
        for session in sorted({a.session for a in actions}):
            done |= {(s, t, session) for s, t in
                     ledger.applied_corporate_events(cur, "sim", account, session)}
        events: list[CorporateEvent] = []
        for a in sorted(actions, key=lambda a: (a.effective_at, _ORDER[a.action_type], a.symbol)):
            symbol = a.symbol.upper()
            if symbol not in book or (symbol, a.action_type, a.session) in done:
                continue
            qty, avg, mark = book[symbol]
            if qty == 0.0:  # closed by an earlier action of the batch
                continue
            new_qty, new_avg, moved = event_outcome(
                qty, avg, a.action_type, split_ratio=a.split_ratio,
                dividend_usd=a.dividend_usd, price_usd=a.price_usd,
            )
            adjusted = _adjust_orders([o for o in live.values() if o[2] == symbol], a)
            if a.action_type == "split":
                mark = mark / (a.split_ratio or 1.0)
            cash += moved
            book[symbol] = (new_qty, new_avg, mark)
            done.add((symbol, a.action_type, a.session))
            events.append(CorporateEvent(
                action=a, qty_before_shares=qty, qty_after_shares=new_qty,
                avg_price_before_usd=avg, avg_price_after_usd=new_avg, cash_usd=moved,
                orders=tuple(adj for adj, _ in adjusted),
            ))
            for adj, order_id in adjusted:
                if adj.cancelled:
                    del live[order_id]
                else:
                    live[order_id] = (order_id, adj.client_order_id, symbol, adj.qty_after_shares,
                                      adj.filled_after_shares, adj.limit_after_usd)
            _write_orders(cur, account, adjusted, a.action_type)
        if not events:
            return []
        for symbol in sorted({e.action.symbol.upper() for e in events}):
            qty, avg, mark = book[symbol]
            if qty == 0.0:
                cur.execute(
                    "delete from ops.sim_positions where account = %s and symbol = %s",
                    (account, symbol),
                )
            else:
                cur.execute(
                    "update ops.sim_positions set qty_shares = %s, avg_price_usd = %s, "
                    "market_price_usd = %s, updated_at = now() "
                    "where account = %s and symbol = %s",
                    (qty, avg, mark, account, symbol),
                )
        cur.execute(
            "update ops.sim_accounts set cash_usd = %s, updated_at = now() where account = %s",
            (cash, account),
        )
        ledger.record_corporate_events(cur, "sim", account, events)
    return events


def _adjust_orders(
    live: list[tuple[Any, ...]], action: CorporateAction
) -> list[tuple[OrderAdjustment, str]]:
    """The symbol's live orders after the action, each with its simulator order id: a
    split scales them (whole shares, limit divided), a closing cancels them, a dividend
    leaves them."""
    if action.action_type == "dividend":
        return []
    out = []
    for order_id, cid, _symbol, qty, filled, limit in live:
        qty, filled = float(qty), float(filled)
        if action.action_type == "split":
            ratio = action.split_ratio or 1.0
            new_qty = abs(split_shares(qty, ratio)[0])
            new_filled = min(abs(split_shares(filled, ratio)[0]), new_qty)
            new_limit = None if limit is None else float(limit) / ratio
            cancelled = new_qty - new_filled <= 0
        else:
            new_qty, new_filled, new_limit, cancelled = qty, filled, limit, True
        out.append((
            OrderAdjustment(
                client_order_id=cid, qty_before_shares=qty, filled_before_shares=filled,
                limit_before_usd=None if limit is None else float(limit),
                qty_after_shares=new_qty if new_qty > 0 else qty,
                filled_after_shares=new_filled if new_qty > 0 else filled,
                limit_after_usd=new_limit, cancelled=cancelled,
            ),
            order_id,
        ))
    return out


def _write_orders(
    cur: Any, account: str, adjusted: list[tuple[OrderAdjustment, str]], action_type: str
) -> None:
    """The orders' new quantities, or their cancellation, in ``ops.sim_orders``."""
    reason = f"corporate action: {action_type}"
    for adj, order_id in adjusted:
        if adj.cancelled:
            cur.execute(
                "update ops.sim_orders set status = 'cancelled', status_reason = %s, "
                "updated_at = now() where account = %s and order_id = %s",
                (reason, account, order_id),
            )
        else:
            cur.execute(
                "update ops.sim_orders set qty_shares = %s, filled_qty_shares = %s, "
                "limit_price_usd = %s, updated_at = now() where account = %s and order_id = %s",
                (adj.qty_after_shares, adj.filled_after_shares, adj.limit_after_usd, account,
                 order_id),
            )
