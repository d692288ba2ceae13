"""Invariants of the rules engine over arbitrary order streams (hypothesis)."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quant.risk import RiskContext, RiskEngine, RiskLimits, RiskOrder, RuleMode

SYMBOLS = {"A": "S1", "B": "S1", "C": "S2", "D": "S3"}
MARKS = {"A": 50.0, "B": 120.0, "C": 10.0, "D": 300.0}
NOW = 1_800_000_000.0

orders_st = st.lists(
    st.tuples(
        st.sampled_from(sorted(SYMBOLS)),
        st.sampled_from(["buy", "sell"]),
        st.integers(min_value=1, max_value=5_000),
        st.floats(min_value=0.85, max_value=1.15),
    ),
    min_size=1,
    max_size=60,
)


def fresh_ctx(limits: RiskLimits) -> RiskContext:
    ctx = RiskContext(limits)
    ctx.load_book(
        cash_usd=1_000_000.0,
        positions={"A": 1000, "C": -2000},
        marks=MARKS,
        now=NOW,
        universe=SYMBOLS,
        session="2027-01-15",
    )
    return ctx


def as_orders(raw: list[tuple[str, str, int, float]]) -> list[RiskOrder]:
    return [
        RiskOrder(f"o-{i}", s, side, float(q), MARKS[s] * f)
        for i, (s, side, q, f) in enumerate(raw)
    ]


@settings(max_examples=150, deadline=None)
@given(orders_st)
def test_approvals_never_push_exposure_past_a_limit(raw: list[tuple[str, str, int, float]]) -> None:
    limits = RiskLimits(
        max_gross_exposure=0.5,
        max_net_exposure=0.3,
        max_sector_exposure=0.25,
        max_position_weight=0.2,
        max_notional_per_order_usd=150_000.0,
    )
    ctx = fresh_ctx(limits)
    engine = RiskEngine(ctx)
    for o in as_orders(raw):
        gross_before = ctx.gross_usd
        result = engine.check(o, NOW)
        if result.approved:
            equity = ctx.equity_usd
            assert ctx.gross_usd / equity <= 0.5 + 1e-9 or ctx.gross_usd <= gross_before + 1e-6
            assert o.notional_usd <= 150_000.0


@settings(max_examples=100, deadline=None)
@given(orders_st)
def test_incremental_exposures_equal_a_full_revaluation(
    raw: list[tuple[str, str, int, float]],
) -> None:
    ctx = fresh_ctx(RiskLimits(max_gross_exposure=None, max_position_weight=None))
    engine = RiskEngine(ctx)
    engine.check_batch(as_orders(raw), NOW)
    gross, net, sectors = ctx.gross_usd, ctx.net_usd, dict(ctx.sector_gross_usd)
    ctx.revalue()
    assert gross == pytest.approx(ctx.gross_usd, rel=1e-9, abs=1e-6)
    assert net == pytest.approx(ctx.net_usd, rel=1e-9, abs=1e-6)
    for sector, value in ctx.sector_gross_usd.items():
        assert sectors.get(sector, 0.0) == pytest.approx(value, rel=1e-9, abs=1e-6)


@settings(max_examples=100, deadline=None)
@given(
    st.sampled_from(sorted(SYMBOLS)),
    st.sampled_from(["buy", "sell"]),
    st.integers(1, 20_000),
    st.floats(0.5, 1.5),
)
def test_shadow_mode_reports_exactly_what_deny_mode_enforces(
    symbol: str, side: str, qty: int, factor: float
) -> None:
    deny_ctx = fresh_ctx(RiskLimits())
    shadow_names = [
        "quantity", "price", "unknown_symbol", "restricted_symbol", "duplicate_client_order_id",
        "stale_price", "price_band", "max_notional_per_order", "rate_limit", "symbol_override",
        "strategy_override", "max_position_weight", "gross_exposure", "net_exposure",
        "sector_exposure", "daily_loss", "max_drawdown",
    ]  # fmt: skip
    log_ctx = fresh_ctx(RiskLimits(rule_modes={n: RuleMode.LOG for n in shadow_names}))
    o = RiskOrder("x", symbol, side, float(qty), MARKS[symbol] * factor)
    denied = RiskEngine(deny_ctx).check(copy.copy(o), NOW)
    shadowed = RiskEngine(log_ctx).check(o, NOW)
    assert shadowed.approved
    assert [d.code for d in shadowed.shadow] == [d.code for d in denied.denials]
