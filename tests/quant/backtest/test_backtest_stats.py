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
from statistics import NormalDist

import numpy as np
import pytest

from quant.backtest import (
    cagr,
    calmar_ratio,
    deflated_sharpe_ratio,
    expected_max_sharpe,
    hit_rate,
    information_coefficients,
    kurtosis,
    max_drawdown,
    probabilistic_sharpe_ratio,
    psr_from_moments,
    sharpe_ratio,
    skewness,
    sortino_ratio,
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
