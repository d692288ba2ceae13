"""The built-in simulator broker: orders, fills, positions and cash in PostgreSQL.

Orders rest until an auction fills them (:meth:`SimBroker.fill_auction`, called
with the session's opening or closing prices) or until they are cancelled.
Fills are at the auction price moved against the order by ``slippage_bps``,
with a per-share commission; with volumes given, at most
``max_participation`` of a symbol's volume fills and the rest stays open.

State lives in ``ops.sim_accounts``, ``ops.sim_orders``, ``ops.sim_fills`` and
``ops.sim_positions`` (one set of rows per ``account`` name), so every
process that opens the same account sees the same book. Each method is one
transaction, serialised per account by a row lock.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from quant.exceptions import BrokerError
from quant.execution._position_math import next_position
from quant.execution._types import (
    Account,
    BrokerOrder,
    Fill,
    Order,
    OrderStatus,
    OrderType,
    Position,
    TimeInForce,
)

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

    from quant.config import Settings

__all__ = ["SimBroker"]

_ORDER_COLUMNS = (
    "order_id, client_order_id, symbol, side, qty_shares, filled_qty_shares, status, "
    "order_type, time_in_force, limit_price_usd, reduce_only, strategy, submitted_at, "
    "updated_at, status_reason"
)
_LIVE = ("open", "partially_filled")


def _order_from_row(row: tuple[Any, ...]) -> BrokerOrder:
    return BrokerOrder(
        order_id=row[0],
        client_order_id=row[1],
        symbol=row[2],
        side=row[3],
        qty_shares=row[4],
        filled_qty_shares=row[5],
        status=OrderStatus(row[6]),
        order_type=OrderType(row[7]),
        time_in_force=TimeInForce(row[8]),
        limit_price_usd=row[9],
        reduce_only=row[10],
        strategy=row[11],
        submitted_at=row[12],
        updated_at=row[13],
        status_reason=row[14],
    )


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
        self._conn = conn
        self.account_name = account
        self.slippage_bps = slippage_bps
        self.commission_per_share_usd = commission_per_share_usd
        self.max_participation = max_participation
        with self._tx() as cur:
            cur.execute(
                "insert into ops.sim_accounts (account, cash_usd) values (%s, %s) "
                "on conflict (account) do nothing",
                (account, float(initial_cash_usd)),
            )

    @contextmanager
    def _tx(self) -> Iterator[Any]:
        """One transaction; database failures surface as BrokerError."""
        import psycopg2

        try:
            with self._conn, self._conn.cursor() as cur:
                yield cur
        except psycopg2.Error as exc:
            raise BrokerError(f"sim broker ({self.account_name}): {exc}".strip()) from exc

    @classmethod
    def open(cls, settings: Settings | None = None, **kwargs: Any) -> SimBroker:
        """Connect to the pipeline's database and open an account (kwargs as the constructor)."""
        from quant.db import connect

        return cls(connect(settings), **kwargs)

    def close(self) -> None:
        """Close the database connection."""
        self._conn.close()

    # -- reads ----------------------------------------------------------------------------
    def account(self) -> Account:
        with self._tx() as cur:
            cur.execute(
                "select a.cash_usd, coalesce(sum(p.qty_shares * p.market_price_usd), 0) "
                "from ops.sim_accounts a left join ops.sim_positions p using (account) "
                "where a.account = %s group by a.cash_usd",
                (self.account_name,),
            )
            cash, positions_value = cur.fetchone()
        return Account(equity_usd=cash + positions_value, cash_usd=cash)

    def positions(self) -> list[Position]:
        with self._tx() as cur:
            cur.execute(
                "select symbol, qty_shares, avg_price_usd, market_price_usd "
                "from ops.sim_positions where account = %s and qty_shares <> 0 order by symbol",
                (self.account_name,),
            )
            rows = cur.fetchall()
        return [
            Position(symbol=r[0], qty_shares=r[1], avg_price_usd=r[2], market_price_usd=r[3])
            for r in rows
        ]

    def open_orders(self) -> list[BrokerOrder]:
        with self._tx() as cur:
            cur.execute(
                f"select {_ORDER_COLUMNS} from ops.sim_orders "
                "where account = %s and status in %s order by submitted_at, order_id",
                (self.account_name, _LIVE),
            )
            return [_order_from_row(r) for r in cur.fetchall()]

    def order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        with self._tx() as cur:
            cur.execute(
                f"select {_ORDER_COLUMNS} from ops.sim_orders "
                "where account = %s and client_order_id = %s",
                (self.account_name, client_order_id),
            )
            row = cur.fetchone()
        return None if row is None else _order_from_row(row)

    def fills_since(self, since: datetime) -> list[Fill]:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware (UTC)")
        with self._tx() as cur:
            cur.execute(
                "select fill_id, order_id, client_order_id, symbol, side, qty_shares, price_usd, "
                "commission_usd, filled_at from ops.sim_fills "
                "where account = %s and filled_at >= %s order by filled_at, fill_id",
                (self.account_name, since),
            )
            rows = cur.fetchall()
        return [
            Fill(
                fill_id=str(r[0]),
                order_id=r[1],
                client_order_id=r[2],
                symbol=r[3],
                side=r[4],
                qty_shares=r[5],
                price_usd=r[6],
                commission_usd=r[7],
                filled_at=r[8],
            )
            for r in rows
        ]

    # -- writes ---------------------------------------------------------------------------
    def _lock(self, cur: Any) -> None:
        cur.execute(
            "select 1 from ops.sim_accounts where account = %s for update", (self.account_name,)
        )
        if cur.fetchone() is None:
            raise BrokerError(f"sim account {self.account_name!r} does not exist")

    def _order_id(self, client_order_id: str) -> str:
        digest = hashlib.sha256(f"{self.account_name}\0{client_order_id}".encode()).hexdigest()
        return "sim-" + digest[:20]

    def submit(self, order: Order) -> BrokerOrder:
        now = datetime.now(UTC)
        with self._tx() as cur:
            self._lock(cur)
            cur.execute(
                "select 1 from ops.sim_orders where account = %s and client_order_id = %s",
                (self.account_name, order.client_order_id),
            )
            if cur.fetchone() is not None:
                raise BrokerError(
                    f"duplicate client_order_id {order.client_order_id!r} "
                    f"in sim account {self.account_name!r}"
                )
            cur.execute(
                f"insert into ops.sim_orders (order_id, account, client_order_id, symbol, side, "
                "qty_shares, order_type, time_in_force, limit_price_usd, reduce_only, strategy, "
                "status, submitted_at, updated_at) "
                "values (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 'open', %s, %s) "
                f"returning {_ORDER_COLUMNS}",
                (
                    self._order_id(order.client_order_id),
                    self.account_name,
                    order.client_order_id,
                    order.symbol.upper(),
                    order.side,
                    float(order.qty_shares),
                    str(order.order_type),
                    str(order.time_in_force),
                    order.limit_price_usd,
                    order.reduce_only,
                    order.strategy,
                    now,
                    now,
                ),
            )
            return _order_from_row(cur.fetchone())

    def cancel(self, order_id: str) -> bool:
        with self._tx() as cur:
            self._lock(cur)
            cur.execute(
                "update ops.sim_orders set status = 'cancelled', status_reason = 'cancelled', "
                "updated_at = now() where account = %s and order_id = %s and status in %s "
                "returning order_id",
                (self.account_name, order_id, _LIVE),
            )
            if cur.fetchone() is not None:
                return True
            cur.execute(
                "select 1 from ops.sim_orders where account = %s and order_id = %s",
                (self.account_name, order_id),
            )
            if cur.fetchone() is None:
                raise BrokerError(
                    f"unknown order {order_id!r} in sim account {self.account_name!r}"
                )
            return False

    def cancel_all(self) -> int:
        with self._tx() as cur:
            self._lock(cur)
            cur.execute(
                "update ops.sim_orders set status = 'cancelled', status_reason = 'cancel_all', "
                "updated_at = now() where account = %s and status in %s",
                (self.account_name, _LIVE),
            )
            return cur.rowcount

    def mark(self, prices: Mapping[str, float]) -> None:
        """Set the market price of held symbols (what ``account().equity_usd`` values them at)."""
        with self._tx() as cur:
            for symbol, price in prices.items():
                if price > 0 and math.isfinite(price):
                    cur.execute(
                        "update ops.sim_positions set market_price_usd = %s, updated_at = now() "
                        "where account = %s and symbol = %s",
                        (float(price), self.account_name, symbol.upper()),
                    )

    def fill_auction(
        self,
        prices: Mapping[str, float],
        *,
        at: datetime,
        auction: Literal["open", "close"] = "open",
        volumes: Mapping[str, float] | None = None,
    ) -> list[Fill]:
        """Execute the live orders that take part in this auction.

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
        bps = self.slippage_bps / 10_000.0
        fills: list[Fill] = []
        with self._tx() as cur:
            self._lock(cur)
            cur.execute(
                f"select {_ORDER_COLUMNS} from ops.sim_orders where account = %s "
                "and status in %s and time_in_force in %s order by submitted_at, order_id",
                (self.account_name, _LIVE, tifs),
            )
            orders = [_order_from_row(r) for r in cur.fetchall()]
            capacity: dict[str, float] = {}
            if volumes is not None:
                capacity = {
                    s.upper(): float(math.floor(self.max_participation * v)) for s, v in volumes.items()
                }
            for order in orders:
                price = prices.get(order.symbol)
                if price is None or not (price > 0 and math.isfinite(price)):
                    continue
                if order.order_type is OrderType.LIMIT:
                    limit = order.limit_price_usd or 0.0
                    if (order.side == "buy" and price > limit) or (
                        order.side == "sell" and price < limit
                    ):
                        continue
                qty = order.remaining_qty_shares
                position = self._position_qty(cur, order.symbol)
                if order.reduce_only:
                    shrinkable = (
                        abs(position)
                        if (position > 0 and order.side == "sell")
                        or (position < 0 and order.side == "buy")
                        else 0.0
                    )
                    if shrinkable <= 0:
                        self._set_status(
                            cur, order, OrderStatus.CANCELLED, "reduce_only: no position to reduce"
                        )
                        continue
                    qty = min(qty, shrinkable)
                if volumes is not None:
                    qty = min(qty, capacity.get(order.symbol, 0.0))
                    if qty <= 0:
                        continue
                    capacity[order.symbol] -= qty
                fill_price = price * (1 + bps) if order.side == "buy" else price * (1 - bps)
                if order.order_type is OrderType.LIMIT:
                    limit = order.limit_price_usd or fill_price
                    fill_price = (
                        min(fill_price, limit) if order.side == "buy" else max(fill_price, limit)
                    )
                fills.append(self._execute(cur, order, qty, fill_price, price, position, at))
        return fills

    def _position_qty(self, cur: Any, symbol: str) -> float:
        cur.execute(
            "select qty_shares from ops.sim_positions where account = %s and symbol = %s",
            (self.account_name, symbol),
        )
        row = cur.fetchone()
        return 0.0 if row is None else row[0]

    def _set_status(self, cur: Any, order: BrokerOrder, status: OrderStatus, reason: str) -> None:
        cur.execute(
            "update ops.sim_orders set status = %s, status_reason = %s, updated_at = now() "
            "where order_id = %s",
            (str(status), reason, order.order_id),
        )

    def _execute(
        self,
        cur: Any,
        order: BrokerOrder,
        qty: float,
        fill_price: float,
        auction_price: float,
        position: float,
        at: datetime,
    ) -> Fill:
        signed = qty if order.side == "buy" else -qty
        commission = qty * self.commission_per_share_usd
        filled = order.filled_qty_shares + qty
        if filled >= order.qty_shares:
            status, reason = OrderStatus.FILLED, None
        elif order.reduce_only and abs(position + signed) == 0:
            status, reason = OrderStatus.CANCELLED, "reduce_only: position closed"
        else:
            status, reason = OrderStatus.PARTIALLY_FILLED, None
        cur.execute(
            "update ops.sim_orders set filled_qty_shares = %s, status = %s, status_reason = %s, "
            "updated_at = now() where order_id = %s",
            (filled, str(status), reason, order.order_id),
        )
        cur.execute(
            "update ops.sim_accounts set cash_usd = cash_usd - %s - %s, updated_at = now() "
            "where account = %s",
            (signed * fill_price, commission, self.account_name),
        )
        cur.execute(
            "select qty_shares, avg_price_usd from ops.sim_positions "
            "where account = %s and symbol = %s",
            (self.account_name, order.symbol),
        )
        row = cur.fetchone()
        old_qty, old_avg = (0.0, 0.0) if row is None else row
        new_qty, new_avg = next_position(old_qty, old_avg, signed, fill_price)
        cur.execute(
            "insert into ops.sim_positions (account, symbol, qty_shares, avg_price_usd, "
            "market_price_usd, updated_at) values (%s, %s, %s, %s, %s, now()) "
            "on conflict (account, symbol) do update set qty_shares = excluded.qty_shares, "
            "avg_price_usd = excluded.avg_price_usd, market_price_usd = excluded.market_price_usd, "
            "updated_at = now()",
            (self.account_name, order.symbol, new_qty, new_avg, auction_price),
        )
        cur.execute(
            "insert into ops.sim_fills (account, order_id, client_order_id, symbol, side, "
            "qty_shares, price_usd, commission_usd, filled_at) "
            "values (%s, %s, %s, %s, %s, %s, %s, %s, %s) returning fill_id",
            (
                self.account_name,
                order.order_id,
                order.client_order_id,
                order.symbol,
                order.side,
                qty,
                fill_price,
                commission,
                at,
            ),
        )
        fill_id = cur.fetchone()[0]
        return Fill(
            fill_id=str(fill_id),
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            symbol=order.symbol,
            side=order.side,
            qty_shares=qty,
            price_usd=fill_price,
            commission_usd=commission,
            filled_at=at,
        )
