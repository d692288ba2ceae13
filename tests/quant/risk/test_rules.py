"""Each reason code from an order built to break exactly that rule and no other."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from quant.risk import (
    ALL_RULES,
    Override,
    ReasonCode,
    RiskContext,
    RiskEngine,
    RiskLimits,
    RiskOrder,
    RuleMode,
    TradingState,
    default_rules,
)

NOW = 1_800_000_000.0
UNIVERSE = {
    "AAPL": "Technology",
    "MSFT": "Technology",
    "XOM": "Energy",
    "JPM": "Financials",
    "NOMARK": "Energy",
}
MARKS = {"AAPL": 100.0, "MSFT": 400.0, "XOM": 110.0, "JPM": 200.0}


def make_engine(**limits: object) -> RiskEngine:
    """Book: 990,000 USD cash + 100 AAPL at 100 = 1,000,000 USD equity, fresh marks."""
    ctx = RiskContext(RiskLimits(**limits))  # type: ignore[arg-type]
    ctx.load_book(
        cash_usd=990_000.0,
        positions={"AAPL": 100},
        marks=MARKS,
        now=NOW,
        universe=UNIVERSE,
        session="2027-01-15",
    )
    return RiskEngine(ctx)


def order(
    symbol: str = "MSFT",
    side: str = "buy",
    qty: float = 10,
    price: float | None = None,
    *,
    coid: str = "o-1",
    strategy: str | None = None,
) -> RiskOrder:
    px = MARKS.get(symbol, 50.0) if price is None else price
    return RiskOrder(coid, symbol, side, qty, px, strategy)


def reasons(engine: RiskEngine, o: RiskOrder, now: float = NOW) -> list[str]:
    return engine.check(o, now).reasons


def test_check_when_order_breaks_nothing_then_approves() -> None:
    result = make_engine().check(order(), NOW)
    assert result.approved
    assert result.reasons == [] and result.shadow == []


def test_check_when_halted_then_denies_trading_halted() -> None:
    engine = make_engine()
    engine.ctx.state = TradingState.HALTED
    assert reasons(engine, order()) == ["TRADING_HALTED"]


def test_check_when_reducing_then_blocks_a_buy_and_lets_a_sell_of_the_long_through() -> None:
    engine = make_engine()
    engine.ctx.state = TradingState.REDUCING
    assert reasons(engine, order("MSFT", "buy", 10)) == ["TRADING_REDUCING"]
    assert reasons(engine, order("AAPL", "buy", 10, coid="o-2")) == ["TRADING_REDUCING"]
    assert reasons(engine, order("AAPL", "sell", 60, coid="o-3")) == []


def test_check_when_reducing_then_a_sell_that_flips_the_long_is_denied() -> None:
    engine = make_engine()
    engine.ctx.state = TradingState.REDUCING
    assert reasons(engine, order("AAPL", "sell", 150)) == ["TRADING_REDUCING"]


@pytest.mark.parametrize("qty", [0, -5, 10.5, float("inf")])
def test_check_when_quantity_not_positive_whole_then_denies_invalid_quantity(qty: float) -> None:
    assert reasons(make_engine(), order(qty=qty)) == ["INVALID_QUANTITY"]


def test_check_when_quantity_not_multiple_of_lot_then_denies_invalid_quantity() -> None:
    engine = make_engine(lot_size=100)
    assert reasons(engine, order(qty=150)) == ["INVALID_QUANTITY"]
    assert reasons(engine, order(qty=100, coid="o-2")) == []


@pytest.mark.parametrize("price", [0.0, -1.0, float("inf")])
def test_check_when_price_not_positive_then_denies_invalid_price(price: float) -> None:
    assert reasons(make_engine(), order(price=price)) == ["INVALID_PRICE"]


def test_check_when_symbol_not_in_universe_then_denies_unknown_symbol() -> None:
    assert reasons(make_engine(), order("ZZZZ", price=50.0)) == ["UNKNOWN_SYMBOL"]


def test_check_when_symbol_restricted_then_denies_restricted_symbol() -> None:
    engine = make_engine(restricted_symbols=frozenset({"XOM"}))
    assert reasons(engine, order("XOM")) == ["RESTRICTED_SYMBOL"]


def test_check_when_client_order_id_seen_then_denies_duplicate() -> None:
    engine = make_engine()
    assert reasons(engine, order(coid="same")) == []
    assert reasons(engine, order(coid="same")) == ["DUPLICATE_CLIENT_ORDER_ID"]


def test_check_when_mark_older_than_limit_then_denies_stale_price() -> None:
    engine = make_engine(max_mark_age_s=60.0)
    assert reasons(engine, order(), now=NOW + 61) == ["STALE_PRICE"]
    assert reasons(engine, order(coid="o-2"), now=NOW + 59) == []


def test_check_when_known_symbol_has_no_mark_then_denies_stale_price() -> None:
    result = make_engine().check(order("NOMARK", price=20.0), NOW)
    assert result.reasons == ["STALE_PRICE"]
    assert result.denials[0].context["mark_age_s"] is None


def test_check_when_price_far_from_mark_then_denies_price_outside_band() -> None:
    result = make_engine().check(order(price=400.0 * 1.11), NOW)
    assert result.reasons == ["PRICE_OUTSIDE_BAND"]
    assert result.denials[0].context["band"] == 0.10
    assert result.denials[0].context["deviation"] == pytest.approx(0.11)


def test_check_when_notional_over_limit_then_denies() -> None:
    engine = make_engine(max_notional_per_order_usd=50_000.0)
    result = engine.check(order(qty=150), NOW)  # 60,000 USD, 6 % of equity
    assert result.reasons == ["NOTIONAL_EXCEEDS_MAX_PER_ORDER"]
    assert result.denials[0].context == {
        "notional_usd": 60_000.0,
        "max_notional_usd": 50_000.0,
        "size_multiplier": 1.0,
    }


def test_check_when_orders_per_second_exhausted_then_denies_rate_limit() -> None:
    engine = make_engine(max_orders_per_second=2)
    assert reasons(engine, order(coid="a")) == []
    assert reasons(engine, order(coid="b")) == []
    result = engine.check(order(coid="c"), NOW)
    assert result.reasons == ["RATE_LIMIT_EXCEEDED"]
    assert result.denials[0].context["window"] == "second"
    assert reasons(engine, order(coid="d"), now=NOW + 1) == []


def test_check_when_orders_per_day_exhausted_then_denies_rate_limit() -> None:
    engine = make_engine(max_orders_per_second=0, max_orders_per_day=1)
    assert reasons(engine, order(coid="a")) == []
    result = engine.check(order(coid="b"), NOW + 5)
    assert result.reasons == ["RATE_LIMIT_EXCEEDED"]
    assert result.denials[0].context["window"] == "day"


def test_check_when_symbol_trading_disabled_then_denies() -> None:
    engine = make_engine()
    engine.ctx.set_override("symbol", "msft", Override(trading_disabled=True, reason="halted news"))
    assert reasons(engine, order()) == ["SYMBOL_TRADING_DISABLED"]


def test_check_when_symbol_reduce_only_then_denies_increase_and_allows_decrease() -> None:
    engine = make_engine()
    engine.ctx.set_override("symbol", "AAPL", Override(reduce_only=True, reason="mismatch"))
    assert reasons(engine, order("AAPL", "buy", 10)) == ["SYMBOL_REDUCE_ONLY"]
    assert reasons(engine, order("AAPL", "sell", 10, coid="o-2")) == []


def test_check_when_strategy_trading_disabled_then_denies() -> None:
    engine = make_engine()
    engine.ctx.set_override("strategy", "momo", Override(trading_disabled=True))
    assert reasons(engine, order(strategy="momo")) == ["STRATEGY_TRADING_DISABLED"]
    assert reasons(engine, order(strategy="other", coid="o-2")) == []


def test_check_when_strategy_reduce_only_then_denies_increase() -> None:
    engine = make_engine()
    engine.ctx.set_override("strategy", "momo", Override(reduce_only=True))
    assert reasons(engine, order(strategy="momo")) == ["STRATEGY_REDUCE_ONLY"]


def test_check_when_book_not_loaded_then_denies_book_not_loaded() -> None:
    ctx = RiskContext(RiskLimits())
    ctx.add_universe(["MSFT"], "Technology")
    ctx.apply_marks({"MSFT": 400.0}, NOW)
    assert reasons(RiskEngine(ctx), order()) == ["BOOK_NOT_LOADED"]


def test_check_when_position_weight_over_limit_then_denies() -> None:
    result = make_engine().check(order(qty=300), NOW)  # 120,000 USD = 12 % of equity
    assert result.reasons == ["POSITION_EXCEEDS_MAX_WEIGHT"]
    assert result.denials[0].context["weight_after"] == pytest.approx(0.12)


def test_check_when_gross_exposure_over_limit_then_denies() -> None:
    engine = make_engine(max_gross_exposure=0.04)
    assert reasons(engine, order(qty=100)) == ["GROSS_EXPOSURE_EXCEEDED"]  # 50k / 1M


def test_check_when_net_exposure_over_limit_then_denies() -> None:
    engine = make_engine(max_net_exposure=0.04)
    assert reasons(engine, order(qty=100)) == ["NET_EXPOSURE_EXCEEDED"]


def test_check_when_sector_exposure_over_limit_then_denies() -> None:
    engine = make_engine(max_sector_exposure=0.04)
    result = engine.check(order(qty=100), NOW)
    assert result.reasons == ["SECTOR_EXPOSURE_EXCEEDED"]
    assert result.denials[0].context["sector"] == "Technology"
    assert reasons(engine, order("XOM", qty=100, coid="o-2")) == []  # another sector


def test_check_when_day_loss_past_limit_then_denies_new_risk_but_not_reductions() -> None:
    engine = make_engine(daily_loss_limit_usd=1_000.0)
    engine.ctx.apply_marks({"AAPL": 85.0}, NOW)  # -1,500 USD on the day
    assert reasons(engine, order()) == ["DAILY_LOSS_LIMIT"]
    assert reasons(engine, order("AAPL", "sell", 50, price=85.0, coid="o-2")) == []


def test_check_when_drawdown_past_limit_then_denies_max_drawdown() -> None:
    engine = make_engine(max_drawdown_pct=0.001)
    engine.ctx.apply_marks({"AAPL": 85.0}, NOW)  # 0.15 % below the peak
    assert reasons(engine, order()) == ["MAX_DRAWDOWN"]


def test_every_order_reason_code_is_covered_by_a_rule() -> None:
    produced = {code for rule in ALL_RULES for code in rule.codes}
    trigger_only = {
        ReasonCode.STALE_FEED,
        ReasonCode.REJECTION_BURST,
        ReasonCode.MANUAL,
        ReasonCode.STATE_UNREADABLE,
        ReasonCode.STATE_RESTORED,
        ReasonCode.OVERRIDE,
    }
    assert produced == set(ReasonCode) - trigger_only


def test_check_when_rule_in_log_mode_then_reports_shadow_and_approves() -> None:
    engine = make_engine(
        max_notional_per_order_usd=50_000.0,
        rule_modes={"max_notional_per_order": RuleMode.LOG},
    )
    result = engine.check(order(qty=150), NOW)
    assert result.approved
    assert [str(d.code) for d in result.shadow] == ["NOTIONAL_EXCEEDS_MAX_PER_ORDER"]


def test_rules_when_state_gate_put_in_log_mode_then_refused() -> None:
    with pytest.raises(ValueError, match="cannot run in log mode"):
        default_rules(RiskLimits(rule_modes={"trading_state": RuleMode.LOG}))
    with pytest.raises(ValueError, match="unknown rule"):
        default_rules(RiskLimits(rule_modes={"nope": RuleMode.LOG}))


def test_overrides_when_symbol_and_strategy_multipliers_then_strictest_applies() -> None:
    engine = make_engine(max_notional_per_order_usd=100_000.0, max_position_weight=0.5)
    engine.ctx.set_override("symbol", "MSFT", Override(size_multiplier=0.5))
    engine.ctx.set_override("strategy", "momo", Override(size_multiplier=0.2))
    # 24,000 USD: under the symbol's 50,000 but over the strategy's 20,000
    result = engine.check(order(qty=60, strategy="momo"), NOW)
    assert result.reasons == ["NOTIONAL_EXCEEDS_MAX_PER_ORDER"]
    assert result.denials[0].context["max_notional_usd"] == pytest.approx(20_000.0)
    assert reasons(engine, order(qty=60, coid="o-2")) == []


def test_overrides_when_disabled_and_reduce_only_then_disabled_wins() -> None:
    engine = make_engine()
    engine.ctx.set_override("symbol", "AAPL", Override(reduce_only=True, trading_disabled=True))
    assert reasons(engine, order("AAPL", "sell", 10)) == ["SYMBOL_TRADING_DISABLED"]


def test_check_batch_when_orders_approved_then_later_orders_see_them_in_flight() -> None:
    engine = make_engine()
    results = engine.check_batch(
        [order(qty=150, coid="a"), order(qty=150, coid="b")], NOW
    )  # 60k each: the second takes MSFT to 12 % of equity
    assert [r.reasons for r in results] == [[], ["POSITION_EXCEEDS_MAX_WEIGHT"]]
    assert engine.ctx.in_flight == {"MSFT": 150}


def test_risk_package_imports_only_the_standard_library() -> None:
    allowed_roots = set(sys.stdlib_module_names) | {"quant", "numpy"}
    folder = Path(__import__("quant.risk").risk.__file__).parent
    for path in folder.glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = [a.name.split(".")[0] for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                roots = [(node.module or "").split(".")[0]]
                if (
                    node.module
                    and node.module.startswith("quant")
                    and not node.module.startswith("quant.risk")
                ):
                    pytest.fail(f"{path.name} imports {node.module}")
            else:
                continue
            for root in roots:
                assert root in allowed_roots, f"{path.name} imports {root}"
