"""What a backtest returns: per strategy, the equity, weights, orders and fills, and the figures."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from quant.backtest._book_stats import POSITION_COLUMNS, cost_breakdown, exposure, fill_slippage
from quant.backtest._costs import CostModel
from quant.backtest._stats import (
    annualised_volatility,
    cagr,
    calmar_ratio,
    conditional_value_at_risk,
    deflated_sharpe_ratio,
    drawdown_periods,
    hit_rate,
    kurtosis,
    max_drawdown,
    probabilistic_sharpe_ratio,
    series_summary,
    sharpe_ratio,
    skewness,
    sortino_ratio,
    value_at_risk,
)

__all__ = [
    "MAIN",
    "POSITION_COLUMNS",
    "RETRAIN_COLUMNS",
    "BacktestResult",
    "StrategyResult",
    "retrain_row",
    "strategy_figures",
]

MAIN = "strategy"
"""Name of the backtested configuration (the baselines are ``equal_weight`` and ``top_k``)."""


RETRAIN_COLUMNS: tuple[str, ...] = (
    "session",
    "action",
    "reason",
    "champion_model_id",
    "promoted",
    "promotion_code",
    "drift_fired",
    "seconds",
)
"""Columns of :attr:`BacktestResult.retrains`, one row per session."""

IC_DECAY_HORIZONS: tuple[int, ...] = (1, 5, 10, 20)
"""Horizons of the IC columns of :attr:`BacktestResult.ic` (``ic`` / ``rank_ic`` for 1)."""


def retrain_row(session: date, decision: dict[str, Any]) -> tuple:
    """A row of :attr:`BacktestResult.retrains` from ``retrain_model``'s summary of ``session``."""
    psi = decision.get("drift_psi")
    psi = math.inf if psi == "inf" else psi
    return (
        session,
        decision["action"],
        decision["reason"],
        decision.get("champion_model_id"),
        decision.get("promoted"),
        decision.get("promotion_code"),
        psi is not None and psi > decision.get("drift_threshold", math.inf),
        float(decision.get("seconds", 0.0)),
    )


def _num(value: float | None) -> float | None:
    """A JSON-safe float: None for NaN or infinity."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


CORPORATE_EVENT_COLUMNS = (
    "session_date", "symbol", "event_type", "split_ratio", "dividend_usd", "price_usd",
    "qty_before_shares", "qty_after_shares", "avg_price_before_usd", "avg_price_after_usd",
    "cash_usd", "detail",
)
"""Columns of :attr:`StrategyResult.corporate_events` (as :func:`quant.ledger.corporate_events`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StrategyResult:
    """One strategy run through the simulator.

    Attributes
    ----------
    name : str
        ``strategy``, ``equal_weight`` or ``top_k``.
    account : str
        The simulator account its orders filled in.
    gross_equity : Series indexed by session
        The simulated account's equity at each close (simulator costs
        included), USD.
    equity : Series indexed by session
        ``gross_equity`` minus the accounting costs paid so far, USD.
    costs_usd : Series indexed by session
        Accounting costs charged at each session (0 where none), USD.
    weights : DataFrame
        Columns ``session``, ``symbol``, ``weight`` (fractions of equity): the
        target weights of each session.
    orders : DataFrame
        Columns ``session``, ``symbol``, ``side``, ``qty_shares``, ``status`` and
        ``ref_price_usd`` (the price the order was sized at: the session's close).
    fills : DataFrame
        Columns ``session``, ``symbol``, ``side``, ``qty_shares``,
        ``price_usd``, ``commission_usd``.
    corporate_events : DataFrame
        The splits, dividends and closings (delisted or dead symbols) the account's
        positions met: columns of ``ops.corporate_events`` (``session_date``,
        ``symbol``, ``event_type``, ..., ``cash_usd``), :data:`CORPORATE_EVENT_COLUMNS`.
    positions : DataFrame
        Columns :data:`POSITION_COLUMNS` (``session``, ``symbol``, ``qty_shares``,
        ``price_usd``): the account's holdings after each session's auction, marked
        at its close (a session without rows held nothing).
    """

    name: str
    account: str
    gross_equity: pd.Series
    equity: pd.Series
    costs_usd: pd.Series
    weights: pd.DataFrame
    orders: pd.DataFrame
    fills: pd.DataFrame
    corporate_events: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(CORPORATE_EVENT_COLUMNS))
    )
    positions: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=list(POSITION_COLUMNS))
    )

    @property
    def returns(self) -> pd.Series:
        """Daily returns of ``equity`` (fractions), from the second session on."""
        return self.equity.pct_change().iloc[1:]

    @property
    def traded_usd(self) -> pd.Series:
        """Traded notional (buys plus sells) per session, USD, 0 where nothing filled."""
        if self.fills.empty:
            return pd.Series(0.0, index=self.equity.index)
        notional = (self.fills["qty_shares"].abs() * self.fills["price_usd"]).groupby(
            self.fills["session"]
        ).sum()
        return notional.reindex(self.equity.index, fill_value=0.0)

    @property
    def daily_turnover(self) -> pd.Series:
        """One-way turnover per session: traded notional / 2 / the previous close's equity."""
        previous = self.equity.shift(1)
        return (self.traded_usd / 2.0 / previous).iloc[1:]

    @property
    def exposure(self) -> pd.DataFrame:
        """Columns ``gross`` and ``net`` per session: the positions' absolute and signed
        value over the simulated account's equity (``gross_equity``, which holds them)."""
        return exposure(self.positions, self.gross_equity)

    def slippage(self, slippage_bps: float) -> pd.DataFrame:
        """The fills with their slippage and shortfall, USD (:func:`fill_slippage`)."""
        orders = self.orders
        if "ref_price_usd" not in orders.columns:
            orders = orders.assign(ref_price_usd=np.nan)
        return fill_slippage(self.fills, orders, list(self.equity.index), slippage_bps)

    def costs_by_session(self, slippage_bps: float) -> pd.DataFrame:
        """Commission, accounting costs, slippage and shortfall per session, USD
        (:func:`cost_breakdown`)."""
        return cost_breakdown(self.slippage(slippage_bps), self.costs_usd, self.equity.index)


def _iso(day: Any) -> str | None:
    return None if day is None or pd.isna(day) else pd.Timestamp(day).date().isoformat()


def worst_drawdowns(equity: pd.Series, top: int = 5) -> list[dict[str, Any]]:
    """:func:`drawdown_periods` as JSON-safe rows (ISO dates, ``recovery`` None if not)."""
    return [
        {"peak": _iso(r.peak), "trough": _iso(r.trough), "recovery": _iso(r.recovery),
         "depth": _num(r.depth), "sessions": int(r.sessions),
         "sessions_to_trough": int(r.sessions_to_trough)}
        for r in drawdown_periods(equity, top).itertuples(index=False)
    ]


def strategy_figures(
    result: StrategyResult, *, n_trials: int, periods_per_year: int, slippage_bps: float = 0.0
) -> dict[str, Any]:
    """The tear sheet's figures of one strategy (JSON-safe; None where undefined).

    ``turnover`` is the mean one-way daily turnover times ``periods_per_year``
    (1.0 = the book traded once over a year); ``max_drawdown`` a positive
    fraction; ``sharpe`` and ``sortino`` annualised; ``psr`` the probability the
    true Sharpe ratio is above 0; ``dsr`` above the best of ``n_trials`` by luck;
    ``skew`` and ``kurtosis`` the population moments of the daily returns (3 for a
    normal); ``var_95`` and ``cvar_95`` the historical one-session value at risk and
    expected shortfall (returns, negative for a loss); ``worst_drawdowns`` the five
    deepest (:func:`drawdown_periods`); ``gross_exposure`` and ``net_exposure`` the
    mean over sessions; ``slippage_usd`` and ``shortfall_usd`` the fills' against
    the auction and the decision price (``slippage_bps`` is the simulator's).
    """
    equity = result.equity.to_numpy(dtype=float)
    returns = result.returns.to_numpy(dtype=float)
    turnover = result.daily_turnover.to_numpy(dtype=float)
    turnover = turnover[np.isfinite(turnover)]
    held = result.exposure
    slipped = result.slippage(slippage_bps)
    return {
        "cagr": _num(cagr(equity, periods_per_year)),
        "annualised_volatility": _num(annualised_volatility(returns, periods_per_year)),
        "sharpe": _num(sharpe_ratio(returns, periods_per_year)),
        "sortino": _num(sortino_ratio(returns, periods_per_year)),
        "max_drawdown": _num(max_drawdown(equity)),
        "calmar": _num(calmar_ratio(equity, periods_per_year)),
        "turnover": _num(float(turnover.mean()) * periods_per_year if turnover.size else None),
        "hit_rate": _num(hit_rate(returns)),
        "psr": _num(probabilistic_sharpe_ratio(returns)),
        "dsr": _num(deflated_sharpe_ratio(returns, n_trials)),
        "total_return": _num(equity[-1] / equity[0] - 1.0 if equity.size else None),
        "final_equity_usd": _num(equity[-1] if equity.size else None),
        "accounting_costs_usd": _num(float(result.costs_usd.sum())),
        "commission_usd": _num(
            float(result.fills["commission_usd"].sum()) if not result.fills.empty else 0.0
        ),
        "slippage_usd": _num(float(slipped["slippage_usd"].sum())),
        "shortfall_usd": _num(float(slipped["shortfall_usd"].sum(min_count=1))),
        "orders": int(len(result.orders)),
        "fills": int(len(result.fills)),
        "skew": _num(skewness(returns)),
        "kurtosis": _num(kurtosis(returns)),
        "var_95": _num(value_at_risk(returns, 0.95)),
        "cvar_95": _num(conditional_value_at_risk(returns, 0.95)),
        "gross_exposure": _num(float(held["gross"].mean()) if len(held) else None),
        "net_exposure": _num(float(held["net"].mean()) if len(held) else None),
        "worst_drawdowns": worst_drawdowns(result.equity),
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class BacktestResult:
    """A walk-forward backtest over ``sessions``.

    Attributes
    ----------
    backtest_id : str
        Stable id of the configuration (names the simulator accounts).
    sessions : list of date
    optimizer : str
        The portfolio method of the backtested strategy.
    provider : str
    n_trials : int
        Configurations tried (the deflated Sharpe ratio's N).
    costs : CostModel
    periods_per_year : int
    strategies : dict of str to StrategyResult
        ``strategy`` and, when run, ``equal_weight`` and ``top_k``.
    ic : DataFrame
        Columns ``session``, ``ic``, ``rank_ic``: correlation of the model's
        scores at D with the return the book can earn on them, from the next
        session's open (where the orders fill) to the open after it; and
        ``ic_{h}d``, ``rank_ic_{h}d`` to the open ``h`` sessions after the
        fill, for h = 5, 10, 20 (the IC decay).
    warnings : dict of str to list of str
        Per strategy, the portfolio stage's warnings over the sessions (e.g. the
        ``top_k`` baseline holding every name of the universe).
    quality_failures : DataFrame
        Columns ``session``, ``check``, ``detail``: the blocking data-quality
        checks that failed, one row each; empty unless the backtest ran with
        ``continue_on_quality_failure`` (otherwise the first failure stops it).
    quality_warnings : dict of str to int
        Per data-quality warning, the number of sessions on which it failed.
    gated_sessions : int
        The sessions that ran the full data-quality gate (the ones the range's
        screen flagged; the others passed every blocking check on the screen).
    retrains : DataFrame
        Columns of :data:`RETRAIN_COLUMNS`: ``session``, ``action``
        (``retrained`` / ``skipped``), ``reason`` (``no_champion``,
        ``scheduled``, ``drift``, ``not_due``, ...), ``champion_model_id``,
        ``promoted`` and ``promotion_code`` (after a retrain), ``drift_fired``
        (the drift statistic was above its threshold) and ``seconds`` (the
        retrain stage's wall time): the retrain stage's decision per session.
    stage_seconds : dict of str to float
        Wall time per stage, summed over sessions.
    seconds : float
        Wall time of the whole backtest.
    tear_sheet : Path, optional
        The HTML tear sheet, once written.
    """

    backtest_id: str
    sessions: list[date]
    optimizer: str
    provider: str
    n_trials: int
    costs: CostModel
    periods_per_year: int
    strategies: dict[str, StrategyResult]
    ic: pd.DataFrame
    warnings: dict[str, list[str]] = field(default_factory=dict)
    retrains: pd.DataFrame = field(default_factory=pd.DataFrame)
    quality_failures: pd.DataFrame = field(
        default_factory=lambda: pd.DataFrame(columns=["session", "check", "detail"])
    )
    quality_warnings: dict[str, int] = field(default_factory=dict)
    gated_sessions: int = 0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    tear_sheet: Path | None = None

    @property
    def strategy(self) -> StrategyResult:
        """The backtested configuration."""
        return self.strategies[MAIN]

    def _retrain_counts(self) -> dict[str, int]:
        """Sessions whose retrain stage trained a model, by reason."""
        if self.retrains.empty:
            return {}
        done = self.retrains[self.retrains["action"] == "retrained"]
        return {str(k): int(v) for k, v in done["reason"].value_counts().sort_index().items()}

    def _model_selection(self) -> dict[str, Any]:
        """Retrains, promotions and the time spent on retrains that were thrown away."""
        frame = self.retrains
        empty = {
            "retrains_by_reason": {},
            "promotions_by_reason": {},
            "not_promoted_by_code": {},
            "not_promoted": 0,
            "retrain_seconds": 0.0,
            "not_promoted_seconds": 0.0,
            "drift_fired_sessions": 0,
            "drift_fired_share": None,
        }
        if frame.empty or "promoted" not in frame.columns:
            return empty
        done = frame[frame["action"] == "retrained"]
        promoted = done[done["promoted"].fillna(False).astype(bool)]
        lost = done[~done["promoted"].fillna(False).astype(bool)]

        def counts(column: pd.Series) -> dict[str, int]:
            return {str(k): int(v) for k, v in column.value_counts().sort_index().items()}

        fired = int(frame["drift_fired"].fillna(False).astype(bool).sum())
        return {
            "retrains_by_reason": counts(done["reason"]),
            "promotions_by_reason": counts(promoted["reason"]),
            "not_promoted_by_code": counts(lost["promotion_code"].fillna("none")),
            "not_promoted": int(len(lost)),
            "retrain_seconds": round(float(done["seconds"].sum()), 3),
            "not_promoted_seconds": round(float(lost["seconds"].sum()), 3),
            "drift_fired_sessions": fired,
            "drift_fired_share": _num(fired / len(frame)),
        }

    def _ic_decay(self) -> dict[str, dict[str, float | int | None]]:
        """Per horizon: mean IC and rank IC, and the ICIR (mean / sd of the daily rank IC)."""
        out: dict[str, dict[str, float | int | None]] = {}
        for h in IC_DECAY_HORIZONS:
            suffix = "" if h == 1 else f"_{h}d"
            if f"rank_ic{suffix}" not in self.ic.columns:
                continue
            ic = series_summary(self.ic[f"ic{suffix}"].to_list())
            rank = series_summary(self.ic[f"rank_ic{suffix}"].to_list())
            icir = None
            if rank["mean"] is not None and rank["std"]:
                icir = _num(rank["mean"] / rank["std"])
            out[str(h)] = {
                "ic": ic["mean"],
                "rank_ic": rank["mean"],
                "icir": icir,
                "sessions": rank["n"],
            }
        return out

    def _quality_failures(self) -> list[dict[str, Any]]:
        """Per session whose gate failed (in order): the session and its failed checks."""
        out: list[dict[str, Any]] = []
        for day, rows in self.quality_failures.groupby("session", sort=True):
            out.append({"session": pd.Timestamp(day).date().isoformat(),
                        "checks": rows["check"].tolist(), "details": rows["detail"].tolist()})
        return out

    def figures(self) -> dict[str, Any]:
        """Every figure of the tear sheet as one JSON-safe dict (IC series as summaries)."""
        per = {
            name: strategy_figures(s, n_trials=self.n_trials, periods_per_year=self.periods_per_year,
                                   slippage_bps=self.costs.slippage_bps)
            for name, s in self.strategies.items()
        }
        ic_stats = {
            col: series_summary(self.ic[col].to_list()) if not self.ic.empty else series_summary([])
            for col in ("ic", "rank_ic")
        }
        return {
            "backtest_id": self.backtest_id,
            "start": self.sessions[0].isoformat(),
            "end": self.sessions[-1].isoformat(),
            "sessions": len(self.sessions),
            "optimizer": self.optimizer,
            "provider": self.provider,
            "n_trials": self.n_trials,
            "costs": {
                "slippage_bps": self.costs.slippage_bps,
                "commission_per_share_usd": self.costs.commission_per_share_usd,
                "commission_bps": self.costs.commission_bps,
                "impact_coefficient": self.costs.impact_coefficient,
            },
            **per[MAIN],
            "ic_return": "next session's open to the open h sessions later (h = 1 unless named)",
            "ic": ic_stats["ic"],
            "rank_ic": ic_stats["rank_ic"],
            "icir": self._ic_decay().get("1", {}).get("icir"),
            "ic_decay": self._ic_decay(),
            "retrains": self._retrain_counts(),
            "model_selection": self._model_selection(),
            "data_quality_failures": self._quality_failures(),
            "data_quality_warnings": dict(self.quality_warnings),
            "data_quality_gated_sessions": self.gated_sessions,
            "baselines": {name: figs for name, figs in per.items() if name != MAIN},
            "warnings": {name: list(found) for name, found in self.warnings.items()},
            "seconds": round(self.seconds, 3),
            "stage_seconds": {k: round(v, 3) for k, v in self.stage_seconds.items()},
            "tear_sheet": None if self.tear_sheet is None else str(self.tear_sheet),
        }
