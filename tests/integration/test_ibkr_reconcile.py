"""The execution stages with the ibkr adapter against the fake IB gateway: the orders a
session submitted, once the gateway fills them, are reconciled into ops.fills."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, time, timedelta

import pytest
from execution_world import WEIGHTS, load_world

from quant.config import Settings
from quant.execution import generate_orders, pretrade_check, reconcile, submit_orders
from quant.pipeline import run_context
from quant.testing import FakeIBGateway

pytestmark = pytest.mark.integration


@pytest.fixture()
def gateway() -> Iterator[FakeIBGateway]:
    fake = FakeIBGateway()
    fake.account_values = {"NetLiquidation": 1_000_000.0, "TotalCashValue": 1_000_000.0}
    with fake:
        yield fake


@pytest.fixture()
def settings(replay_settings: Settings, gateway: FakeIBGateway) -> Settings:
    execution = replay_settings.execution.model_copy(
        update={
            "broker_backoff_s": 0.01,
            "broker_max_backoff_s": 0.02,
            "broker_timeout_s": 5.0,
            "ib_client_id": 51,
        }
    )
    return replay_settings.model_copy(
        update={
            "broker": "ibkr",
            "ib_host": gateway.host,
            "ib_port": gateway.port,
            "execution": execution,
        }
    )


def test_reconcile_when_ibkr_orders_filled_by_gateway_then_fills_and_positions_recorded(
    settings: Settings, gateway: FakeIBGateway, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    day = world.sessions[-3]
    common = {"run_id": "r", "settings": settings, "dag_id": dag_id}
    gen = generate_orders(run_context(day, latest_session=day, targets=WEIGHTS, **common))
    assert (gen["broker"], gen["risk_check"]) == ("ibkr", "sidecar")
    pretrade_check(run_context(day, **common))
    submitted = submit_orders(run_context(day, **common))["submitted"]
    assert submitted == len(gateway.orders) > 0

    # the next session's opening auction fills every order at the open, one order in two
    # executions; commissions of half a cent a share
    nxt = world.sessions[-2]
    opens = world.opens(nxt)
    at = datetime.combine(nxt, time(14, 30), tzinfo=UTC)
    expected = {}  # exec id -> (client order id, symbol, side, shares, price, commission)
    for n, (oid, o) in enumerate(sorted(gateway.orders.items())):
        parts = [o["qty"]] if n else [o["qty"] // 2, o["qty"] - o["qty"] // 2]
        for k, shares in enumerate(parts):
            price = opens[o["symbol"]] + 0.01 * k
            commission = round(0.005 * shares, 4)
            exec_id = gateway.fill(
                oid, shares, price, commission=commission, at=at + timedelta(seconds=n + k)
            )
            side = "buy" if o["action"] == "BUY" else "sell"
            expected[exec_id] = (o["order_ref"], o["symbol"], side, shares, price, commission)
    assert {o["status"] for o in gateway.orders.values()} == {"Filled"}

    out = reconcile(run_context(day, **common))
    assert out["new_fills"] == len(expected) and out["differences"] == []
    with db_conn.cursor() as cur:
        cur.execute(
            "select fill_id, client_order_id, symbol, side, qty_shares, price_usd, "
            "commission_usd, filled_at from ops.fills where broker = 'ibkr'"
        )
        rows = cur.fetchall()
        recorded = {r[0]: (r[1], r[2], r[3], float(r[4]), float(r[5]), float(r[6])) for r in rows}
        assert {r[0]: r[7] for r in rows} == {e["exec_id"]: e["time"] for e in gateway.executions}
        cur.execute(
            "select symbol, qty_shares, avg_price_usd from ops.positions where broker = 'ibkr'"
        )
        positions = {r[0]: (float(r[1]), float(r[2])) for r in cur.fetchall()}
        cur.execute(
            "select client_order_id, qty_shares, avg_fill_price_usd from ops.orders "
            "where dag_id = %s",
            (dag_id,),
        )
        orders = {r[0]: (float(r[1]), float(r[2])) for r in cur.fetchall()}

    def rounded(row: tuple) -> tuple:
        return tuple(round(v, 6) if isinstance(v, float) else v for v in row)

    assert {k: rounded(v) for k, v in recorded.items()} == {
        k: rounded(v) for k, v in expected.items()
    }
    for o in gateway.orders.values():
        mine = [e for e in expected.values() if e[0] == o["order_ref"]]
        assert sum(e[3] for e in mine) == o["qty"] == orders[o["order_ref"]][0]
        vwap = sum(e[3] * e[4] for e in mine) / o["qty"]
        assert orders[o["order_ref"]][1] == pytest.approx(vwap)
        assert positions[o["symbol"]] == pytest.approx((o["qty"], vwap))

    again = reconcile(run_context(day, **common))  # the same executions are not recorded twice
    assert again["new_fills"] == 0 and again["differences"] == []


def test_reconcile_when_broker_split_a_held_position_then_books_follow_and_nothing_differs(
    settings: Settings, gateway: FakeIBGateway, db_conn, dag_id: str
) -> None:
    world = load_world(db_conn)
    day, nxt, ex_date = world.sessions[-3], world.sessions[-2], world.sessions[-1]
    common = {"run_id": "r", "settings": settings, "dag_id": dag_id}
    generate_orders(run_context(day, latest_session=day, targets=WEIGHTS, **common))
    pretrade_check(run_context(day, **common))
    submit_orders(run_context(day, **common))
    at = datetime.combine(nxt, time(14, 30), tzinfo=UTC)
    for oid, o in sorted(gateway.orders.items()):
        gateway.fill(oid, o["qty"], world.opens(nxt)[o["symbol"]], commission=1.0, at=at)
    assert reconcile(run_context(day, **common))["differences"] == []
    symbol = sorted(gateway.positions)[0]
    qty, avg = gateway.positions[symbol]
    # a 4-for-1 split on the session after: the broker scales the position itself
    with db_conn.cursor() as cur:
        cur.execute(
            "insert into raw.corporate_actions (symbol, ex_date, action_type, provider, "
            "split_ratio) values (%s, %s, 'split', %s, 4.0)",
            (symbol, ex_date, settings.providers[0]),
        )
    db_conn.commit()
    gateway.positions[symbol] = (qty * 4, avg / 4)

    later = {**common, "run_id": "r2"}
    generated = generate_orders(run_context(ex_date, latest_session=ex_date, targets=WEIGHTS,
                                            **later))
    out = reconcile(run_context(ex_date, **later))

    assert generated["corporate_events_booked"] == 1
    assert out["differences"] == []
    with db_conn.cursor() as cur:
        cur.execute(
            "select qty_shares, avg_price_usd from ops.positions "
            "where broker = 'ibkr' and symbol = %s",
            (symbol,),
        )
        assert cur.fetchone() == pytest.approx((qty * 4, avg / 4))
        cur.execute(
            "select event_type, split_ratio, qty_before_shares, qty_after_shares "
            "from ops.corporate_events where broker = 'ibkr'"
        )
        assert cur.fetchall() == [("split", 4.0, qty, qty * 4)]
    # a rerun of the session books nothing twice
    again = generate_orders(run_context(ex_date, latest_session=ex_date, targets=WEIGHTS,
                                        **{**later, "run_id": "r3"}))
    assert again.get("corporate_events_booked") in (None, 0)
