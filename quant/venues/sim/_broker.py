"""The built-in simulator broker: orders, fills, positions and cash in PostgreSQL.

Orders rest until an auction fills them (:meth:`SimBroker.fill_auction`, called
with the session's opening or closing prices) or until they are cancelled.
Fills are at the auction price moved against the order by ``slippage_bps``,
with a per-share commission; with volumes given, at most
``max_participation`` of a symbol's volume fills and the rest stays open.

The account's state is the simulator's store (:mod:`quant.venues.sim._store`,
tables ``ops.sim_*``): each method is one transaction, serialised per account
by a row lock, and the batch methods (:meth:`SimBroker.submit_many`,
:meth:`SimBroker.cancel_many`, :meth:`SimBroker.orders_by_client_ids`) and
:meth:`SimBroker.fill_auction` are set-based, a few statements per call whatever
the number of orders. The auction itself is computed in memory by the matching
model (:mod:`quant.venues.sim._matching`).
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal

from quant.typing import (
    Account,
    BrokerOrder,
    CorporateAction,
    Fill,
    Order,
    OrderStatus,
    Position,
)
from quant.venues.sim._corporate import apply_corporate_actions
from quant.venues.sim._matching import _Auction
from quant.venues.sim._store import SimAccountStore

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from quant.config import Settings
    from quant.ledger import CorporateEvent

__all__ = ["SimBroker"]


class SimBroker:
    """A simulated broker account persisted in PostgreSQL; implements :class:`Broker`.

    Parameters
    ----------
    conn : psycopg2 connection
        Connection to the pipeline's database (migrated). The broker commits
        its own transactions on it.
    account : str
        Name of the simulated account; created with ``initial_cash_usd`` on
        first use.
    initial_cash_usd : float
        Cash of a new account.
    slippage_bps : float
        Fill price = auction price x (1 + bps/10^4) for buys, (1 - bps/10^4) for sells.
    commission_per_share_usd : float
        Commission charged per filled share.
    max_participation : float
        With volumes given to :meth:`fill_auction`, the largest share of a
        symbol's volume that fills in one auction (0 < x <= 1).
    """

    name = "sim"

    def __init__(
        self,
        conn: PgConnection,
        *,
        account: str = "paper",
        initial_cash_usd: float = 1_000_000.0,
        slippage_bps: float = 5.0,
        commission_per_share_usd: float = 0.005,
        max_participation: float = 0.1,
    ) -> None:
        if not account:
            raise ValueError("account must not be empty")
        if not (initial_cash_usd >= 0 and math.isfinite(initial_cash_usd)):
            raise ValueError(f"initial_cash_usd must be >= 0, got {initial_cash_usd}")
        if not (slippage_bps >= 0 and math.isfinite(slippage_bps)):
            raise ValueError(f"slippage_bps must be >= 0, got {slippage_bps}")
        if not (commission_per_share_usd >= 0 and math.isfinite(commission_per_share_usd)):
            raise ValueError(
                f"commission_per_share_usd must be >= 0, got {commission_per_share_usd}"
            )
        if not (0 < max_participation <= 1):
            raise ValueError(f"max_participation must be in (0, 1], got {max_participation}")
        self._store = SimAccountStore(conn, account)
        self.account_name = account
        self.slippage_bps = slippage_bps
        self.commission_per_share_usd = commission_per_share_usd
        self.max_participation = max_participation
        self._store.create_account(float(initial_cash_usd))

    @contextmanager
    def _locked(
        self, then: str | None = None, params: Mapping[str, Any] | None = None
    ) -> Iterator[Any]:
        """A transaction holding the account's row lock (:meth:`SimAccountStore.locked`)."""
        with self._store.locked(then, params) as cur:
            yield cur

    @classmethod
    def open(cls, settings: Settings | None = None, **kwargs: Any) -> SimBroker:
        """Connect to the pipeline's database and open an account (kwargs as the constructor)."""
        from quant.db import connect

        return cls(connect(settings), **kwargs)

    def close(self) -> None:
        """Close the database connection."""
        self._store.close()

    # -- reads ----------------------------------------------------------------------------
    def account(self) -> Account:
        return self._store.account()

    def positions(self) -> list[Position]:
        return self._store.positions()

    def book(self) -> tuple[Account, list[Position]]:
        """:meth:`account` and :meth:`positions` read together, in one query."""
        return self._store.book()

    def open_orders(self) -> list[BrokerOrder]:
        return self._store.open_orders()

    def order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        return self._store.order_by_client_id(client_order_id)

    def orders_by_client_ids(self, client_order_ids: Sequence[str]) -> dict[str, BrokerOrder]:
        """The orders submitted with these client order ids, in any status, in one query.

        Returns
        -------
        dict of str to BrokerOrder
            Keyed by client order id; ids the account does not have are absent.
        """
        if not client_order_ids:
            return {}
        return self._store.orders_by_client_ids(list(dict.fromkeys(client_order_ids)))

    def fills_since(self, since: datetime) -> list[Fill]:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware (UTC)")
        return self._store.fills_since(since)

    # -- writes ---------------------------------------------------------------------------
    def _order_id(self, client_order_id: str) -> str:
        digest = hashlib.sha256(f"{self.account_name}\0{client_order_id}".encode()).hexdigest()
        return "sim-" + digest[:20]

    def submit(self, order: Order) -> BrokerOrder:
        return self.submit_many([order])[0]

    def submit_many(self, orders: Sequence[Order]) -> list[BrokerOrder]:
        """Place a batch of orders in one transaction: all of them or none.

        Orders of a batch rest in the batch's order: their ``submitted_at`` is
        the time of the call plus one microsecond per position in the batch, so
        an auction executes them as if they had been submitted one by one.

        Parameters
        ----------
        orders : sequence of Order

        Returns
        -------
        list of BrokerOrder
            One per order, in the order given.

        Raises
        ------
        BrokerError
            A client order id appears twice in the batch or is already stored
            in the account (every such id is named; nothing is inserted).
        """
        if not orders:
            return []
        seen: set[str] = set()
        repeated: list[str] = []
        for order in orders:
            cid = order.client_order_id
            if cid in seen and cid not in repeated:
                repeated.append(cid)
            seen.add(cid)
        rows = [
            (
                self._order_id(o.client_order_id),
                o.client_order_id,
                o.symbol.upper(),
                o.side,
                float(o.qty_shares),
                str(o.order_type),
                str(o.time_in_force),
                o.limit_price_usd,
                bool(o.reduce_only),
                o.strategy,
            )
            for o in orders
        ]
        client_order_ids = [o.client_order_id for o in orders]
        if repeated:
            self._store.refuse(client_order_ids, repeated)
        now = datetime.now(UTC)
        self._store.place(rows, client_order_ids, now)
        # the rows as stored: nothing in them is computed by the database
        stamps = [now + timedelta(microseconds=i) for i in range(len(rows))]
        return [
            BrokerOrder(
                order_id=r[0],
                client_order_id=r[1],
                symbol=r[2],
                side=r[3],
                qty_shares=r[4],
                filled_qty_shares=0.0,
                status=OrderStatus.OPEN,
                order_type=o.order_type,
                time_in_force=o.time_in_force,
                limit_price_usd=None if r[7] is None else float(r[7]),
                reduce_only=r[8],
                strategy=r[9],
                submitted_at=at,
                updated_at=at,
            )
            for o, r, at in zip(orders, rows, stamps, strict=True)
        ]

    def cancel(self, order_id: str) -> bool:
        return self.cancel_many([order_id]) == 1

    def cancel_many(self, order_ids: Sequence[str]) -> int:
        """Cancel several orders in one transaction; returns how many were live.

        Raises
        ------
        BrokerError
            An id is not an order of this account (nothing is cancelled).
        """
        if not order_ids:
            return 0
        return self._store.cancel(list(dict.fromkeys(order_ids)))

    def cancel_all(self) -> int:
        return self._store.cancel_all()

    def mark(self, prices: Mapping[str, float]) -> None:
        """Set the market price of held symbols (what ``account().equity_usd`` values them at)."""
        marks = {s.upper(): float(p) for s, p in prices.items() if p > 0 and math.isfinite(p)}
        if not marks:
            return
        self._store.mark(marks)

    def apply_corporate_actions(self, actions: Sequence[CorporateAction]) -> list[CorporateEvent]:
        """Apply splits, dividends and closings to the positions held; the events applied.

        Each action applies once per symbol, session and type (a second call for the
        same session applies nothing), in one transaction with its record in the
        books (``ops.corporate_events``); see :mod:`quant.venues.sim._corporate`.
        """
        return apply_corporate_actions(self._store, actions)

    def fill_auction(
        self,
        prices: Mapping[str, float],
        *,
        at: datetime,
        auction: Literal["open", "close"] = "open",
        volumes: Mapping[str, float] | None = None,
    ) -> list[Fill]:
        """Execute the live orders that take part in this auction.

        One transaction: the cash, the orders and the positions of their
        symbols are read in one query, the auction runs in memory (orders by
        submission time, each seeing the positions left by the ones before
        it), and the orders, cash, positions and fills are written back in
        one statement.

        Parameters
        ----------
        prices : mapping of str to float
            Auction price per symbol, USD. Orders in symbols without a price stay open.
        at : datetime
            UTC time of the auction (the fills' ``filled_at``).
        auction : {"open", "close"}
            ``opg`` orders fill only at the open, ``cls`` only at the close,
            ``day`` orders at either.
        volumes : mapping of str to float, optional
            Auction (or session) volume per symbol, shares; at most
            ``max_participation`` of it fills across the symbol's orders.

        Returns
        -------
        list of Fill
            In the order they were executed (orders by submission time).
        """
        if at.tzinfo is None:
            raise ValueError("at must be timezone-aware (UTC)")
        if auction not in ("open", "close"):
            raise ValueError(f"auction must be 'open' or 'close', got {auction!r}")
        tifs = ("day", "opg") if auction == "open" else ("day", "cls")
        capacity: dict[str, float] = {}
        if volumes is not None:
            capacity = {
                s.upper(): float(math.floor(self.max_participation * v)) for s, v in volumes.items()
            }
        with self._store.auction(tifs) as inputs:
            if not inputs.orders:
                return []
            run = _Auction(
                slippage_bps=self.slippage_bps,
                commission_per_share_usd=self.commission_per_share_usd,
                prices=prices,
                capacity=capacity if volumes is not None else None,
                book=inputs.positions,
                cash_usd=inputs.cash_usd,
                at=at,
            )
            for order in inputs.orders:
                run.execute(order)
            inputs.write(run)
        return run.fills
