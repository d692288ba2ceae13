"""The SQL of the simulator's store: statements, array parameters, rows.

Set-based statements take a batch as parallel arrays, one array text per column
(:func:`arrays`, unnested by :func:`unnest`); checks inside a statement
(``ops.sim_require``) fail it with the simulator's own SQLSTATE codes, so that a
write and the check of what it did can travel with the COMMIT.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from quant.typing import BrokerOrder, Fill, OrderStatus, OrderType, TimeInForce

__all__ = [
    "AUCTION_INPUTS",
    "BY_CLIENT_ID",
    "CHECKS",
    "FILL",
    "FILL_WITHOUT_ORDER",
    "LIVE",
    "NEW_ORDER",
    "NO_ACCOUNT",
    "ORDER_COLUMNS",
    "ORDER_FILL_STATE",
    "PLACE_ORDERS",
    "POSITION",
    "REQUIRE",
    "arrays",
    "fill_from_row",
    "order_from_row",
    "sql_array",
    "unnest",
]

ORDER_COLUMNS = (
    "order_id, client_order_id, symbol, side, qty_shares, filled_qty_shares, status, "
    "order_type, time_in_force, limit_price_usd, reduce_only, strategy, submitted_at, "
    "updated_at, status_reason"
)
LIVE = ("open", "partially_filled")
# Orders of the account by a list of client order ids (named parameters: the ids' array
# text, and ``account``): one probe of the (account, client_order_id) index per id,
# whatever the planner's statistics say about the account's size.
BY_CLIENT_ID = (
    "unnest(%({ids})s::text[]) as k (client_order_id) cross join lateral ("
    "select {columns} from ops.sim_orders as s where s.account = %(account)s "
    "and s.client_order_id = k.client_order_id limit 1) as o"
)


# ``ops.sim_require(ok, code, message)``: a check inside a statement, failing it with
# SQLSTATE ``code`` unless ``ok``, so that a write and the check of what it did can
# travel with the COMMIT. The codes (class QS) are the simulator's own.
REQUIRE = "ops.sim_require"
NO_ACCOUNT = "QSA01"  # the account has no row
FILL_WITHOUT_ORDER = "QSA02"  # a fill whose order is not among the ones its auction fills
CHECKS = (NO_ACCOUNT, FILL_WITHOUT_ORDER)


# Columns passed as one array each (``unnest``): a new order, an order's fill state, a
# position, a fill. Set-based statements take a batch as parallel arrays.
NEW_ORDER = {
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
ORDER_FILL_STATE = {
    "order_id": "text",
    "filled_qty_shares": "double precision",
    "status": "text",
    "status_reason": "text",
}
POSITION = {
    "symbol": "text",
    "qty_shares": "double precision",
    "avg_price_usd": "double precision",
    "market_price_usd": "double precision",
}
FILL = {
    "fill_id": "bigint",
    "order_id": "text",
    "client_order_id": "text",
    "symbol": "text",
    "side": "text",
    "qty_shares": "double precision",
    "price_usd": "double precision",
    "commission_usd": "double precision",
}


def unnest(columns: Mapping[str, str], prefix: str) -> str:
    """``unnest(%(prefix_a)s::type[], ...)`` over the array parameters of ``columns``
    (named as :func:`arrays` names them), as ``v (a, ..., n)`` with ``n`` the
    position in the batch (1, 2, ...)."""
    arrays = ", ".join(f"%({prefix}_{c})s::{t}[]" for c, t in columns.items())
    return f"unnest({arrays}) with ordinality as v ({', '.join(columns)}, n)"


def sql_array(values: Sequence[Any], sql_type: str) -> str:
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
                + ",".join("NULL" if v is None else sql_array([v], "text")[1:-1] for v in values)
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


def arrays(
    columns: Mapping[str, str], rows: Sequence[Sequence[Any]], prefix: str
) -> dict[str, str]:
    """Rows (tuples in the order of ``columns``) as one array text per column, the
    parameters of :func:`unnest` with the same ``prefix``."""
    lists = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    if len(lists) != len(columns):
        raise ValueError(f"rows of {len(lists)} values for {len(columns)} columns")
    return {
        f"{prefix}_{name}": sql_array(values, sql_type)
        for (name, sql_type), values in zip(columns.items(), lists, strict=True)
    }


_STATUS = {s.value: s for s in OrderStatus}
_TYPE = {t.value: t for t in OrderType}
_TIF = {t.value: t for t in TimeInForce}


def order_from_row(row: tuple[Any, ...]) -> BrokerOrder:
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


def fill_from_row(row: Sequence[Any], filled_at: datetime) -> Fill:
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


# New orders in one round trip: the rows go in under the account's row lock, taken by
# the insert's source, and none go in when the account has no row; the unique keys
# refuse an id the account already has.
PLACE_ORDERS = (
    f"with placed as (insert into ops.sim_orders (account, {', '.join(NEW_ORDER)}, "
    f"status, submitted_at, updated_at) select a.account, {', '.join(NEW_ORDER)}, "
    "'open', at, at from (select account from ops.sim_accounts "
    "where account = %(account)s for update) as a cross join (select *, "
    "%(now)s::timestamptz + (n - 1) * interval '1 microsecond' as at "
    f"from {unnest(NEW_ORDER, 'new')}) as v returning 1) "
    f"select {REQUIRE}(count(*) > 0, '{NO_ACCOUNT}', 'no account row') from placed"
)

# What an auction needs, read after the account's lock: the cash; the live orders with
# the positions in their symbols; a fill id drawn for each order (the ones that do not
# fill leave a gap in the sequence), so that the write need not return them. The live
# orders are found by plain index scans, which mark the index entries of filled orders
# dead as they pass: a bitmap scan would visit every order the account ever had until
# the next vacuum (4 ms an auction after 50,000 orders).
AUCTION_INPUTS = (
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
    "where a.account = %(account)s order by o.submitted_at, o.order_id"
)
