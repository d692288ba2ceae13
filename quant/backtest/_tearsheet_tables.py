"""The tear sheet's tables: monthly returns heat map, worst drawdowns, costs in dollars.

Each function returns an HTML fragment; :mod:`quant.backtest._tearsheet` puts
them on the page. Numbers come from :mod:`quant.backtest._stats` and
:mod:`quant.backtest._book_stats` (through :class:`~quant.backtest.StrategyResult`).
"""

from __future__ import annotations

import calendar
import html
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from quant.backtest._stats import monthly_returns

if TYPE_CHECKING:
    import pandas as pd

    from quant.backtest._result import BacktestResult

__all__ = ["costs_table", "drawdowns_table", "fmt", "monthly_heat_map"]


def fmt(value: Any, kind: str) -> str:
    """``value`` as text: ``pct`` (fraction as percent), ``usd``, ``cents``, ``int`` or a number;
    an en dash for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if kind == "pct":
        return f"{100 * value:.2f} %"
    if kind == "usd":
        return f"{value:,.0f}"
    if kind == "cents":
        return f"{value:,.2f}"
    if kind == "int":
        return f"{int(value):d}"
    return f"{value:.3f}"


def _cell_colour(value: float, scale: float) -> str:
    """Green for a gain, red for a loss, the stronger the larger against ``scale``."""
    if not math.isfinite(value) or scale <= 0:
        return ""
    alpha = 0.12 + 0.6 * min(1.0, abs(value) / scale)
    rgb = "26,127,55" if value >= 0 else "207,34,46"
    return f' style="background:rgba({rgb},{alpha:.2f})"'


def monthly_heat_map(returns: pd.Series) -> str:
    """Year x month table of compounded monthly returns, coloured, with the year's return."""
    table = monthly_returns(returns)
    if table.empty:
        return "<p>No daily return: no monthly table.</p>"
    months = [c for c in table.columns if c != "year"]
    values = table[months].to_numpy(dtype=float)
    finite = values[np.isfinite(values)]
    scale = float(np.abs(finite).max()) if finite.size else 0.0
    head = "".join(f"<th>{calendar.month_abbr[m]}</th>" for m in months)
    rows = []
    for year, row in table.iterrows():
        cells = "".join(
            f'<td class="n"{_cell_colour(float(row[m]), scale)}>{fmt(row[m], "pct")}</td>'
            for m in months
        )
        yearly = float(row["year"])
        cells += f'<td class="n"{_cell_colour(yearly, abs(yearly))}><b>{fmt(yearly, "pct")}</b></td>'
        rows.append(f"<tr><th>{year}</th>{cells}</tr>")
    return f'<table class="heat"><tr><th></th>{head}<th>year</th></tr>{"".join(rows)}</table>'


def drawdowns_table(worst: Sequence[Mapping[str, Any]]) -> str:
    """The worst drawdowns (``strategy_figures``' ``worst_drawdowns``), deepest first."""
    if not worst:
        return "<p>No drawdown: the equity never closed below a previous high.</p>"
    head = "".join(f"<th>{h}</th>" for h in (
        "#", "peak", "trough", "recovery", "depth", "sessions (peak to recovery)",
        "sessions to trough"))
    rows = "".join(
        f"<tr><td>{i}</td><td>{d['peak']}</td><td>{d['trough']}</td>"
        f"<td>{d['recovery'] or 'not recovered'}</td>"
        f'<td class="n">{fmt(d["depth"], "pct")}</td><td class="n">{d["sessions"]}</td>'
        f'<td class="n">{d["sessions_to_trough"]}</td></tr>'
        for i, d in enumerate(worst, start=1)
    )
    return f'<table class="drawdowns"><tr>{head}</tr>{rows}</table>'


def costs_table(result: BacktestResult) -> str:
    """Per book: traded notional and what trading cost, USD and bps of the notional."""
    bps = result.costs.slippage_bps
    head = "".join(f"<th>{h}</th>" for h in (
        "book", "traded, USD", "commission (simulator)", "commission bps + impact",
        "slippage vs auction", "total", "total, bps of traded", "shortfall vs decision price"))
    rows = []
    for name, strategy in result.strategies.items():
        per = strategy.costs_by_session(bps)
        traded = float(strategy.traded_usd.sum())
        paid = {c: float(per[c].sum()) for c in per.columns}
        total = paid["commission_usd"] + paid["accounting_usd"] + paid["slippage_usd"]
        in_bps = total / traded * 1e4 if traded > 0 else None
        cells = [fmt(traded, "usd"), fmt(paid["commission_usd"], "cents"),
                 fmt(paid["accounting_usd"], "cents"), fmt(paid["slippage_usd"], "cents"),
                 fmt(total, "cents"), "–" if in_bps is None else f"{in_bps:.1f}",
                 fmt(paid["shortfall_usd"], "cents")]
        rows.append(f"<tr><th>{html.escape(name)}</th>"
                    + "".join(f'<td class="n">{c}</td>' for c in cells) + "</tr>")
    return f'<table class="costs"><tr>{head}</tr>{"".join(rows)}</table>'
