"""The simulator's batch calls and set-based auction on the real (embedded) PostgreSQL.

Expected quantities, prices and cash are worked out by hand in the comments from
the broker's rules (slippage 10 bps, 0.01 USD a share, at most 10 % of volume).
"""

from __future__ import annotations

import math
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant.exceptions import BrokerError
from quant.execution import Order, OrderStatus, OrderType, SimBroker
from quant.testing.db import read
from quant.venues.sim._sql import sql_array as _sql_array

pytestmark = pytest.mark.integration

T0 = datetime(2027, 3, 1, 14, 30, tzinfo=UTC)


@pytest.fixture()
def broker(sim_broker: SimBroker) -> SimBroker:
    return sim_broker  # tests/conftest.py


def order(cid: str, symbol: str, side: str, qty: float, **kw: object) -> Order:
    return Order(client_order_id=cid, symbol=symbol, side=side, qty_shares=qty, **kw)  # type: ignore[arg-type]


def _stored(db_conn, account: str) -> dict[str, tuple]:  # noqa: ANN001
    rows = read(
        db_conn,
        "select client_order_id, filled_qty_shares, status, status_reason "
        "from ops.sim_orders where account = %s",
        account,
    )
    return {r[0]: (r[1], r[2], r[3]) for r in rows}


# -- submit_many ------------------------------------------------------------------------------
def test_submit_many_when_batch_then_all_placed_open_in_the_order_given(broker: SimBroker) -> None:
    batch = [
        order("z-1", "ccc", "buy", 10),
        order("a-2", "AAA", "sell", 20, order_type="limit", limit_price_usd=12.5),
        order("m-3", "BBB", "buy", 30, reduce_only=True, strategy="s1"),
    ]
    placed = broker.submit_many(batch)
    assert [p.client_order_id for p in placed] == ["z-1", "a-2", "m-3"]
    assert [(p.symbol, p.side, p.qty_shares) for p in placed] == [
        ("CCC", "buy", 10),
        ("AAA", "sell", 20),
        ("BBB", "buy", 30),
    ]
    assert {p.status for p in placed} == {OrderStatus.OPEN}
    assert placed[1].order_type is OrderType.LIMIT and placed[1].limit_price_usd == 12.5
    assert placed[2].reduce_only and placed[2].strategy == "s1"
    # resting in the batch's order (not in order-id or client-id order)
    assert [o.client_order_id for o in broker.open_orders()] == ["z-1", "a-2", "m-3"]
    assert placed[0].submitted_at < placed[1].submitted_at < placed[2].submitted_at
    # what the call returns is what the account stores
    stored = broker.orders_by_client_ids(["z-1", "a-2", "m-3"])
    assert placed == [stored["z-1"], stored["a-2"], stored["m-3"]]
    assert placed == [broker.order_by_client_id(c) for c in ("z-1", "a-2", "m-3")]
    assert broker.submit_many([]) == []


def test_submit_many_when_id_repeated_in_batch_then_refused_naming_it_and_nothing_placed(
    broker: SimBroker, db_conn
) -> None:  # noqa: ANN001
    batch = [
        order("x-1", "AAA", "buy", 1),
        order("dup", "BBB", "buy", 1),
        order("dup", "CCC", "buy", 1),
    ]
    with pytest.raises(BrokerError, match="duplicate client_order_id 'dup' in sim account") as exc:
        broker.submit_many(batch)
    assert "x-1" not in str(exc.value)
    assert _stored(db_conn, broker.account_name) == {}


def test_submit_many_when_ids_already_stored_then_refused_naming_them_and_nothing_placed(
    broker: SimBroker, db_conn
) -> None:  # noqa: ANN001
    broker.submit_many([order("old-1", "AAA", "buy", 1), order("old-2", "BBB", "buy", 1)])
    with pytest.raises(BrokerError, match="duplicate client_order_id") as exc:
        broker.submit_many(
            [
                order("new-1", "AAA", "buy", 1),
                order("old-2", "BBB", "buy", 2),
                order("old-1", "CCC", "buy", 3),
            ]
        )
    assert "'old-2', 'old-1'" in str(exc.value) and "new-1" not in str(exc.value)
    assert set(_stored(db_conn, broker.account_name)) == {"old-1", "old-2"}
    # a single submit keeps its message
    with pytest.raises(BrokerError, match=r"duplicate client_order_id 'old-1' in sim account"):
        broker.submit(order("old-1", "AAA", "buy", 1))


def test_submit_many_when_ids_repeated_and_stored_then_all_named_and_nothing_placed(
    broker: SimBroker, db_conn
) -> None:  # noqa: ANN001
    broker.submit(order("old", "AAA", "buy", 1))
    batch = [
        order("new", "AAA", "buy", 1),
        order("twice", "BBB", "buy", 1),
        order("old", "CCC", "buy", 1),
        order("twice", "DDD", "buy", 1),
    ]
    with pytest.raises(BrokerError, match=r"client_order_id 'twice', 'old' in sim account"):
        broker.submit_many(batch)
    assert set(_stored(db_conn, broker.account_name)) == {"old"}


def test_orders_by_client_ids_when_some_unknown_then_only_known_returned(broker: SimBroker) -> None:
    broker.submit_many([order("k-1", "AAA", "buy", 1), order("k-2", "BBB", "buy", 2)])
    found = broker.orders_by_client_ids(["k-2", "nope", "k-1", "k-2"])
    assert set(found) == {"k-1", "k-2"}
    assert found["k-2"].symbol == "BBB" and found["k-2"].qty_shares == 2
    assert broker.orders_by_client_ids([]) == {}


def test_cancel_many_when_live_and_done_orders_then_counts_live_and_unknown_refused(
    broker: SimBroker,
) -> None:
    placed = broker.submit_many([order(f"c-{i}", "AAA", "buy", 1) for i in range(3)])
    ids = [p.order_id for p in placed]
    assert broker.cancel_many(ids[:2]) == 2
    assert broker.cancel_many(ids) == 1  # the first two are cancelled already
    assert broker.cancel_many([]) == 0
    fresh = broker.submit(order("c-9", "AAA", "buy", 1))
    with pytest.raises(BrokerError, match="unknown order 'sim-nope'"):
        broker.cancel_many([fresh.order_id, "sim-nope"])
    assert [o.client_order_id for o in broker.open_orders()] == ["c-9"]


# -- the set-based auction ---------------------------------------------------------------------
def test_fill_auction_when_mixed_orders_then_fills_cash_and_positions_as_worked_by_hand(
    broker: SimBroker, db_conn
) -> None:  # noqa: ANN001
    # a BBB position to reduce: 200 @ 50 x 1.001 = 50.05, commission 2.00
    broker.submit(order("seed", "BBB", "buy", 200))
    [seed] = broker.fill_auction({"BBB": 50.0}, at=T0)
    assert (seed.qty_shares, seed.price_usd) == (200, pytest.approx(50.05))
    assert broker.account().cash_usd == pytest.approx(100_000 - 10_010 - 2)  # 89,988

    broker.submit_many(
        [
            order("a1", "AAA", "buy", 300),  # AAA: 10 % of 4,000 = 400 shares for the auction
            order("e-buy", "EEE", "buy", 80),
            order("a2", "AAA", "buy", 250),  # gets the 100 left: partial
            order("lim", "CCC", "buy", 100, order_type="limit", limit_price_usd=19.0),
            order("ro", "BBB", "sell", 500, reduce_only=True),  # only the 200 held
            order("e-ro", "EEE", "sell", 1_000, reduce_only=True),  # the 80 bought just before
            order("d-ro", "DDD", "sell", 100, reduce_only=True),  # nothing held: cancelled
            order("a3", "AAA", "sell", 50),  # AAA's capacity is used up: stays open
        ]
    )
    prices = {"AAA": 40.0, "BBB": 55.0, "CCC": 20.0, "DDD": 10.0, "EEE": 10.0}
    volumes = {"AAA": 4_000, "BBB": 10_000, "CCC": 10_000, "DDD": 10_000, "EEE": 100_000}
    at = T0 + timedelta(days=1)
    fills = broker.fill_auction(prices, at=at, volumes=volumes)

    # executed in submission order; buys at price x 1.001, sells at price x 0.999
    assert [(f.client_order_id, f.side, f.qty_shares) for f in fills] == [
        ("a1", "buy", 300),
        ("e-buy", "buy", 80),
        ("a2", "buy", 100),
        ("ro", "sell", 200),
        ("e-ro", "sell", 80),
    ]
    assert [f.price_usd for f in fills] == pytest.approx([40.04, 10.01, 40.04, 54.945, 9.99])
    assert [f.commission_usd for f in fills] == pytest.approx([3.0, 0.8, 1.0, 2.0, 0.8])
    assert {f.filled_at for f in fills} == {at}
    assert [int(f.fill_id) for f in fills] == sorted(int(f.fill_id) for f in fills)
    assert broker.fills_since(at) == fills

    # cash: 89,988 - 12,012 - 3 - 800.8 - 0.8 - 4,004 - 1 + 10,989 - 2 + 799.2 - 0.8 = 84,951.8
    account = broker.account()
    assert account.cash_usd == pytest.approx(84_951.8)
    # AAA 400 @ 40.04 marked at the auction's 40; BBB and EEE closed (rows kept at 0)
    assert [
        (p.symbol, p.qty_shares, p.avg_price_usd, p.market_price_usd) for p in broker.positions()
    ] == [("AAA", 400, pytest.approx(40.04), 40.0)]
    assert account.equity_usd == pytest.approx(84_951.8 + 400 * 40.0)
    assert read(
        db_conn,
        "select symbol, qty_shares, avg_price_usd from ops.sim_positions "
        "where account = %s order by symbol",
        broker.account_name,
    ) == [("AAA", 400, pytest.approx(40.04)), ("BBB", 0, 0), ("EEE", 0, 0)]

    assert _stored(db_conn, broker.account_name) == {
        "seed": (200, "filled", None),
        "a1": (300, "filled", None),
        "e-buy": (80, "filled", None),
        "a2": (100, "partially_filled", None),
        "lim": (0, "open", None),
        "ro": (200, "cancelled", "reduce_only: position closed"),
        "e-ro": (80, "cancelled", "reduce_only: position closed"),
        "d-ro": (0, "cancelled", "reduce_only: no position to reduce"),
        "a3": (0, "open", None),
    }

    # next auction: AAA has 100 shares of room, which the older a2 takes before a3;
    # CCC at 18.5 crosses the 19.00 limit: 18.5 x 1.001 = 18.5185
    later = broker.fill_auction(
        {"AAA": 41.0, "CCC": 18.5}, at=at + timedelta(days=1), volumes={"AAA": 1_000, "CCC": 10_000}
    )
    assert [(f.client_order_id, f.qty_shares) for f in later] == [("a2", 100), ("lim", 100)]
    assert [f.price_usd for f in later] == pytest.approx([41.041, 18.5185])
    # 84,951.8 - 4,104.1 - 1 - 1,851.85 - 1 = 78,993.85
    assert broker.account().cash_usd == pytest.approx(78_993.85)
    held = {p.symbol: p for p in broker.positions()}
    # AAA: (400 x 40.04 + 100 x 41.041) / 500 = 40.2402
    assert held["AAA"].qty_shares == 500 and held["AAA"].avg_price_usd == pytest.approx(40.2402)
    assert held["CCC"].qty_shares == 100 and held["CCC"].avg_price_usd == pytest.approx(18.5185)
    assert [o.client_order_id for o in broker.open_orders()] == ["a2", "a3"]
    assert broker.order_by_client_id("a2").filled_qty_shares == 200  # type: ignore[union-attr]


def test_fill_auction_when_nothing_rests_then_no_fill_and_book_unchanged(broker: SimBroker) -> None:
    assert broker.fill_auction({"AAA": 10.0}, at=T0) == []
    broker.submit(order("x", "AAA", "buy", 10))
    assert broker.fill_auction({"BBB": 10.0}, at=T0) == []  # no price for AAA
    assert broker.account().cash_usd == 100_000.0 and broker.positions() == []


def test_mark_when_prices_given_then_held_symbols_revalued_and_bad_prices_ignored(
    broker: SimBroker,
) -> None:
    broker.submit_many([order("m1", "AAA", "buy", 10), order("m2", "BBB", "buy", 20)])
    broker.fill_auction({"AAA": 10.0, "BBB": 20.0}, at=T0)
    cash = broker.account().cash_usd
    broker.mark({"aaa": 12.0, "BBB": float("nan"), "ZZZ": 5.0})
    marks = {p.symbol: p.market_price_usd for p in broker.positions()}
    assert marks == {"AAA": 12.0, "BBB": 20.0}
    assert broker.account().equity_usd == pytest.approx(cash + 10 * 12.0 + 20 * 20.0)
    broker.mark({})


def test_book_when_positions_held_then_same_as_account_and_positions(
    broker: SimBroker, db_conn
) -> None:  # noqa: ANN001
    broker.submit_many([order("b1", "AAA", "buy", 10), order("b2", "BBB", "buy", 20)])
    broker.fill_auction({"AAA": 10.0, "BBB": 20.0}, at=T0)
    broker.submit(order("b3", "AAA", "sell", 10))
    broker.fill_auction({"AAA": 11.0}, at=T0 + timedelta(days=1))  # AAA closed: 0 shares
    account, positions = broker.book()
    assert account == broker.account()
    assert positions == broker.positions() and [p.symbol for p in positions] == ["BBB"]
    empty = SimBroker(db_conn, account=f"e-{uuid.uuid4().hex[:8]}", initial_cash_usd=5.0)
    assert empty.book() == (empty.account(), [])


# -- the array form of a batch -------------------------------------------------------------------
_TEXT = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)))


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    texts=st.lists(st.one_of(st.none(), _TEXT), max_size=8),
    floats=st.lists(
        st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False)), max_size=8
    ),
    flags=st.lists(st.one_of(st.none(), st.booleans()), max_size=8),
)
def test_sql_array_for_any_values_then_postgres_reads_back_the_same(
    db_conn,
    texts,
    floats,
    flags,  # noqa: ANN001
) -> None:
    with db_conn.cursor() as cur:
        cur.execute(
            "select %s::text[], %s::double precision[], %s::boolean[]",
            (
                _sql_array(texts, "text"),
                _sql_array(floats, "double precision"),
                _sql_array(flags, "boolean"),
            ),
        )
        got_texts, got_floats, got_flags = cur.fetchone()
    db_conn.rollback()
    assert got_texts == texts
    assert got_flags == flags
    assert len(got_floats) == len(floats)
    for got, want in zip(got_floats, floats, strict=True):
        assert got == want and (got is None or math.copysign(1, got) == math.copysign(1, want))


def test_sql_array_when_text_holds_nul_then_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        _sql_array(["a\x00b"], "text")
    with pytest.raises(ValueError, match="no array form"):
        _sql_array([1], "integer")


# -- transactions --------------------------------------------------------------------------------
def test_sim_transaction_when_a_statement_fails_then_all_rolled_back_and_connection_reusable(
    broker: SimBroker, db_conn
) -> None:  # noqa: ANN001
    from psycopg2.extensions import STATUS_READY

    with pytest.raises(BrokerError, match="division by zero"):
        with broker._locked() as cur:
            assert cur.fetchone() == (100_000.0,)  # the account's cash, locked
            cur.execute(
                "update ops.sim_accounts set cash_usd = 1 where account = %s",
                (broker.account_name,),
            )
            cur.execute("select 1 / 0")
    assert not db_conn.autocommit and db_conn.status == STATUS_READY
    assert broker.account().cash_usd == 100_000.0
    with pytest.raises(ValueError, match="NUL"):  # fails in Python, mid-transaction
        broker.submit_many(
            [order("n-1", "AAA", "buy", 1), order("n-2", "BBB", "buy", 1, strategy="a\x00b")]
        )
    assert broker.open_orders() == [] and db_conn.status == STATUS_READY
    assert broker.submit(order("n-1", "AAA", "buy", 1)).client_order_id == "n-1"


def test_sim_call_when_caller_transaction_open_then_it_runs_inside_and_commits_it(
    broker: SimBroker, db_conn
) -> None:  # noqa: ANN001
    from psycopg2.extensions import STATUS_READY

    with db_conn.cursor() as cur:
        cur.execute(
            "update ops.sim_accounts set cash_usd = 5 where account = %s", (broker.account_name,)
        )
    assert db_conn.status != STATUS_READY  # the caller's transaction is open
    broker.submit(order("c-1", "AAA", "buy", 1))
    assert db_conn.status == STATUS_READY and not db_conn.autocommit
    db_conn.rollback()  # nothing left to roll back: the broker committed it
    assert broker.account().cash_usd == 5.0
    assert [o.client_order_id for o in broker.open_orders()] == ["c-1"]


def test_fill_auction_when_a_fill_matches_no_order_it_fills_then_rolled_back(
    broker: SimBroker, db_conn, monkeypatch: pytest.MonkeyPatch
) -> None:  # noqa: ANN001
    from quant.venues.sim import _matching as _sim

    broker.submit_many([order("f-1", "AAA", "buy", 10), order("f-2", "BBB", "buy", 10)])
    other = SimBroker(db_conn, account=f"o-{uuid.uuid4().hex[:8]}")
    (foreign,) = other.submit_many([order("f-1", "AAA", "buy", 10)])
    execute = _sim._Auction.execute

    def misattributed(self: _sim._Auction, resting: _sim._Resting) -> None:
        execute(self, resting)
        if resting.client_order_id == "f-2":  # its fill names an order of another account
            self.fill_rows[-1] = (foreign.order_id, *self.fill_rows[-1][1:])

    monkeypatch.setattr(_sim._Auction, "execute", misattributed)
    with pytest.raises(BrokerError, match="1 of the auction's 2 fills match no order"):
        broker.fill_auction({"AAA": 10.0, "BBB": 20.0}, at=T0)
    monkeypatch.undo()
    assert broker.account().cash_usd == 100_000.0
    assert broker.positions() == [] and broker.fills_since(T0) == []
    assert {c: v[1] for c, v in _stored(db_conn, broker.account_name).items()} == {
        "f-1": "open",
        "f-2": "open",
    }
    assert other.orders_by_client_ids(["f-1"])["f-1"].status is OrderStatus.OPEN
    # the same auction, untouched, fills both
    assert len(broker.fill_auction({"AAA": 10.0, "BBB": 20.0}, at=T0)) == 2


def test_sim_calls_when_account_row_missing_then_refused_as_unknown_account(db_conn) -> None:  # noqa: ANN001
    gone = SimBroker(db_conn, account=f"g-{uuid.uuid4().hex[:8]}")
    with db_conn, db_conn.cursor() as cur:
        cur.execute("delete from ops.sim_accounts where account = %s", (gone.account_name,))
    for call in (
        lambda: gone.submit_many([order("x", "AAA", "buy", 1)]),
        lambda: gone.fill_auction({"AAA": 1.0}, at=T0),
        lambda: gone.cancel_all(),
        lambda: gone.cancel_many(["sim-x"]),
    ):
        with pytest.raises(BrokerError, match="does not exist"):
            call()


def test_fill_auction_when_waiting_for_the_lock_then_fills_orders_committed_meanwhile(
    pg_settings,  # noqa: ANN001
) -> None:
    import threading
    import time

    from quant.db import connect

    account = f"w-{uuid.uuid4().hex[:8]}"
    holder, waiter, watcher = connect(pg_settings), connect(pg_settings), connect(pg_settings)
    try:
        first = SimBroker(holder, account=account)
        second = SimBroker(waiter, account=account)
        with holder.cursor() as cur:  # a transaction of the first process holds the lock
            cur.execute("select 1 from ops.sim_accounts where account = %s for update", (account,))
        result: dict[str, object] = {}

        def auction() -> None:
            try:
                result["fills"] = second.fill_auction({"AAA": 10.0}, at=T0)
            except BaseException as exc:  # handed to the test's thread
                result["error"] = exc

        thread = threading.Thread(target=auction)
        thread.start()
        deadline = time.monotonic() + 10
        waiting = False
        while not waiting and time.monotonic() < deadline:
            with watcher, watcher.cursor() as cur:
                cur.execute(
                    "select count(*) from pg_stat_activity where pid = %s "
                    "and wait_event_type = 'Lock'",
                    (waiter.get_backend_pid(),),
                )
                waiting = cur.fetchone()[0] == 1
            time.sleep(0.02)
        assert waiting, "the auction never waited for the account lock"
        # inside the open transaction, then committed: the lock is released
        first.submit_many([order("late", "AAA", "buy", 5)])
        thread.join(timeout=30)
        assert "error" not in result, result.get("error")
        fills = result["fills"]
        assert [(f.client_order_id, f.qty_shares) for f in fills] == [("late", 5)]  # type: ignore[union-attr]
    finally:
        for conn in (holder, waiter, watcher):
            conn.close()


def test_batch_calls_when_connection_idle_then_a_fixed_number_of_round_trips(pg_settings) -> None:  # noqa: ANN001
    import psycopg2.extensions

    from quant.db import connect

    sent: list[str] = []

    class Counting(psycopg2.extensions.cursor):
        def execute(self, sql, params=None):  # noqa: ANN001, ANN202
            sent.append(sql if isinstance(sql, str) else sql.decode())
            return super().execute(sql, params)

    conn = connect(pg_settings)
    conn.cursor_factory = Counting
    try:
        broker = SimBroker(conn, account=f"r-{uuid.uuid4().hex[:8]}")
        for n in (3, 300):  # whatever the number of orders
            batch = [order(f"{n}-{i}", f"S{i:03d}", "buy", 10) for i in range(n)]
            sent.clear()
            broker.submit_many(batch)
            assert len(sent) == 1  # BEGIN, the insert under the lock and COMMIT
            sent.clear()
            fills = broker.fill_auction({f"S{i:03d}": 10.0 for i in range(n)}, at=T0)
            assert len(fills) == n
            assert len(sent) == 2  # BEGIN, lock and read; writes, their check and COMMIT
            sent.clear()
            broker.book()
            assert len(sent) == 1
            sent.clear()
            broker.mark({"S000": 11.0})
            assert len(sent) == 1
    finally:
        conn.close()
