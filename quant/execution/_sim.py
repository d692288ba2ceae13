"""The built-in simulator broker: orders, fills, positions and cash in PostgreSQL.

Orders rest until an auction fills them (:meth:`SimBroker.fill_auction`, called
with the session's opening or closing prices) or until they are cancelled.
Fills are at the auction price moved against the order by ``slippage_bps``,
with a per-share commission; with volumes given, at most
``max_participation`` of a symbol's volume fills and the rest stays open.

State lives in ``ops.sim_accounts``, ``ops.sim_orders``, ``ops.sim_fills`` and
``ops.sim_positions`` (one set of rows per ``account`` name), so every
process that opens the same account sees the same book. Each method is one
transaction, serialised per account by a row lock. The batch methods
(:meth:`SimBroker.submit_many`, :meth:`SimBroker.cancel_many`,
:meth:`SimBroker.orders_by_client_ids`) and :meth:`SimBroker.fill_auction`
are set-based: a few statements per call whatever the number of orders, a
batch travelling as one array text per column. A backtest calls the broker
thousands of times, so round trips are counted too: the lock travels with
the BEGIN and the query after it, a write travels with the COMMIT (what it
wrote checked in the statement itself, by ``ops.sim_require``), and single
reads skip BEGIN and COMMIT.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, NamedTuple

from quant.exceptions import BrokerError
from quant.ledger import next_position
from quant.typing import (
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
# Orders of the account by a list of client order ids (named parameters: the ids' array
# text, and ``account``): one probe of the (account, client_order_id) index per id,
# whatever the planner's statistics say about the account's size.
_BY_CLIENT_ID = (
    "unnest(%({ids})s::text[]) as k (client_order_id) cross join lateral ("
    "select {columns} from ops.sim_orders as s where s.account = %(account)s "
    "and s.client_order_id = k.client_order_id limit 1) as o"
)


# ``ops.sim_require(ok, code, message)``: a check inside a statement, failing it with
# SQLSTATE ``code`` unless ``ok``, so that a write and the check of what it did can
# travel with the COMMIT. The codes (class QS) are the simulator's own.
_REQUIRE = "ops.sim_require"
_NO_ACCOUNT = "QSA01"  # the account has no row
_FILL_WITHOUT_ORDER = "QSA02"  # a fill whose order is not among the ones its auction fills
_CHECKS = (_NO_ACCOUNT, _FILL_WITHOUT_ORDER)


# Columns passed as one array each (``unnest``): a new order, an order's fill state, a
# position, a fill. Set-based statements take a batch as parallel arrays.
_NEW_ORDER = {
    "order_id": "text",
    "client_order_id": "text",
    "symbol": "text",
    "side": "text",
    "qty_shares": "double precision",
    "order_type": "text",
    "time_in_force": "text",
    "limit_price_usd": "double precision",
    "reduce_only": "boolean",
    "strategy": "text",
}
_ORDER_FILL_STATE = {
    "order_id": "text",
    "filled_qty_shares": "double precision",
    "status": "text",
    "status_reason": "text",
}
_POSITION = {
    "symbol": "text",
    "qty_shares": "double precision",
    "avg_price_usd": "double precision",
    "market_price_usd": "double precision",
}
_FILL = {
    "fill_id": "bigint",
    "order_id": "text",
    "client_order_id": "text",
    "symbol": "text",
    "side": "text",
    "qty_shares": "double precision",
    "price_usd": "double precision",
    "commission_usd": "double precision",
}


def _unnest(columns: Mapping[str, str], prefix: str) -> str:
    """``unnest(%(prefix_a)s::type[], ...)`` over the array parameters of ``columns``
    (named as :func:`_arrays` names them), as ``v (a, ..., n)`` with ``n`` the
    position in the batch (1, 2, ...)."""
    arrays = ", ".join(f"%({prefix}_{c})s::{t}[]" for c, t in columns.items())
    return f"unnest({arrays}) with ordinality as v ({', '.join(columns)}, n)"


def _sql_array(values: Sequence[Any], sql_type: str) -> str:
    """The text form (``{...}``) of a PostgreSQL array of ``values``; None is NULL.

    A batch goes to the server as one string per column, parsed there by the
    array type's input function: much cheaper, on both sides, than an
    ``ARRAY[...]`` expression of one parameter per value. Floats are written
    with ``repr`` (the shortest text that reads back as the same double).
    """
    if not values:
        return "{}"
    if sql_type == "text":
        if None in values:
            return (
                "{"
                + ",".join("NULL" if v is None else _sql_array([v], "text")[1:-1] for v in values)
                + "}"
            )
        # PostgreSQL text cannot hold NUL, so it separates the values while they are escaped
        joined = "\0".join(values)
        if joined.count("\0") != len(values) - 1:
            raise ValueError("text for PostgreSQL cannot contain NUL characters")
        body = joined.replace("\\", "\\\\").replace('"', '\\"')
        return '{"' + body.replace("\0", '","') + '"}'
    if sql_type == "double precision":
        if None in values:
            return "{" + ",".join("NULL" if v is None else repr(float(v)) for v in values) + "}"
        return "{" + ",".join(map(repr, map(float, values))) + "}"
    if sql_type == "bigint":
        return "{" + ",".join("NULL" if v is None else str(int(v)) for v in values) + "}"
    if sql_type == "boolean":
        return "{" + ",".join("NULL" if v is None else ("t" if v else "f") for v in values) + "}"
    raise ValueError(f"no array form for SQL type {sql_type!r}")


def _arrays(
    columns: Mapping[str, str], rows: Sequence[Sequence[Any]], prefix: str
) -> dict[str, str]:
    """Rows (tuples in the order of ``columns``) as one array text per column, the
    parameters of :func:`_unnest` with the same ``prefix``."""
    lists = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    if len(lists) != len(columns):
        raise ValueError(f"rows of {len(lists)} values for {len(columns)} columns")
    return {
        f"{prefix}_{name}": _sql_array(values, sql_type)
        for (name, sql_type), values in zip(columns.items(), lists, strict=True)
    }


_STATUS = {s.value: s for s in OrderStatus}
_TYPE = {t.value: t for t in OrderType}
_TIF = {t.value: t for t in TimeInForce}


def _order_from_row(row: tuple[Any, ...]) -> BrokerOrder:
    return BrokerOrder(
        order_id=row[0],
        client_order_id=row[1],
        symbol=row[2],
        side=row[3],
        qty_shares=row[4],
        filled_qty_shares=row[5],
        status=_STATUS[row[6]],
        order_type=_TYPE[row[7]],
        time_in_force=_TIF[row[8]],
        limit_price_usd=row[9],
        reduce_only=row[10],
        strategy=row[11],
        submitted_at=row[12],
        updated_at=row[13],
        status_reason=row[14],
    )


def _fill_from_row(row: Sequence[Any], filled_at: datetime) -> Fill:
    """A fill from its columns ``fill_id, order_id, client_order_id, symbol, side,
    qty_shares, price_usd, commission_usd`` (in that order)."""
    return Fill(
        fill_id=str(row[0]),
        order_id=row[1],
        client_order_id=row[2],
        symbol=row[3],
        side=row[4],
        qty_shares=row[5],
        price_usd=row[6],
        commission_usd=row[7],
        filled_at=filled_at,
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
        self._by_hand = self._committed = False  # the state of :meth:`_tx`
        self.account_name = account
        self.slippage_bps = slippage_bps
        self.commission_per_share_usd = commission_per_share_usd
        self.max_participation = max_participation
        self._single(
            "insert into ops.sim_accounts (account, cash_usd) values (%s, %s) "
            "on conflict (account) do nothing",
            (account, float(initial_cash_usd)),
        )

    def _idle(self) -> bool:
        """No transaction open on the connection, and it is not in autocommit mode."""
        from psycopg2.extensions import STATUS_READY

        return not self._conn.autocommit and self._conn.status == STATUS_READY

    @contextmanager
    def _tx(
        self, first: str | None = None, params: Any = (), *, commit: bool = False
    ) -> Iterator[Any]:
        """One transaction, whose first statement is ``first`` (run before the body).

        On an idle connection the transaction is delimited by hand (the
        connection in autocommit meanwhile) so that the BEGIN travels with the
        first statement, and with ``commit`` the COMMIT too (``first`` is then
        the whole transaction): round trips saved, which count when a backtest
        makes thousands of calls. Otherwise (a caller's transaction is open)
        the connection's own handling is used, which commits it as any
        psycopg2 ``with conn`` block does. Database failures surface as
        BrokerError (a failed :data:`_REQUIRE` check as its message); any
        failure rolls the transaction back.
        """
        import psycopg2

        conn = self._conn
        try:
            if not self._idle():
                with conn, conn.cursor() as cur:
                    if first is not None:
                        cur.execute(first, params)
                    yield cur
                return
            conn.autocommit = True
            self._by_hand, self._committed = True, False
            try:
                with conn.cursor() as cur:
                    try:
                        if first is None:
                            cur.execute("begin")
                        else:
                            cur.execute(f"begin; {first}{'; commit' if commit else ''}", params)
                            self._committed = commit
                        yield cur
                        if not self._committed:
                            cur.execute("commit")
                    except BaseException:
                        with suppress(psycopg2.Error):  # the failure being raised says more
                            cur.execute("rollback")
                        raise
            finally:
                self._by_hand = False
                if not conn.closed:
                    conn.autocommit = False
        except psycopg2.Error as exc:
            if exc.pgcode == _NO_ACCOUNT:
                raise self._missing() from exc
            if exc.pgcode in _CHECKS:
                message = exc.diag.message_primary
                raise BrokerError(f"sim broker ({self.account_name}): {message}") from exc
            raise BrokerError(f"sim broker ({self.account_name}): {exc}".strip()) from exc

    def _single(self, sql: str, params: Any) -> None:
        """``sql`` as a transaction of its own: on an idle connection the BEGIN, the
        statement and the COMMIT in one round trip."""
        with self._tx(sql, params, commit=True):
            pass

    def _finish(self, cur: Any, sql: str, params: Mapping[str, Any] | Sequence[Any]) -> None:
        """Run ``sql`` as the last statement of the :meth:`_tx` transaction; delimited
        by hand, the COMMIT travels with it (its rows are not kept)."""
        if self._by_hand:
            cur.execute(f"{sql}; commit", params)
            self._committed = True
        else:
            cur.execute(sql, params)

    @contextmanager
    def _read(self) -> Iterator[Any]:
        """One read-only statement: sent alone (autocommit) on an idle connection, with
        no BEGIN and COMMIT round trips (a statement reads one snapshot either way)."""
        import psycopg2

        if not self._idle():
            with self._tx() as cur:
                yield cur
            return
        conn = self._conn
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                yield cur
        except psycopg2.Error as exc:
            raise BrokerError(f"sim broker ({self.account_name}): {exc}".strip()) from exc
        finally:
            if not conn.closed:
                conn.autocommit = False

    @contextmanager
    def _locked(
        self, then: str | None = None, params: Mapping[str, Any] | None = None
    ) -> Iterator[Any]:
        """A transaction holding the account's row lock, which serialises the account's
        writes. The lock and ``then``, a query run right after it (with a snapshot of
        its own, so it sees what the lock waited for), travel with the BEGIN in one
        round trip; the cursor holds the rows of ``then`` (named parameters; the
        account is ``%(account)s``), or without it the account's cash, USD.
        """
        lock = "select cash_usd from ops.sim_accounts where account = %(account)s for update"
        sql = lock if then is None else f"{lock}; {then}"
        with self._tx(sql, {"account": self.account_name, **(params or {})}) as cur:
            yield cur

    def _missing(self) -> BrokerError:
        return BrokerError(f"sim account {self.account_name!r} does not exist")

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
        with self._read() as cur:
            cur.execute(
                "select a.cash_usd, coalesce(sum(p.qty_shares * p.market_price_usd), 0) "
                "from ops.sim_accounts a left join ops.sim_positions p using (account) "
                "where a.account = %s group by a.cash_usd",
                (self.account_name,),
            )
            cash, positions_value = cur.fetchone()
        return Account(equity_usd=cash + positions_value, cash_usd=cash)

    def positions(self) -> list[Position]:
        with self._read() as cur:
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

    def book(self) -> tuple[Account, list[Position]]:
        """:meth:`account` and :meth:`positions` read together, in one query.

        The positions are sorted here, by symbol, rather than by the database, whose
        collation makes sorting the text keys cost more than the rest of the query.
        """
        with self._read() as cur:
            cur.execute(
                "select a.cash_usd, p.symbol, p.qty_shares, p.avg_price_usd, p.market_price_usd "
                "from ops.sim_accounts as a left join ops.sim_positions as p "
                "on p.account = a.account and p.qty_shares <> 0 where a.account = %s",
                (self.account_name,),
            )
            rows = cur.fetchall()
        if not rows:
            raise self._missing()
        cash = rows[0][0]
        held = sorted(r[1:] for r in rows if r[1] is not None)
        account = Account(equity_usd=cash + sum(r[1] * r[3] for r in held), cash_usd=cash)
        return account, [
            Position(symbol=r[0], qty_shares=r[1], avg_price_usd=r[2], market_price_usd=r[3])
            for r in held
        ]

    def open_orders(self) -> list[BrokerOrder]:
        with self._read() as cur:
            cur.execute(
                f"select {_ORDER_COLUMNS} from ops.sim_orders "
                "where account = %s and status in %s order by submitted_at, order_id",
                (self.account_name, _LIVE),
            )
            return [_order_from_row(r) for r in cur.fetchall()]

    def order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        with self._read() as cur:
            cur.execute(
                f"select {_ORDER_COLUMNS} from ops.sim_orders "
                "where account = %s and client_order_id = %s",
                (self.account_name, client_order_id),
            )
            row = cur.fetchone()
        return None if row is None else _order_from_row(row)

    def orders_by_client_ids(self, client_order_ids: Sequence[str]) -> dict[str, BrokerOrder]:
        """The orders submitted with these client order ids, in any status, in one query.

        Returns
        -------
        dict of str to BrokerOrder
            Keyed by client order id; ids the account does not have are absent.
        """
        if not client_order_ids:
            return {}
        with self._read() as cur:
            cur.execute(
                f"select o.* from {_BY_CLIENT_ID.format(columns=_ORDER_COLUMNS, ids='ids')}",
                {
                    "ids": _sql_array(list(dict.fromkeys(client_order_ids)), "text"),
                    "account": self.account_name,
                },
            )
            return {r[1]: _order_from_row(r) for r in cur.fetchall()}

    def fills_since(self, since: datetime) -> list[Fill]:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware (UTC)")
        with self._read() as cur:
            cur.execute(
                "select fill_id, order_id, client_order_id, symbol, side, qty_shares, price_usd, "
                "commission_usd, filled_at from ops.sim_fills "
                "where account = %s and filled_at >= %s order by filled_at, fill_id",
                (self.account_name, since),
            )
            rows = cur.fetchall()
        return [_fill_from_row(r[:8], r[8]) for r in rows]

    # -- writes ---------------------------------------------------------------------------
    def _order_id(self, client_order_id: str) -> str:
        digest = hashlib.sha256(f"{self.account_name}\0{client_order_id}".encode()).hexdigest()
        return "sim-" + digest[:20]

    def _duplicate_ids(self, cur: Any, orders: Sequence[Order], repeated: list[str]) -> list[str]:
        """The ids a batch repeats, then the ones the account already has (read with
        ``cur``), each once."""
        cur.execute(
            f"select o.client_order_id from "
            f"{_BY_CLIENT_ID.format(columns='client_order_id', ids='ids')}",
            {
                "ids": _sql_array(list({o.client_order_id for o in orders}), "text"),
                "account": self.account_name,
            },
        )
        stored = {r[0] for r in cur.fetchall()}
        again = [o.client_order_id for o in orders if o.client_order_id in stored]
        return list(dict.fromkeys(repeated + again))

    def _refusal(self, duplicate_ids: list[str]) -> BrokerError:
        return BrokerError(
            f"duplicate client_order_id {', '.join(map(repr, duplicate_ids))} "
            f"in sim account {self.account_name!r}"
        )

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
        from psycopg2.errors import UniqueViolation

        if repeated:
            with self._tx() as cur:  # rolled back: only names the ids
                raise self._refusal(self._duplicate_ids(cur, orders, repeated))
        now = datetime.now(UTC)
        # one round trip: the rows go in under the account's row lock, taken by the
        # insert's source, and none go in when the account has no row; the unique keys
        # refuse an id the account already has
        insert = (
            f"with placed as (insert into ops.sim_orders (account, {', '.join(_NEW_ORDER)}, "
            f"status, submitted_at, updated_at) select a.account, {', '.join(_NEW_ORDER)}, "
            "'open', at, at from (select account from ops.sim_accounts "
            "where account = %(account)s for update) as a cross join (select *, "
            "%(now)s::timestamptz + (n - 1) * interval '1 microsecond' as at "
            f"from {_unnest(_NEW_ORDER, 'new')}) as v returning 1) "
            f"select {_REQUIRE}(count(*) > 0, '{_NO_ACCOUNT}', 'no account row') from placed"
        )
        try:
            self._single(
                insert,
                {"account": self.account_name, "now": now, **_arrays(_NEW_ORDER, rows, "new")},
            )
        except BrokerError as exc:
            if not isinstance(exc.__cause__, UniqueViolation):
                raise
            with self._read() as cur:
                duplicate_ids = self._duplicate_ids(cur, orders, [])
            if not duplicate_ids:
                raise
            raise self._refusal(duplicate_ids) from exc.__cause__
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
        ids = list(dict.fromkeys(order_ids))
        with self._locked() as cur:
            if cur.fetchone() is None:
                raise self._missing()
            cur.execute(
                "select order_id from ops.sim_orders where account = %s and order_id = any(%s)",
                (self.account_name, ids),
            )
            known = {r[0] for r in cur.fetchall()}
            unknown = [i for i in ids if i not in known]
            if unknown:
                named = ", ".join(repr(i) for i in unknown)
                raise BrokerError(f"unknown order {named} in sim account {self.account_name!r}")
            cur.execute(
                "update ops.sim_orders set status = 'cancelled', status_reason = 'cancelled', "
                "updated_at = now() where account = %s and order_id = any(%s) and status in %s",
                (self.account_name, ids, _LIVE),
            )
            return cur.rowcount

    def cancel_all(self) -> int:
        with self._locked() as cur:
            if cur.fetchone() is None:
                raise self._missing()
            cur.execute(
                "update ops.sim_orders set status = 'cancelled', status_reason = 'cancel_all', "
                "updated_at = now() where account = %s and status in %s",
                (self.account_name, _LIVE),
            )
            return cur.rowcount

    def mark(self, prices: Mapping[str, float]) -> None:
        """Set the market price of held symbols (what ``account().equity_usd`` values them at)."""
        marks = {s.upper(): float(p) for s, p in prices.items() if p > 0 and math.isfinite(p)}
        if not marks:
            return
        self._single(
            "update ops.sim_positions as p set market_price_usd = v.price, updated_at = now() "
            "from unnest(%s::text[], %s::double precision[]) as v (symbol, price) "
            "where p.account = %s and p.symbol = v.symbol",
            (
                _sql_array(list(marks), "text"),
                _sql_array(list(marks.values()), "double precision"),
                self.account_name,
            ),
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
        # the cash; the live orders with the positions in their symbols; a fill id drawn
        # for each order (the ones that do not fill leave a gap in the sequence), so that
        # the write need not return them. The live orders
        # are found by plain index scans, which mark the index entries of filled orders
        # dead as they pass: a bitmap scan would visit every order the account ever had
        # until the next vacuum (4 ms an auction after 50,000 orders).
        with self._locked(
            "set local enable_bitmapscan = off; "
            "select o.order_id, o.client_order_id, o.symbol, o.side, o.qty_shares, "
            "o.filled_qty_shares, o.order_type, o.limit_price_usd, o.reduce_only, "
            "p.qty_shares, p.avg_price_usd, a.cash_usd, "
            "case when o.order_id is not null then nextval(f.seq) end "
            "from ops.sim_accounts as a "
            "cross join (select pg_get_serial_sequence('ops.sim_fills', 'fill_id')::regclass"
            " as seq) as f "
            "left join ops.sim_orders as o on o.account = a.account "
            "and o.status in ('open', 'partially_filled') and o.time_in_force in %(tifs)s "
            "left join ops.sim_positions as p on p.account = o.account and p.symbol = o.symbol "
            "where a.account = %(account)s order by o.submitted_at, o.order_id",
            {"tifs": tifs},
        ) as cur:
            rows = cur.fetchall()
            if not rows:
                raise self._missing()
            cash = rows[0][11]
            orders = [_Resting(*r[:9]) for r in rows if r[0] is not None]
            if not orders:
                return []
            book = {r[2]: (r[9], r[10]) for r in rows if r[9] is not None}
            run = _Auction(
                self,
                prices=prices,
                capacity=capacity if volumes is not None else None,
                book=book,
                cash_usd=cash,
                at=at,
            )
            for order in orders:
                run.execute(order)
            fill_ids = sorted(r[12] for r in rows if r[12] is not None)  # in execution order
            run.fill_rows = [
                (fill_id, *row) for fill_id, row in zip(fill_ids, run.fill_rows, strict=False)
            ]
            self._write_auction(cur, run)
        return run.fills

    def _write_auction(self, cur: Any, run: _Auction) -> None:
        """Write an auction's outcome in one statement, with the COMMIT: the orders' fill
        state, the cash, the positions of the symbols that traded (rows updated, or
        inserted for symbols the account had no row for) and the fills, which it counts."""
        held = [(s, p) for s, p in run.marks.items() if s in run.had_rows]
        opened = [(s, p) for s, p in run.marks.items() if s not in run.had_rows]
        params = {
            "account": self.account_name,
            "cash": run.cash,
            "at": run.at,
            **_arrays(_ORDER_FILL_STATE, run.order_updates, "o"),
            **_arrays(_POSITION, [(s, *run.book[s], p) for s, p in held], "p"),
            **_arrays(_POSITION, [(s, *run.book[s], p) for s, p in opened], "q"),
            **_arrays(_FILL, run.fill_rows, "f"),
        }
        update_orders = (
            "update ops.sim_orders as o set filled_qty_shares = v.filled_qty_shares, "
            "status = v.status, status_reason = v.status_reason, updated_at = now() "
            f"from {_unnest(_ORDER_FILL_STATE, 'o')} where o.account = %(account)s "
            "and o.status in ('open', 'partially_filled') and o.order_id = v.order_id"
        )
        if not run.fill_rows:  # reduce-only orders cancelled, nothing traded
            if run.order_updates:
                self._finish(cur, update_orders, params)
            return
        # each fill joins the order it fills among the ones updated here: a fill without
        # its order in this account would be lost from the count, and fails the auction
        fill_columns = ", ".join(f"v.{c}" for c in _FILL)
        self._finish(
            cur,
            f"with orders as ({update_orders} returning o.order_id), "
            "cash as (update ops.sim_accounts set cash_usd = %(cash)s, updated_at = now() "
            "where account = %(account)s), "
            "held as (update ops.sim_positions as h set qty_shares = v.qty_shares, "
            "avg_price_usd = v.avg_price_usd, market_price_usd = v.market_price_usd, "
            f"updated_at = now() from {_unnest(_POSITION, 'p')} "
            "where h.account = %(account)s and h.symbol = v.symbol), "
            "opened as (insert into ops.sim_positions (account, symbol, qty_shares, "
            "avg_price_usd, market_price_usd, updated_at) "
            f"select %(account)s, {', '.join(_POSITION)}, now() from {_unnest(_POSITION, 'q')}), "
            f"fills as (insert into ops.sim_fills ({', '.join(_FILL)}, account, filled_at) "
            f"select {fill_columns}, %(account)s, %(at)s from {_unnest(_FILL, 'f')} "
            "join orders as u on u.order_id = v.order_id returning 1) "
            f"select {_REQUIRE}(count(*) = %(fills)s, '{_FILL_WITHOUT_ORDER}', format("
            "'%%s of the auction''s %%s fills match no order it fills; "
            "the auction is rolled back', %(fills)s - count(*), %(fills)s)) from fills",
            params | {"fills": len(run.fill_rows)},
        )
        run.fills = [_fill_from_row(r, run.at) for r in run.fill_rows]


class _Resting(NamedTuple):
    """A live order as an auction needs it (columns of ``ops.sim_orders``)."""

    order_id: str
    client_order_id: str
    symbol: str
    side: str
    qty_shares: float
    filled_qty_shares: float
    order_type: str
    limit_price_usd: float | None
    reduce_only: bool


class _Auction:
    """One auction computed in memory: cash, positions and capacity evolve order by order.

    ``order_updates`` holds the new fill state of every order touched (columns of
    ``_ORDER_FILL_STATE``), ``fill_rows`` the fills in execution order (columns of
    ``_FILL`` but the fill id, which the caller puts first), ``book`` the positions ``symbol -> (qty_shares, avg_price_usd)``,
    ``marks`` the auction price of every symbol that traded and ``cash`` the
    account's cash after the fills, USD.
    """

    def __init__(
        self,
        broker: SimBroker,
        *,
        prices: Mapping[str, float],
        capacity: dict[str, float] | None,
        book: dict[str, tuple[float, float]],
        cash_usd: float,
        at: datetime,
    ) -> None:
        self.bps = broker.slippage_bps / 10_000.0
        self.commission_per_share = broker.commission_per_share_usd
        self.prices = prices
        self.capacity = capacity
        self.book = book
        self.had_rows = set(book)  # symbols with a row in ops.sim_positions
        self.cash = cash_usd
        self.at = at
        self.marks: dict[str, float] = {}
        self.order_updates: list[tuple[str, float, str, str | None]] = []
        self.fill_rows: list[tuple[Any, ...]] = []
        self.fills: list[Fill] = []

    def execute(self, order: _Resting) -> None:
        """Fill what this order can fill now (limit, reduce-only, participation cap)."""
        price = self.prices.get(order.symbol)
        if price is None or not (price > 0 and math.isfinite(price)):
            return
        is_buy = order.side == "buy"
        is_limit = order.order_type == "limit"
        if is_limit:
            limit = order.limit_price_usd or 0.0
            if (is_buy and price > limit) or (not is_buy and price < limit):
                return
        qty = order.qty_shares - order.filled_qty_shares
        old_qty, old_avg = self.book.get(order.symbol, (0.0, 0.0))
        if order.reduce_only:
            shrinkable = (
                abs(old_qty) if (old_qty > 0 and not is_buy) or (old_qty < 0 and is_buy) else 0.0
            )
            if shrinkable <= 0:
                self.order_updates.append(
                    (
                        order.order_id,
                        order.filled_qty_shares,
                        str(OrderStatus.CANCELLED),
                        "reduce_only: no position to reduce",
                    )
                )
                return
            qty = min(qty, shrinkable)
        if self.capacity is not None:
            qty = min(qty, self.capacity.get(order.symbol, 0.0))
            if qty <= 0:
                return
            self.capacity[order.symbol] -= qty
        fill_price = price * (1 + self.bps) if is_buy else price * (1 - self.bps)
        if is_limit:
            limit = order.limit_price_usd or fill_price
            fill_price = min(fill_price, limit) if is_buy else max(fill_price, limit)
        signed = qty if is_buy else -qty
        commission = qty * self.commission_per_share
        filled = order.filled_qty_shares + qty
        if filled >= order.qty_shares:
            status, reason = OrderStatus.FILLED, None
        elif order.reduce_only and abs(old_qty + signed) == 0:
            status, reason = OrderStatus.CANCELLED, "reduce_only: position closed"
        else:
            status, reason = OrderStatus.PARTIALLY_FILLED, None
        self.order_updates.append((order.order_id, filled, str(status), reason))
        self.cash = self.cash - signed * fill_price - commission
        self.book[order.symbol] = next_position(old_qty, old_avg, signed, fill_price)
        self.marks[order.symbol] = price
        self.fill_rows.append(
            (
                order.order_id,
                order.client_order_id,
                order.symbol,
                order.side,
                qty,
                fill_price,
                commission,
            )
        )
