"""Metrics, drift, scoring and the retrain policy on hand-built inputs."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from quant.model import (
    daily_metrics,
    feature_drift,
    population_stability_index,
    reference_distribution,
    retrain_due,
    schedule_due,
    score_cross_section,
    score_metrics,
)


def _panel(n_dates: int = 30, n_names: int = 50, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    dates = np.repeat(pd.bdate_range("2024-01-01", periods=n_dates).to_numpy(), n_names)
    returns = rng.normal(0.0, 0.02, size=dates.size)
    return pd.DataFrame({"d": dates, "r": returns, "noise": rng.normal(size=dates.size)})


def test_daily_metrics_when_scores_equal_returns_then_perfect_ic_hit_rate_and_positive_spread() -> (
    None
):
    panel = _panel()
    daily = daily_metrics(panel["d"], panel["r"], panel["r"])
    assert np.allclose(daily["ic"], 1.0)
    assert np.allclose(daily["rank_ic"], 1.0)
    assert np.allclose(daily["hit_rate"], 1.0)
    assert (daily["quintile_spread"] > 0).all()
    reversed_ = daily_metrics(panel["d"], -panel["r"], panel["r"])
    assert np.allclose(reversed_["rank_ic"], -1.0)
    assert (reversed_["quintile_spread"] < 0).all()


def test_daily_metrics_when_random_scores_then_match_scipy_per_date() -> None:
    panel = _panel(seed=5)
    scores = panel["r"] * 0.3 + panel["noise"] * 0.02
    daily = daily_metrics(panel["d"], scores, panel["r"])
    for day, rows in panel.assign(s=scores).groupby("d"):
        assert daily.loc[day, "ic"] == pytest.approx(stats.pearsonr(rows["s"], rows["r"])[0])
        assert daily.loc[day, "rank_ic"] == pytest.approx(stats.spearmanr(rows["s"], rows["r"])[0])
        top = rows["r"][rows["s"] >= rows["s"].quantile(0.8)].mean()
        bottom = rows["r"][rows["s"] <= rows["s"].quantile(0.2)].mean()
        assert daily.loc[day, "quintile_spread"] == pytest.approx(top - bottom)
    summary = score_metrics(panel["d"], scores, panel["r"])
    assert summary["rank_ic"] == pytest.approx(daily["rank_ic"].mean())
    assert summary["icir"] == pytest.approx(daily["rank_ic"].mean() / daily["rank_ic"].std())
    assert summary["sessions"] == 30


def test_population_stability_index_when_same_distribution_then_small_and_when_shifted_then_large() -> (
    None
):
    rng = np.random.default_rng(1)
    train = pd.DataFrame({"x": rng.normal(size=20_000), "y": rng.normal(size=20_000)})
    reference = reference_distribution(train, ["x", "y"], bins=10)
    same = pd.DataFrame({"x": rng.normal(size=2_000), "y": rng.normal(size=2_000)})
    shifted = pd.DataFrame({"x": rng.normal(size=2_000) + 1.0, "y": rng.normal(size=2_000)})
    assert max(feature_drift(reference, same).values()) < 0.05
    drift = feature_drift(reference, shifted)
    assert list(drift)[0] == "x"
    assert drift["x"] > 0.25
    assert drift["y"] < 0.05


def test_window_psi_when_one_window_strays_then_largest_of_every_run_not_only_disjoint_blocks() -> (
    None
):
    from quant.model._drift import _largest_window_psi, _session_numbers

    rng = np.random.default_rng(3)
    days = pd.bdate_range("2024-01-01", periods=100)
    frame = pd.DataFrame({"session_date": np.repeat(days, 40), "x": rng.normal(size=4_000)})
    # sessions 55..64 shift: they straddle the disjoint 20-session blocks (40..59 and 60..79
    # hold five each), while the run 50..69 holds all ten
    frame.loc[frame["session_date"].isin(days[55:65]), "x"] += 3.0
    ref = reference_distribution(frame, ["x"], bins=10, window_sessions=20)["x"]
    sessions = _session_numbers(frame)
    edges, shares = np.asarray(ref["edges"]), np.asarray(ref["shares"])
    values = frame["x"].to_numpy()
    runs = [population_stability_index(edges, shares,
                                       values[(sessions >= k) & (sessions < k + 20)])
            for k in range(81)]
    blocks = [runs[k] for k in range(0, 81, 20)]  # disjoint blocks counted from the end
    assert max(runs) > max(blocks) + 0.1
    assert ref["window_psi"] == pytest.approx(max(runs))
    assert ref["window_psi"] == pytest.approx(
        _largest_window_psi(values, sessions, 20, edges, shares))
    assert "market_wide" not in ref


def test_calibrated_drift_when_feature_market_wide_then_zero_and_cross_sectional_kept() -> None:
    from quant.model import calibrated_drift

    rng = np.random.default_rng(4)
    days = pd.bdate_range("2024-01-01", periods=60)
    market = rng.normal(0.0, 0.01, size=60)
    frame = pd.DataFrame({
        "session_date": np.repeat(days, 30),
        "market_return_1d": np.repeat(market, 30),  # the same for every name on a session
        "reversal_1d": rng.normal(size=1_800),
    })
    ref = reference_distribution(frame, ["market_return_1d", "reversal_1d"], window_sessions=20)
    assert ref["market_return_1d"]["market_wide"] is True
    assert "market_wide" not in ref["reversal_1d"]
    crash = pd.DataFrame({"market_return_1d": np.repeat(rng.normal(-0.05, 0.01, 20), 30),
                          "reversal_1d": rng.normal(size=600) + 2.0})
    raw = feature_drift(ref, crash)
    assert raw["market_return_1d"] > 1.0 and raw["reversal_1d"] > 1.0
    drift = calibrated_drift(raw, ref)
    assert drift["market_return_1d"] == 0.0
    assert drift["reversal_1d"] > 0.25


def test_population_stability_index_when_feature_missing_then_infinite() -> None:
    reference = reference_distribution(pd.DataFrame({"x": np.arange(100.0)}), ["x"])
    assert feature_drift(reference, pd.DataFrame({"z": [1.0]}))["x"] == float("inf")
    assert population_stability_index([1.0], [0.5, 0.5], np.array([np.nan])) is None


def test_score_cross_section_when_name_missing_features_then_skipped_not_filled() -> None:
    import lightgbm as lgb

    rng = np.random.default_rng(2)
    x = rng.normal(size=(500, 2))
    booster = lgb.train(
        {"objective": "regression", "verbosity": -1, "num_threads": 1, "seed": 1},
        lgb.Dataset(x, label=x[:, 0], feature_name=["a", "b"]),
        num_boost_round=5,
    )
    frame = pd.DataFrame(
        {"symbol": ["AAA", "BBB", "CCC"], "a": [0.5, np.nan, -1.0], "b": [0.1, 0.2, np.nan]}
    )
    result = score_cross_section(
        booster.model_to_string(), ["a", "b"], frame, ["AAA", "BBB", "CCC", "DDD"]
    )
    assert list(result.scores["symbol"]) == ["AAA"]
    assert result.skipped == {
        "BBB": "missing_features",
        "CCC": "missing_features",
        "DDD": "no_feature_row",
    }
    assert result.scores["score"].iloc[0] == pytest.approx(
        booster.predict(np.array([[0.5, 0.1]]))[0]
    )


@pytest.mark.parametrize(
    ("session", "schedule", "expected"),
    [
        (date(2024, 6, 3), "weekly", True),  # Monday
        (date(2024, 6, 4), "weekly", False),  # Tuesday
        (date(2024, 9, 3), "weekly", True),  # Tuesday after Labor Day
        (date(2024, 7, 1), "monthly", True),
        (date(2024, 7, 2), "monthly", False),
        (date(2024, 7, 2), "daily", True),
        (date(2024, 6, 3), "never", False),
    ],
)
def test_schedule_due_when_session_then_first_session_of_period(
    session: date, schedule: str, expected: bool
) -> None:
    assert schedule_due(session, schedule) is expected


def test_retrain_due_when_conditions_then_first_reason_in_policy_order() -> None:
    base = {"force": False, "has_champion": True, "scheduled": False, "drift_threshold": 0.25}
    assert retrain_due(**base, drift_psi=0.1) is None
    assert retrain_due(**base, drift_psi=0.3) == "drift"
    assert retrain_due(**{**base, "scheduled": True}, drift_psi=0.3) == "scheduled"
    assert retrain_due(**{**base, "has_champion": False}, drift_psi=None) == "no_champion"
    assert retrain_due(**{**base, "force": True, "has_champion": False}, drift_psi=None) == "forced"


@settings(max_examples=30, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    shift=st.floats(-5, 5),
    scale=st.floats(0.1, 10),
)
def test_daily_metrics_when_scores_transformed_monotonically_then_rank_metrics_unchanged(
    seed: int, shift: float, scale: float
) -> None:
    panel = _panel(n_dates=5, n_names=25, seed=seed)
    scores = panel["noise"].to_numpy()
    base = daily_metrics(panel["d"], scores, panel["r"])
    moved = daily_metrics(panel["d"], np.exp(scores * scale) + shift, panel["r"])
    pd.testing.assert_series_equal(base["rank_ic"], moved["rank_ic"], atol=1e-9)
    pd.testing.assert_series_equal(base["hit_rate"], moved["hit_rate"])
    pd.testing.assert_series_equal(base["quintile_spread"], moved["quintile_spread"])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), bins=st.integers(2, 20), loc=st.floats(-3, 3))
def test_population_stability_index_when_any_sample_then_non_negative(
    seed: int, bins: int, loc: float
) -> None:
    rng = np.random.default_rng(seed)
    reference = reference_distribution(pd.DataFrame({"x": rng.normal(size=500)}), ["x"], bins)
    psi = population_stability_index(
        reference["x"]["edges"], reference["x"]["shares"], rng.normal(loc, 1.0, size=200)
    )
    assert psi is not None and psi >= 0.0
