"""Backtest statistics against reference values computed by hand and from the papers.

The series below is small enough to check with a pocket calculator:

    r = 0.02, -0.01, 0.03, 0.00, -0.01, 0.01, 0.05, -0.02        (n = 8)
    mean = 0.07 / 8 = 0.00875
    sample variance = sum((r - mean)^2) / 7 = 0.0038875 / 7 = 0.000555357
    SR (per period) = 0.00875 / sqrt(0.000555357) = 0.371297
    m2 = 0.0038875 / 8, m3 = sum((r - mean)^3) / 8, m4 = sum((r - mean)^4) / 8
    skewness g3 = m3 / m2^1.5 = 0.508702, kurtosis g4 = m4 / m2^2 = 2.144695

PSR (Bailey & López de Prado 2012):
    PSR(SR*) = Phi( (SR - SR*) sqrt(n - 1) / sqrt(1 - g3 SR + (g4 - 1)/4 SR^2) )
DSR (Bailey & López de Prado 2014), N trials with Sharpe variance V:
    SR0 = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e))),  DSR = PSR(SR0)
"""

from __future__ import annotations

import math
from datetime import date, timedelta
from statistics import NormalDist

import numpy as np
import pandas as pd
import pytest

from quant.backtest import (
    cagr,
    calmar_ratio,
    conditional_value_at_risk,
    cost_breakdown,
    deflated_sharpe_ratio,
    drawdown_periods,
    expected_max_sharpe,
    exposure,
    fill_slippage,
    hit_rate,
    information_coefficients,
    kurtosis,
    max_drawdown,
    monthly_returns,
    probabilistic_sharpe_ratio,
    psr_from_moments,
    rolling_sharpe,
    rolling_volatility,
    sharpe_ratio,
    skewness,
    sortino_ratio,
    value_at_risk,
)

SERIES = [0.02, -0.01, 0.03, 0.00, -0.01, 0.01, 0.05, -0.02]
GAMMA = 0.5772156649015329  # Euler-Mascheroni


def _phi(z: float) -> float:
    return 0.5 * (1.0 + math.erf(z / math.sqrt(2.0)))


def _by_hand() -> dict[str, float]:
    n = len(SERIES)
    mean = sum(SERIES) / n
    dev = [x - mean for x in SERIES]
    sample_var = sum(d * d for d in dev) / (n - 1)
    sr = mean / math.sqrt(sample_var)
    m2 = sum(d**2 for d in dev) / n
    m3 = sum(d**3 for d in dev) / n
    m4 = sum(d**4 for d in dev) / n
    return {"n": n, "sr": sr, "g3": m3 / m2**1.5, "g4": m4 / m2**2}


def test_moments_when_small_series_then_match_hand_values() -> None:
    assert sharpe_ratio(SERIES) == pytest.approx(0.371297, abs=1e-6)
    assert skewness(SERIES) == pytest.approx(0.508702, abs=1e-6)
    assert kurtosis(SERIES) == pytest.approx(2.144695, abs=1e-6)
    assert sharpe_ratio(SERIES, 252) == pytest.approx(0.371297 * math.sqrt(252), abs=1e-5)


def test_psr_when_small_series_then_matches_formula_by_hand() -> None:
    h = _by_hand()
    z = h["sr"] * math.sqrt(h["n"] - 1) / math.sqrt(
        1 - h["g3"] * h["sr"] + (h["g4"] - 1) / 4 * h["sr"] ** 2
    )
    assert probabilistic_sharpe_ratio(SERIES) == pytest.approx(_phi(z), abs=1e-12)
    assert probabilistic_sharpe_ratio(SERIES) == pytest.approx(0.856598, abs=1e-6)


def test_psr_when_benchmark_equals_sharpe_then_one_half() -> None:
    assert probabilistic_sharpe_ratio(SERIES, sharpe_ratio(SERIES)) == pytest.approx(0.5)


def test_dsr_when_ten_trials_then_matches_formula_by_hand() -> None:
    h = _by_hand()
    variance, trials = 0.04, 10
    inv = NormalDist().inv_cdf
    sr0 = math.sqrt(variance) * (
        (1 - GAMMA) * inv(1 - 1 / trials) + GAMMA * inv(1 - 1 / (trials * math.e))
    )
    z = (h["sr"] - sr0) * math.sqrt(h["n"] - 1) / math.sqrt(
        1 - h["g3"] * h["sr"] + (h["g4"] - 1) / 4 * h["sr"] ** 2
    )
    assert expected_max_sharpe(trials, variance) == pytest.approx(sr0, abs=1e-12)
    assert sr0 == pytest.approx(0.314920, abs=1e-6)
    dsr = deflated_sharpe_ratio(SERIES, trials, sharpe_variance=variance)
    assert dsr == pytest.approx(_phi(z), abs=1e-12)
    assert dsr == pytest.approx(0.564242, abs=1e-6)
    assert dsr < probabilistic_sharpe_ratio(SERIES)


def test_dsr_when_one_trial_then_equals_psr_against_zero() -> None:
    assert deflated_sharpe_ratio(SERIES, 1) == pytest.approx(probabilistic_sharpe_ratio(SERIES))


def test_dsr_when_more_trials_then_lower() -> None:
    values = [deflated_sharpe_ratio(SERIES, n) for n in (1, 2, 10, 100, 1000)]
    assert all(a > b for a, b in zip(values, values[1:], strict=False))


def test_dsr_when_paper_example_then_0_9004() -> None:
    # Bailey & López de Prado (2014), section "A numerical example": 100 trials, variance of
    # the annualised Sharpe ratios 1/2, selected SR 2.5 annualised over 1,250 daily returns,
    # skewness -3, kurtosis 10 -> SR0 = 0.1132 (daily) and DSR = 0.9004.
    daily_sr = 2.5 / math.sqrt(250)
    sr0 = expected_max_sharpe(100, 0.5 / 250)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    assert psr_from_moments(daily_sr, 1250, -3.0, 10.0, sr0) == pytest.approx(0.9004, abs=5e-4)


def test_cagr_when_equity_doubles_over_two_years_then_41_percent() -> None:
    equity = np.linspace(1.0, 2.0, 505)  # 504 daily returns = two years of 252
    assert cagr(equity, 252) == pytest.approx(math.sqrt(2) - 1)


def test_drawdown_when_peak_then_trough_then_largest_loss() -> None:
    equity = [100, 120, 90, 110, 60, 130]
    assert max_drawdown(equity) == pytest.approx(0.5)  # 120 -> 60
    assert calmar_ratio(equity, 5) == pytest.approx(cagr(equity, 5) / 0.5)


def test_sortino_when_known_series_then_mean_over_downside_deviation() -> None:
    downside = math.sqrt(sum(min(x, 0.0) ** 2 for x in SERIES) / len(SERIES))
    expected = (sum(SERIES) / len(SERIES)) / downside * math.sqrt(252)
    assert sortino_ratio(SERIES) == pytest.approx(expected)


def test_hit_rate_when_zero_returns_then_left_out() -> None:
    assert hit_rate(SERIES) == pytest.approx(4 / 7)  # 4 up, 3 down, 1 flat


def test_information_coefficients_when_monotone_but_not_linear_then_rank_ic_one() -> None:
    scores = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    ic, rank_ic = information_coefficients(scores, scores**3)
    assert rank_ic == pytest.approx(1.0)
    assert 0.9 < ic < 1.0


def test_information_coefficients_when_too_few_pairs_then_nan() -> None:
    ic, rank_ic = information_coefficients(np.array([1.0, np.nan, 2.0]), np.array([1.0, 2.0, 3.0]))
    assert math.isnan(ic) and math.isnan(rank_ic)


# -- tear sheet statistics: rolling figures, months, drawdown periods, exposure, slippage ----
DAY0 = date(2025, 3, 3)


def _days(n: int) -> list[date]:
    return [DAY0 + timedelta(days=i) for i in range(n)]


def test_rolling_sharpe_when_window_two_then_mean_over_sample_sd_per_window() -> None:
    r = pd.Series([0.01, 0.03, -0.01, 0.02, 0.02, 0.02], index=_days(6))
    got = rolling_sharpe(r, 2, periods_per_year=1)
    # [0.01, 0.03]: 0.02 / (0.02 / sqrt 2); [0.03, -0.01]: 0.01 / (0.04 / sqrt 2); ...
    expected = [math.nan, 0.02 / (0.02 / math.sqrt(2)), 0.01 / (0.04 / math.sqrt(2)),
                0.005 / (0.03 / math.sqrt(2))]
    assert got.iloc[:4].to_list() == pytest.approx(expected, nan_ok=True)
    assert math.isnan(got.iloc[5])  # [0.02, 0.02]: no deviation, no ratio
    assert rolling_sharpe(r, 2, periods_per_year=4).iloc[1] == pytest.approx(2 * expected[1])
    with pytest.raises(ValueError, match="window"):
        rolling_sharpe(r, 1)


def test_rolling_volatility_when_window_two_then_sample_sd_annualised() -> None:
    r = pd.Series([0.01, 0.03, -0.01], index=_days(3))
    got = rolling_volatility(r, 2, periods_per_year=4)
    assert math.isnan(got.iloc[0])
    assert got.iloc[1:].to_list() == pytest.approx([0.02 / math.sqrt(2) * 2, 0.04 / math.sqrt(2) * 2])


def test_monthly_returns_when_sessions_in_two_years_then_compounded_per_month_and_year() -> None:
    r = pd.Series([0.10, -0.10, 0.05, 0.02],
                  index=[date(2024, 1, 30), date(2024, 1, 31), date(2024, 2, 1), date(2025, 3, 3)])
    table = monthly_returns(r)
    assert list(table.index) == [2024, 2025]
    assert list(table.columns) == [*range(1, 13), "year"]
    assert table.loc[2024, 1] == pytest.approx(1.1 * 0.9 - 1)  # -1 %, not the 0 of a sum
    assert table.loc[2024, 2] == pytest.approx(0.05)
    assert table.loc[2024, "year"] == pytest.approx(1.1 * 0.9 * 1.05 - 1)
    assert table.loc[2025, 3] == pytest.approx(0.02) and table.loc[2025, "year"] == pytest.approx(0.02)
    assert math.isnan(table.loc[2024, 3]) and math.isnan(table.loc[2025, 1])
    assert monthly_returns(pd.Series([], dtype=float)).empty


def test_drawdown_periods_when_three_falls_then_deepest_first_with_recovery_and_length() -> None:
    days = _days(11)
    equity = pd.Series([100, 95, 100, 120, 90, 110, 60, 130, 125, 128, 100], index=days, dtype=float)
    table = drawdown_periods(equity)
    rows = [tuple(r) for r in table.itertuples(index=False)]
    assert rows == [
        (days[3], days[6], days[7], pytest.approx(0.5), 4, 3),  # 120 -> 60, back at 130
        (days[7], days[10], None, pytest.approx(1 - 100 / 130), 3, 3),  # not recovered
        (days[0], days[1], days[2], pytest.approx(0.05), 2, 1),  # back at exactly 100
    ]
    assert table["depth"].iloc[0] == pytest.approx(max_drawdown(equity.to_numpy()))
    assert len(drawdown_periods(equity, top=2)) == 2
    assert drawdown_periods(pd.Series([1.0, 2.0, 3.0], index=days[:3])).empty


def test_value_at_risk_when_21_returns_then_fifth_percentile_and_tail_mean() -> None:
    r = [-0.10, -0.04] + [0.01] * 19  # the 5th percentile of 21 values is the second lowest
    assert value_at_risk(r, 0.95) == pytest.approx(-0.04)
    assert conditional_value_at_risk(r, 0.95) == pytest.approx(-0.07)
    assert math.isnan(value_at_risk([], 0.95))


def test_exposure_when_long_and_short_then_gross_abs_and_net_signed_over_equity() -> None:
    days = _days(3)
    positions = pd.DataFrame(
        [(days[0], "AAA", 10.0, 50.0), (days[0], "BBB", -5.0, 20.0), (days[1], "AAA", 10.0, 55.0)],
        columns=["session", "symbol", "qty_shares", "price_usd"],
    )
    got = exposure(positions, pd.Series([1_000.0, 1_100.0, 900.0], index=days))
    assert got["gross"].to_list() == pytest.approx([0.6, 0.5, 0.0])  # (500 + 100) / 1000
    assert got["net"].to_list() == pytest.approx([0.4, 0.5, 0.0])  # (500 - 100) / 1000


def _slipped() -> pd.DataFrame:
    days = _days(3)
    orders = pd.DataFrame(
        [(days[0], "AAA", "buy", 100.0), (days[1], "AAA", "sell", 110.0)],
        columns=["session", "symbol", "side", "ref_price_usd"],
    )
    fills = pd.DataFrame(
        [(days[0], "BBB", "buy", 2.0, 50.05, 0.1),  # no order in the range
         (days[1], "AAA", "buy", 10.0, 101 * 1.001, 1.0),  # auction 101, 10 bps against
         (days[2], "AAA", "sell", 5.0, 108 * 0.999, 0.5)],  # auction 108
        columns=["session", "symbol", "side", "qty_shares", "price_usd", "commission_usd"],
    )
    return fill_slippage(fills, orders, days, slippage_bps=10.0)


def test_fill_slippage_when_buy_and_sell_then_cost_vs_auction_and_decision_price() -> None:
    slipped = _slipped()
    assert slipped["slippage_usd"].to_list() == pytest.approx(
        [2 * 50.05 * (1 - 1 / 1.001), 10 * 0.101, 5 * 0.108])
    # buy: paid 101.101 on a decision at 100; sell: got 107.892 on a decision at 110
    assert slipped["shortfall_usd"].iloc[1:].to_list() == pytest.approx(
        [10 * 1.101, 5 * 2.108])
    assert math.isnan(slipped["shortfall_usd"].iloc[0])
    assert slipped["notional_usd"].iloc[1] == pytest.approx(1_011.01)


def test_cost_breakdown_when_fills_and_accounting_then_usd_per_session() -> None:
    days = _days(3)
    frame = cost_breakdown(_slipped(), pd.Series({days[2]: 3.0}), pd.Index(days))
    assert list(frame.columns) == ["commission_usd", "accounting_usd", "slippage_usd",
                                   "shortfall_usd"]
    assert frame["commission_usd"].to_list() == pytest.approx([0.1, 1.0, 0.5])
    assert frame["accounting_usd"].to_list() == pytest.approx([0.0, 0.0, 3.0])
    assert frame["slippage_usd"].to_list() == pytest.approx(
        [2 * 50.05 * (1 - 1 / 1.001), 1.01, 0.54])
    assert frame["shortfall_usd"].to_list() == pytest.approx([0.0, 11.01, 10.54])
