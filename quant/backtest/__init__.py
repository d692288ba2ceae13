"""Walk-forward research backtest on the production stage functions, and its tear sheet.

:func:`run_backtest` runs, session by session and without Airflow, the very
functions the ``daily_trading`` DAG calls (retrain, predict, optimise,
generate/check/submit orders, reconcile; fills by the built-in simulator on a
backfill account of its own), plus two baselines (equal weight over the
universe and the ``top_k`` method) through the same order and fill path.
:func:`write_tear_sheet` renders the figures and plots as one HTML page;
:meth:`BacktestResult.figures` gives the figures as JSON. The statistics
(:func:`probabilistic_sharpe_ratio`, :func:`deflated_sharpe_ratio`, ...) are
plain functions of a return series.
"""

from quant.backtest._book_stats import cost_breakdown, exposure, fill_slippage
from quant.backtest._costs import CostModel, TradeFill, accounting_costs, net_equity
from quant.backtest._engine import BACKTEST_DAG_ID, ProgressCallback, backtest_id, run_backtest
from quant.backtest._result import (
    MAIN,
    RETRAIN_COLUMNS,
    BacktestResult,
    StrategyResult,
    retrain_row,
    strategy_figures,
)
from quant.backtest._stats import (
    annualised_volatility,
    cagr,
    calmar_ratio,
    conditional_value_at_risk,
    deflated_sharpe_ratio,
    drawdown_periods,
    drawdown_series,
    expected_max_sharpe,
    hit_rate,
    information_coefficients,
    kurtosis,
    max_drawdown,
    monthly_returns,
    probabilistic_sharpe_ratio,
    psr_from_moments,
    rolling_sharpe,
    rolling_volatility,
    series_summary,
    sharpe_ratio,
    sharpe_ratio_std,
    skewness,
    sortino_ratio,
    value_at_risk,
)
from quant.backtest._tearsheet import render_tear_sheet, tear_sheet_path, write_tear_sheet

__all__ = [
    "BACKTEST_DAG_ID",
    "MAIN",
    "RETRAIN_COLUMNS",
    "BacktestResult",
    "CostModel",
    "ProgressCallback",
    "StrategyResult",
    "TradeFill",
    "accounting_costs",
    "annualised_volatility",
    "backtest_id",
    "cagr",
    "calmar_ratio",
    "conditional_value_at_risk",
    "cost_breakdown",
    "deflated_sharpe_ratio",
    "drawdown_periods",
    "drawdown_series",
    "expected_max_sharpe",
    "exposure",
    "fill_slippage",
    "hit_rate",
    "information_coefficients",
    "kurtosis",
    "max_drawdown",
    "monthly_returns",
    "net_equity",
    "probabilistic_sharpe_ratio",
    "psr_from_moments",
    "render_tear_sheet",
    "retrain_row",
    "rolling_sharpe",
    "rolling_volatility",
    "run_backtest",
    "series_summary",
    "sharpe_ratio",
    "sharpe_ratio_std",
    "skewness",
    "sortino_ratio",
    "strategy_figures",
    "tear_sheet_path",
    "value_at_risk",
    "write_tear_sheet",
]
