"""The simulator's books add up, for any sequence of orders and auctions (hypothesis)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quant.execution import Order, SimBroker, TimeInForce

pytestmark = pytest.mark.integration

SYMBOLS = ("AAA", "BBB", "CCC")
T0 = datetime(2026, 11, 2, 14, 30, tzinfo=UTC)

order_st = st.tuples(
    st.sampled_from(SYMBOLS), st.sampled_from(["buy", "sell"]), st.integers(1, 400)
)
auction_st = st.tuples(
    st.lists(order_st, max_size=5),
    st.fixed_dictionaries({s: st.floats(1.0, 500.0) for s in SYMBOLS}),
    st.one_of(st.none(), st.fixed_dictionaries({s: st.integers(0, 3_000) for s in SYMBOLS})),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    days=st.lists(auction_st, min_size=1, max_size=4),
    slippage_bps=st.sampled_from([0.0, 5.0, 25.0]),
    commission=st.sampled_from([0.0, 0.005, 0.01]),
)
def test_sim_for_any_orders_then_cash_positions_and_equity_add_up(
    db_conn,
    days,
    slippage_bps: float,
    commission: float,  # noqa: ANN001
) -> None:
    initial = 250_000.0
    broker = SimBroker(
        db_conn,
        account=f"acct-{uuid.uuid4().hex[:10]}",
        initial_cash_usd=initial,
        slippage_bps=slippage_bps,
        commission_per_share_usd=commission,
        max_participation=0.1,
    )
    n = 0
    for i, (orders, prices, volumes) in enumerate(days):
        for symbol, side, qty in orders:
            n += 1
            broker.submit(
                Order(
                    client_order_id=f"o{n}",
                    symbol=symbol,
                    side=side,
                    qty_shares=qty,
                    time_in_force=TimeInForce.OPG,
                )
            )
        cash_before = broker.account().cash_usd
        fills = broker.fill_auction(prices, at=T0 + timedelta(days=i), volumes=volumes)
        cash_after = broker.account().cash_usd
        # fills x price = cash change minus commission
        traded = sum(f.signed_qty_shares * f.price_usd for f in fills)
        fees = sum(f.commission_usd for f in fills)
        assert cash_before - cash_after == pytest.approx(traded + fees, rel=1e-9, abs=1e-6)
        bps = slippage_bps / 10_000
        for f in fills:
            assert f.commission_usd == pytest.approx(f.qty_shares * commission)
            moved = prices[f.symbol] * (1 + bps if f.side == "buy" else 1 - bps)
            assert f.price_usd == pytest.approx(moved)
            if volumes is not None:
                assert f.qty_shares <= 0.1 * volumes[f.symbol]
        broker.cancel_all()  # day orders expire
    all_fills = broker.fills_since(T0 - timedelta(days=1))
    account = broker.account()
    spent = sum(f.signed_qty_shares * f.price_usd + f.commission_usd for f in all_fills)
    assert account.cash_usd == pytest.approx(initial - spent, rel=1e-9, abs=1e-6)
    held = {p.symbol: p.qty_shares for p in broker.positions()}
    for symbol in SYMBOLS:
        net = sum(f.signed_qty_shares for f in all_fills if f.symbol == symbol)
        assert held.get(symbol, 0.0) == pytest.approx(net)
    marks = {s: 10.0 + 7 * k for k, s in enumerate(SYMBOLS)}
    broker.mark(marks)
    value = sum(held.get(s, 0.0) * marks[s] for s in SYMBOLS)
    # cash + market value = equity
    assert broker.account().equity_usd == pytest.approx(account.cash_usd + value, abs=1e-6)
