"""Backtest costs: a known trade list costs what the formulas say, and returns drop by it."""

from __future__ import annotations

import math
import uuid
from datetime import UTC, date, datetime

import pandas as pd
import pytest

from quant.backtest import CostModel, TradeFill, accounting_costs, net_equity
from quant.config import Settings

D1, D2, D3, D4 = date(2025, 3, 3), date(2025, 3, 4), date(2025, 3, 5), date(2025, 3, 6)

TRADES = [
    TradeFill(session=D2, order_session=D1, symbol="AAA", side="buy", qty_shares=1000, price_usd=50.0),
    TradeFill(session=D2, order_session=D1, symbol="BBB", side="sell", qty_shares=200, price_usd=100.0),
    TradeFill(session=D3, order_session=D2, symbol="AAA", side="buy", qty_shares=500, price_usd=52.0),
]
VOL = {(D1, "AAA"): 0.02, (D1, "BBB"): 0.01, (D2, "AAA"): 0.03}
ADV = {(D1, "AAA"): 100_000.0, (D2, "AAA"): 20_000.0}  # BBB: no ADV -> participation 1
GROSS = pd.Series([1_000_000.0, 1_010_000.0, 1_005_000.0, 1_020_000.0], index=[D1, D2, D3, D4])


def test_accounting_costs_when_commission_bps_only_then_bps_of_notional() -> None:
    costs = CostModel(commission_bps=10.0)
    charged = accounting_costs(TRADES, costs)
    # 10 bps of (50,000 + 20,000) on D2 and of 26,000 on D3
    assert charged.to_dict() == pytest.approx({D2: 70.0, D3: 26.0})


def test_accounting_costs_when_square_root_impact_then_known_amounts() -> None:
    costs = CostModel(commission_bps=10.0, impact_coefficient=0.5)
    charged = accounting_costs(TRADES, costs, daily_vol=VOL, adv_shares=ADV)
    aaa_1 = 50.0 + 0.5 * 0.02 * math.sqrt(1000 / 100_000) * 50_000  # 50 + 50
    bbb = 20.0 + 0.5 * 0.01 * math.sqrt(1.0) * 20_000  # 20 + 100 (no ADV: participation 1)
    aaa_2 = 26.0 + 0.5 * 0.03 * math.sqrt(500 / 20_000) * 26_000  # 26 + 61.6644
    assert aaa_1 + bbb == pytest.approx(220.0)
    assert charged[D2] == pytest.approx(aaa_1 + bbb)
    assert charged[D3] == pytest.approx(aaa_2)
    assert charged[D3] == pytest.approx(87.6644, abs=1e-4)


def test_net_equity_when_costs_charged_then_returns_drop_by_cost_over_equity() -> None:
    costs = CostModel(commission_bps=10.0, impact_coefficient=0.5)
    charged = accounting_costs(TRADES, costs, daily_vol=VOL, adv_shares=ADV)
    net = net_equity(GROSS, charged)
    assert net[D1] == GROSS[D1]
    assert net[D2] == pytest.approx(1_010_000.0 - 220.0)
    assert net[D4] == pytest.approx(1_020_000.0 - 220.0 - 87.6644, abs=1e-3)
    gross_r, net_r = GROSS.pct_change(), net.pct_change()
    assert gross_r[D2] - net_r[D2] == pytest.approx(220.0 / 1_000_000.0)
    # D3: net return = (gross_D3 - 307.66) / (gross_D2 - 220) - 1
    assert net_r[D3] == pytest.approx((1_005_000.0 - 307.6644) / 1_009_780.0 - 1, abs=1e-9)


def test_net_equity_when_no_costs_then_gross() -> None:
    charged = accounting_costs(TRADES, CostModel())
    assert (charged == 0).all()
    assert net_equity(GROSS, charged).equals(GROSS)


def test_cost_model_when_negative_value_then_refused_with_the_field_named() -> None:
    with pytest.raises(ValueError, match="slippage_bps"):
        CostModel(slippage_bps=-1.0)
    with pytest.raises(ValueError, match="impact_sessions"):
        CostModel(impact_sessions=1)


def test_cost_model_when_from_settings_then_simulator_and_backtest_sections() -> None:
    settings = Settings().model_copy()
    costs = CostModel.from_settings(settings)
    assert costs.slippage_bps == settings.execution.sim_slippage_bps
    assert costs.commission_per_share_usd == settings.execution.sim_commission_per_share_usd
    assert costs.commission_bps == settings.backtest.commission_bps
    changed = costs.with_(slippage_bps=12.0).apply_to(settings)
    assert changed.execution.sim_slippage_bps == 12.0
    assert settings.execution.sim_slippage_bps != 12.0


def test_simulator_costs_when_applied_then_fill_costs_slippage_and_commission(
    pg_settings: Settings,
) -> None:
    from quant.execution import Order, OrderType, TimeInForce, open_broker

    costs = CostModel(slippage_bps=20.0, commission_per_share_usd=0.01)
    broker = open_broker(costs.apply_to(pg_settings), broker="sim", account=f"bt-{uuid.uuid4().hex[:8]}")
    try:
        start = broker.account().equity_usd
        broker.submit(Order(client_order_id="c1", symbol="AAA", side="buy", qty_shares=1000,
                            order_type=OrderType.MARKET, time_in_force=TimeInForce.OPG))
        broker.fill_auction({"AAA": 50.0}, at=datetime(2025, 3, 4, 14, 30, tzinfo=UTC))
        broker.mark({"AAA": 50.0})
        # bought 1,000 at 50 x (1 + 20 bps) = 50.10 plus 10 USD commission, marked at 50
        assert start - broker.account().equity_usd == pytest.approx(1000 * 0.10 + 10.0)
    finally:
        broker.close()
