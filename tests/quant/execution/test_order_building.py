"""Order generation from target weights (pure): sizes, caps, ordering, cash."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.execution import build_orders

PRICES = {"A": 10.0, "B": 25.0, "C": 100.0, "D": 3.5}


def test_build_when_flat_book_then_whole_shares_of_weight_times_equity() -> None:
    plan = build_orders(
        {"A": 0.1, "B": 0.2}, equity_usd=10_000, cash_usd=10_000, positions={}, prices=PRICES
    )
    assert [(o.symbol, o.side, o.qty_shares) for o in plan.orders] == [
        ("A", "buy", 100.0),
        ("B", "buy", 80.0),
    ]


def test_build_when_lot_size_then_rounds_toward_zero_to_lots() -> None:
    plan = build_orders(
        {"A": 0.1234},
        equity_usd=10_000,
        cash_usd=10_000,
        positions={},
        prices=PRICES,
        lot_sizes={"A": 50},
    )
    assert plan.orders[0].qty_shares == 100.0  # 123.4 shares -> 100


def test_build_when_held_without_weight_then_sells_everything_first() -> None:
    plan = build_orders(
        {"B": 0.2},
        equity_usd=10_000,
        cash_usd=5_000,
        positions={"A": 7, "C": -3},
        prices=PRICES,
        lot_sizes={"A": 5},
        min_notional_usd=0,
    )
    sides = [(o.symbol, o.side, o.qty_shares) for o in plan.orders]
    assert sides[0] == ("A", "sell", 7.0)  # odd lot closed entirely
    assert ("C", "buy", 3.0) in sides  # short covered
    assert [o.side for o in plan.orders] == sorted(
        (o.side for o in plan.orders), key=lambda s: s != "sell"
    )


def test_build_when_order_over_volume_share_then_capped() -> None:
    plan = build_orders(
        {"A": 0.5},
        equity_usd=100_000,
        cash_usd=100_000,
        positions={},
        prices=PRICES,
        adv_shares={"A": 10_000},
        max_adv_participation=0.08,
    )
    [o] = plan.orders
    assert (o.qty_shares, o.adv_capped) == (800.0, True)


def test_build_when_below_min_notional_or_no_price_then_dropped_with_reason() -> None:
    plan = build_orders(
        {"A": 0.001, "Z": 0.1},
        equity_usd=10_000,
        cash_usd=10_000,
        positions={},
        prices=PRICES,
        min_notional_usd=100,
    )
    assert plan.orders == []
    assert {(d["symbol"], d["reason"]) for d in plan.dropped} == {
        ("A", "below_min_notional"),
        ("Z", "no_price"),
    }


def test_build_when_buys_exceed_cash_then_scaled_to_cash_after_sells() -> None:
    plan = build_orders(
        {"A": 0.5, "B": 0.5},
        equity_usd=10_000,
        cash_usd=1_000,
        positions={"C": 20},  # 2000 USD of C to sell
        prices=PRICES,
        min_notional_usd=0,
    )
    buys = [o for o in plan.orders if o.side == "buy"]
    spent = sum(o.notional_usd for o in buys)
    assert plan.buy_scale < 1 and all(o.cash_capped for o in buys)
    assert spent <= 1_000 + 2_000


weights_st = st.dictionaries(
    st.sampled_from(sorted(PRICES)), st.floats(-0.3, 0.3, allow_nan=False), max_size=4
)
positions_st = st.dictionaries(
    st.sampled_from(sorted(PRICES)), st.integers(-500, 500).map(float), max_size=4
)


@settings(max_examples=300, deadline=None)
@given(
    weights=weights_st,
    positions=positions_st,
    equity=st.floats(1_000, 1_000_000),
    cash=st.floats(0, 1_000_000),
    lots=st.dictionaries(st.sampled_from(sorted(PRICES)), st.sampled_from([1, 10, 100])),
    adv=st.dictionaries(st.sampled_from(sorted(PRICES)), st.floats(0, 100_000)),
    min_notional=st.sampled_from([0.0, 100.0, 1_000.0]),
    buffer=st.floats(0, 1_000),
)
def test_build_for_any_book_then_every_limit_holds(
    weights,
    positions,
    equity,
    cash,
    lots,
    adv,
    min_notional,
    buffer,  # noqa: ANN001
) -> None:
    plan = build_orders(
        weights,
        equity_usd=equity,
        cash_usd=cash,
        positions=positions,
        prices=PRICES,
        adv_shares=adv,
        lot_sizes=lots,
        min_notional_usd=min_notional,
        max_adv_participation=0.08,
        cash_buffer_usd=buffer,
    )
    seen = set()
    sells_done = False
    proceeds = sum(o.notional_usd for o in plan.orders if o.side == "sell")
    for o in plan.orders:
        assert o.symbol not in seen  # one order per symbol
        seen.add(o.symbol)
        if o.side == "buy":
            sells_done = True
        else:
            assert not sells_done  # every sell before every buy
        assert o.qty_shares > 0 and o.qty_shares == math.floor(o.qty_shares)
        assert o.notional_usd >= min_notional - 1e-9
        assert o.qty_shares <= 0.08 * adv[o.symbol] + 1e-9
        lot = lots.get(o.symbol, 1)
        closing = o.target_qty_shares == 0 and o.qty_shares == abs(o.current_qty_shares)
        assert closing or o.qty_shares % lot == 0
        # never trades past the target
        signed = o.qty_shares if o.side == "buy" else -o.qty_shares
        before = o.target_qty_shares - o.current_qty_shares
        assert abs(signed) <= abs(before) + 1e-9 and signed * before > 0
    buys = sum(o.notional_usd for o in plan.orders if o.side == "buy")
    assert buys <= max(cash + proceeds - buffer, 0.0) + 1e-6


@pytest.mark.parametrize("qty", [0.5, 1.5])
def test_build_when_target_rounds_to_held_then_no_order(qty: float) -> None:
    plan = build_orders(
        {"A": 0.01},
        equity_usd=1_000 * qty,
        cash_usd=0,
        positions={"A": math.floor(qty)},
        prices=PRICES,
        min_notional_usd=0,
    )
    assert plan.orders == []
