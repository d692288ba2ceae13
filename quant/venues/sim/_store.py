"""The simulator's store: its accounts, orders, fills and positions in ``ops.sim_*``.

State lives in ``ops.sim_accounts``, ``ops.sim_orders``, ``ops.sim_fills`` and
``ops.sim_positions`` (one set of rows per ``account`` name), so every process
that opens the same account sees the same book. Each call is one transaction,
serialised per account by a row lock. Batches are set-based: a few statements per
call whatever the number of orders, a batch travelling as one array text per
column. A backtest calls the broker thousands of times, so round trips are
counted too: the lock travels with the BEGIN and the query after it, a write
travels with the COMMIT (what it wrote checked in the statement itself, by
``ops.sim_require``), and single reads skip BEGIN and COMMIT.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any, NoReturn

from quant.exceptions import BrokerError
from quant.typing import Account, BrokerOrder, Fill, Position
from quant.venues.sim._matching import _Auction, _Resting
from quant.venues.sim._sql import (
    AUCTION_INPUTS,
    BY_CLIENT_ID,
    CHECKS,
    FILL,
    FILL_WITHOUT_ORDER,
    LIVE,
    NEW_ORDER,
    NO_ACCOUNT,
    ORDER_COLUMNS,
    ORDER_FILL_STATE,
    PLACE_ORDERS,
    POSITION,
    REQUIRE,
    arrays,
    fill_from_row,
    order_from_row,
    sql_array,
    unnest,
)

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

__all__ = ["OpenAuction", "SimAccountStore"]


class SimAccountStore:
    """One simulated account's rows in ``ops.sim_*``, read and written in transactions.

    Parameters
    ----------
    conn : psycopg2 connection
        Connection to the pipeline's database (migrated). The store commits its
        own transactions on it.
    account : str
        Name of the simulated account.
    """

    def __init__(self, conn: PgConnection, account: str) -> None:
        self.conn = conn
        self.account_name = account
        self._by_hand = self._committed = False  # the state of :meth:`_tx`

    def missing(self) -> BrokerError:
        return BrokerError(f"sim account {self.account_name!r} does not exist")

    def close(self) -> None:
        """Close the database connection."""
        self.conn.close()

    # -- transactions ---------------------------------------------------------------------
    def _idle(self) -> bool:
        """No transaction open on the connection, and it is not in autocommit mode."""
        from psycopg2.extensions import STATUS_READY

        return not self.conn.autocommit and self.conn.status == STATUS_READY

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
        BrokerError (a failed :data:`REQUIRE` check as its message); any
        failure rolls the transaction back.
        """
        import psycopg2

        conn = self.conn
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
            if exc.pgcode == NO_ACCOUNT:
                raise self.missing() from exc
            if exc.pgcode in CHECKS:
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
        conn = self.conn
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
    def locked(
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

    # -- reads ----------------------------------------------------------------------------
    def create_account(self, cash_usd: float) -> None:
        """The account's row with ``cash_usd``, unless it has one."""
        self._single(
            "insert into ops.sim_accounts (account, cash_usd) values (%s, %s) "
            "on conflict (account) do nothing",
            (self.account_name, cash_usd),
        )

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
        """The account and its positions read together, in one query.

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
            raise self.missing()
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
                f"select {ORDER_COLUMNS} from ops.sim_orders "
                "where account = %s and status in %s order by submitted_at, order_id",
                (self.account_name, LIVE),
            )
            return [order_from_row(r) for r in cur.fetchall()]

    def order_by_client_id(self, client_order_id: str) -> BrokerOrder | None:
        with self._read() as cur:
            cur.execute(
                f"select {ORDER_COLUMNS} from ops.sim_orders "
                "where account = %s and client_order_id = %s",
                (self.account_name, client_order_id),
            )
            row = cur.fetchone()
        return None if row is None else order_from_row(row)

    def orders_by_client_ids(self, client_order_ids: Sequence[str]) -> dict[str, BrokerOrder]:
        """The orders with these (distinct) client order ids, in one query, by client id."""
        with self._read() as cur:
            cur.execute(
                f"select o.* from {BY_CLIENT_ID.format(columns=ORDER_COLUMNS, ids='ids')}",
                {"ids": sql_array(client_order_ids, "text"), "account": self.account_name},
            )
            return {r[1]: order_from_row(r) for r in cur.fetchall()}

    def fills_since(self, since: datetime) -> list[Fill]:
        with self._read() as cur:
            cur.execute(
                "select fill_id, order_id, client_order_id, symbol, side, qty_shares, price_usd, "
                "commission_usd, filled_at from ops.sim_fills "
                "where account = %s and filled_at >= %s order by filled_at, fill_id",
                (self.account_name, since),
            )
            rows = cur.fetchall()
        return [fill_from_row(r[:8], r[8]) for r in rows]

    # -- writes ---------------------------------------------------------------------------
    def _duplicate_ids(
        self, cur: Any, client_order_ids: Sequence[str], repeated: list[str]
    ) -> list[str]:
        """The ids a batch repeats, then the ones the account already has (read with
        ``cur``), each once."""
        cur.execute(
            f"select o.client_order_id from "
            f"{BY_CLIENT_ID.format(columns='client_order_id', ids='ids')}",
            {
                "ids": sql_array(list(set(client_order_ids)), "text"),
                "account": self.account_name,
            },
        )
        stored = {r[0] for r in cur.fetchall()}
        again = [cid for cid in client_order_ids if cid in stored]
        return list(dict.fromkeys(repeated + again))

    def _refusal(self, duplicate_ids: list[str]) -> BrokerError:
        return BrokerError(
            f"duplicate client_order_id {', '.join(map(repr, duplicate_ids))} "
            f"in sim account {self.account_name!r}"
        )

    def refuse(self, client_order_ids: Sequence[str], repeated: list[str]) -> NoReturn:
        """Refuse a batch that repeats ``repeated``, naming those and the ids of the
        batch the account already has.

        Raises
        ------
        BrokerError
            Always.
        """
        with self._tx() as cur:  # rolled back: only names the ids
            raise self._refusal(self._duplicate_ids(cur, client_order_ids, repeated))

    def place(
        self, rows: Sequence[tuple[Any, ...]], client_order_ids: Sequence[str], now: datetime
    ) -> None:
        """Insert new orders (rows in the columns of ``NEW_ORDER``), open, submitted at
        ``now`` plus one microsecond per position in the batch.

        Raises
        ------
        BrokerError
            The account has no row, or already has one of ``client_order_ids``
            (every such id is named; nothing is inserted).
        """
        from psycopg2.errors import UniqueViolation

        try:
            self._single(
                PLACE_ORDERS,
                {"account": self.account_name, "now": now, **arrays(NEW_ORDER, rows, "new")},
            )
        except BrokerError as exc:
            if not isinstance(exc.__cause__, UniqueViolation):
                raise
            with self._read() as cur:
                duplicate_ids = self._duplicate_ids(cur, client_order_ids, [])
            if not duplicate_ids:
                raise
            raise self._refusal(duplicate_ids) from exc.__cause__

    def cancel(self, order_ids: list[str]) -> int:
        """Cancel these (distinct) orders in one transaction; returns how many were live.

        Raises
        ------
        BrokerError
            An id is not an order of this account (nothing is cancelled).
        """
        with self.locked() as cur:
            if cur.fetchone() is None:
                raise self.missing()
            cur.execute(
                "select order_id from ops.sim_orders where account = %s and order_id = any(%s)",
                (self.account_name, order_ids),
            )
            known = {r[0] for r in cur.fetchall()}
            unknown = [i for i in order_ids if i not in known]
            if unknown:
                named = ", ".join(repr(i) for i in unknown)
                raise BrokerError(f"unknown order {named} in sim account {self.account_name!r}")
            cur.execute(
                "update ops.sim_orders set status = 'cancelled', status_reason = 'cancelled', "
                "updated_at = now() where account = %s and order_id = any(%s) and status in %s",
                (self.account_name, order_ids, LIVE),
            )
            return cur.rowcount

    def cancel_all(self) -> int:
        with self.locked() as cur:
            if cur.fetchone() is None:
                raise self.missing()
            cur.execute(
                "update ops.sim_orders set status = 'cancelled', status_reason = 'cancel_all', "
                "updated_at = now() where account = %s and status in %s",
                (self.account_name, LIVE),
            )
            return cur.rowcount

    def mark(self, marks: Mapping[str, float]) -> None:
        """Set the market price of held symbols, USD."""
        self._single(
            "update ops.sim_positions as p set market_price_usd = v.price, updated_at = now() "
            "from unnest(%s::text[], %s::double precision[]) as v (symbol, price) "
            "where p.account = %s and p.symbol = v.symbol",
            (
                sql_array(list(marks), "text"),
                sql_array(list(marks.values()), "double precision"),
                self.account_name,
            ),
        )

    # -- auctions -------------------------------------------------------------------------
    @contextmanager
    def auction(self, time_in_force: tuple[str, ...]) -> Iterator[OpenAuction]:
        """One auction's transaction: the account locked, and what the auction needs
        (cash, the live orders of these ``time_in_force`` values, the positions in their
        symbols) read with the lock, in one round trip; :meth:`OpenAuction.write`
        writes the outcome with the COMMIT.

        Raises
        ------
        BrokerError
            The account has no row.
        """
        with self.locked(AUCTION_INPUTS, {"tifs": time_in_force}) as cur:
            rows = cur.fetchall()
            if not rows:
                raise self.missing()
            yield OpenAuction(self, cur, rows)

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
            **arrays(ORDER_FILL_STATE, run.order_updates, "o"),
            **arrays(POSITION, [(s, *run.book[s], p) for s, p in held], "p"),
            **arrays(POSITION, [(s, *run.book[s], p) for s, p in opened], "q"),
            **arrays(FILL, run.fill_rows, "f"),
        }
        update_orders = (
            "update ops.sim_orders as o set filled_qty_shares = v.filled_qty_shares, "
            "status = v.status, status_reason = v.status_reason, updated_at = now() "
            f"from {unnest(ORDER_FILL_STATE, 'o')} where o.account = %(account)s "
            "and o.status in ('open', 'partially_filled') and o.order_id = v.order_id"
        )
        if not run.fill_rows:  # reduce-only orders cancelled, nothing traded
            if run.order_updates:
                self._finish(cur, update_orders, params)
            return
        # each fill joins the order it fills among the ones updated here: a fill without
        # its order in this account would be lost from the count, and fails the auction
        fill_columns = ", ".join(f"v.{c}" for c in FILL)
        self._finish(
            cur,
            f"with orders as ({update_orders} returning o.order_id), "
            "cash as (update ops.sim_accounts set cash_usd = %(cash)s, updated_at = now() "
            "where account = %(account)s), "
            "held as (update ops.sim_positions as h set qty_shares = v.qty_shares, "
            "avg_price_usd = v.avg_price_usd, market_price_usd = v.market_price_usd, "
            f"updated_at = now() from {unnest(POSITION, 'p')} "
            "where h.account = %(account)s and h.symbol = v.symbol), "
            "opened as (insert into ops.sim_positions (account, symbol, qty_shares, "
            "avg_price_usd, market_price_usd, updated_at) "
            f"select %(account)s, {', '.join(POSITION)}, now() from {unnest(POSITION, 'q')}), "
            f"fills as (insert into ops.sim_fills ({', '.join(FILL)}, account, filled_at) "
            f"select {fill_columns}, %(account)s, %(at)s from {unnest(FILL, 'f')} "
            "join orders as u on u.order_id = v.order_id returning 1) "
            f"select {REQUIRE}(count(*) = %(fills)s, '{FILL_WITHOUT_ORDER}', format("
            "'%%s of the auction''s %%s fills match no order it fills; "
            "the auction is rolled back', %(fills)s - count(*), %(fills)s)) from fills",
            params | {"fills": len(run.fill_rows)},
        )
        run.fills = [fill_from_row(r, run.at) for r in run.fill_rows]


class OpenAuction:
    """What an auction needs, read under the account's lock, and the write that ends
    its transaction.

    Attributes
    ----------
    cash_usd : float
    orders : list of _Resting
        The live orders taking part, by submission time.
    positions : dict of str to tuple of float
        ``symbol -> (qty_shares, avg_price_usd)`` for the symbols of those orders.
    """

    def __init__(self, store: SimAccountStore, cur: Any, rows: list[tuple[Any, ...]]) -> None:
        self._store = store
        self._cur = cur
        self._rows = rows
        self.cash_usd: float = rows[0][11]
        self.orders = [_Resting(*r[:9]) for r in rows if r[0] is not None]
        self.positions = {r[2]: (r[9], r[10]) for r in rows if r[9] is not None}

    def write(self, run: _Auction) -> None:
        """Give the fills of ``run`` the fill ids drawn for the auction, in execution
        order, and write its outcome (sets ``run.fills``)."""
        fill_ids = sorted(r[12] for r in self._rows if r[12] is not None)
        run.fill_rows = [
            (fill_id, *row) for fill_id, row in zip(fill_ids, run.fill_rows, strict=False)
        ]
        self._store._write_auction(self._cur, run)
