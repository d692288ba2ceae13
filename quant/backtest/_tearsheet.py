"""The tear sheet: one self-contained HTML page (inline SVG plots, no network asset).

Sections: the figures of the strategy beside its baselines, equity curves,
drawdowns, the daily IC and rank IC series with their 21-session means,
turnover, and the costs. Plots use matplotlib's object API (no pyplot state).
"""

from __future__ import annotations

import html
import io
import json
import re
from collections.abc import Mapping, Sequence
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quant.backtest._result import MAIN
from quant.backtest._stats import drawdown_series

if TYPE_CHECKING:
    from quant.backtest._result import BacktestResult
    from quant.config import Settings

__all__ = ["render_tear_sheet", "tear_sheet_path", "write_tear_sheet"]

_METADATA = re.compile(r"<metadata>.*?</metadata>\s*", re.S)
_COLOURS = {MAIN: "#0969da", "equal_weight": "#57606a", "top_k": "#bf8700"}
_ROWS = (
    ("cagr", "CAGR", "pct"),
    ("annualised_volatility", "Annualised volatility", "pct"),
    ("sharpe", "Sharpe (annualised)", "num"),
    ("sortino", "Sortino (annualised)", "num"),
    ("max_drawdown", "Maximum drawdown", "pct"),
    ("calmar", "Calmar", "num"),
    ("turnover", "Turnover (one-way, per year)", "num"),
    ("hit_rate", "Hit rate (up sessions)", "pct"),
    ("psr", "Probabilistic Sharpe ratio (SR* = 0)", "num"),
    ("dsr", "Deflated Sharpe ratio", "num"),
    ("total_return", "Total return", "pct"),
    ("final_equity_usd", "Final equity, USD", "usd"),
    ("commission_usd", "Simulator commission, USD", "usd"),
    ("accounting_costs_usd", "Commission bps + impact, USD", "usd"),
    ("orders", "Orders", "int"),
    ("fills", "Fills", "int"),
)
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1f2328}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px}td,th{padding:4px 10px;border-bottom:1px solid #eaeef2}
th{text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#57606a;font-size:12px}figure{margin:8px 0}
"""


def _fmt(value: Any, kind: str) -> str:
    if value is None:
        return "–"
    if kind == "pct":
        return f"{100 * value:.2f} %"
    if kind == "usd":
        return f"{value:,.0f}"
    if kind == "int":
        return f"{int(value):d}"
    return f"{value:.3f}"


def _svg(fig: Any, caption: str) -> str:
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "quant-backtest"
    matplotlib.rcParams["svg.fonttype"] = "none"
    buf = io.StringIO()
    fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None})
    svg = buf.getvalue()
    svg = _METADATA.sub("", svg[svg.index("<svg"):])
    return f'<figure>{svg}<figcaption class="meta">{html.escape(caption)}</figcaption></figure>'


def _axes(height: float = 2.8) -> tuple[Any, Any]:
    from matplotlib.dates import AutoDateLocator, DateFormatter
    from matplotlib.figure import Figure

    fig = Figure(figsize=(9.5, height), dpi=100)
    ax = fig.add_subplot()
    ax.xaxis.set_major_locator(AutoDateLocator(minticks=3, maxticks=8))
    ax.xaxis.set_major_formatter(DateFormatter("%Y-%m-%d"))
    ax.tick_params(labelsize=8)
    ax.grid(True, color="#d0d7de", linewidth=0.6)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    return fig, ax


def _lines(series: Mapping[str, tuple[Sequence[date], Sequence[float]]], ylabel: str,
           caption: str, *, zero: bool = False) -> str:
    fig, ax = _axes()
    for name, (x, y) in series.items():
        ax.plot(list(x), list(y), label=name, color=_COLOURS.get(name), linewidth=1.3)
    if zero:
        ax.axhline(0.0, color="#8c959f", linewidth=0.8)
    ax.set_ylabel(ylabel, fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    return _svg(fig, caption)


def _ic_plot(result: BacktestResult) -> str:
    ic = result.ic
    if ic.empty:
        return '<p class="meta">No IC: fewer than two sessions with scores and next-session returns.</p>'
    fig, ax = _axes(3.0)
    x = list(ic["session"])
    ax.bar(x, ic["rank_ic"], color="#8c959f", width=1.0, label="daily rank IC")
    ax.plot(x, ic["ic"].rolling(21, min_periods=1).mean(), color="#0969da", linewidth=1.4,
            label="IC, 21-session mean")
    ax.plot(x, ic["rank_ic"].rolling(21, min_periods=1).mean(), color="#cf222e", linewidth=1.4,
            label="rank IC, 21-session mean")
    ax.axhline(0.0, color="#57606a", linewidth=0.8)
    ax.set_ylabel("correlation", fontsize=9)
    ax.legend(fontsize=8, frameon=False)
    return _svg(fig, "Correlation of the model's scores at D with the return the book can earn on "
                     "them: from the next session's open, where the orders fill, to the open after "
                     "it (IC: Pearson, rank IC: Spearman).")


def _figures_table(figures: Mapping[str, Mapping[str, Any]]) -> str:
    names = list(figures)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = []
    for key, label, kind in _ROWS:
        cells = "".join(f'<td class="n">{_fmt(figures[n].get(key), kind)}</td>' for n in names)
        body.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def _ic_table(result: BacktestResult, figures: Mapping[str, Any]) -> str:
    rows = []
    for key in ("ic", "rank_ic"):
        s = figures[key]
        rows.append(
            f"<tr><th>{key}</th>"
            + "".join(f'<td class="n">{_fmt(s.get(k), "num")}</td>'
                      for k in ("mean", "std", "t_stat", "positive_share"))
            + f'<td class="n">{s.get("n", 0)}</td></tr>'
        )
    head = "".join(f"<th>{h}</th>" for h in ("", "mean", "std", "t-stat", "share > 0", "sessions"))
    series = "".join(
        f"<tr><td>{r.session}</td><td class=\"n\">{_fmt(r.ic, 'num')}</td>"
        f"<td class=\"n\">{_fmt(r.rank_ic, 'num')}</td></tr>"
        for r in result.ic.itertuples(index=False)
    )
    return (
        f"<table><tr>{head}</tr>{''.join(rows)}</table>"
        "<details><summary>Daily series</summary>"
        f"<table><tr><th>session</th><th>IC</th><th>rank IC</th></tr>{series}</table></details>"
    )


def _corporate_events_table(result: BacktestResult) -> str:
    """The splits, dividends and closings each strategy's positions met."""
    head = ("strategy", "session", "symbol", "event", "shares before", "shares after",
            "cash (USD)", "detail")
    rows = []
    for name, strategy in result.strategies.items():
        for e in strategy.corporate_events.itertuples(index=False):
            cells = (name, e.session_date, e.symbol, e.event_type, f"{e.qty_before_shares:g}",
                     f"{e.qty_after_shares:g}", f"{e.cash_usd:,.2f}", e.detail or "")
            rows.append("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in cells) + "</tr>")
    if not rows:
        return "<p>No split, dividend or closing of a held position in the range.</p>"
    header = "".join(f"<th>{h}</th>" for h in head)
    return (
        "<p>Applied by the simulator on their session and included in the equity "
        "(cash in lieu of fractional shares, dividends, closing proceeds).</p>"
        f"<table><tr>{header}</tr>{''.join(rows)}</table>"
    )


def _decay_table(figures: Mapping[str, Any]) -> str:
    decay = figures.get("ic_decay") or {}
    if not decay:
        return ""
    rows = "".join(
        f"<tr><td>{h}</td>"
        + "".join(f'<td class="n">{_fmt(d.get(k), "num")}</td>' for k in ("ic", "rank_ic", "icir"))
        + f'<td class="n">{d.get("sessions", 0)}</td></tr>'
        for h, d in decay.items()
    )
    return (
        "<h3>IC decay</h3>"
        '<p class="meta">Scores at D against the return from the next open to the open h '
        "sessions later. ICIR: mean over standard deviation of the daily rank IC (not "
        "annualised).</p>"
        "<table><tr><th>h (sessions)</th><th>IC</th><th>rank IC</th><th>ICIR</th>"
        f"<th>sessions</th></tr>{rows}</table>"
    )


def _selection_table(figures: Mapping[str, Any]) -> str:
    sel = figures.get("model_selection") or {}
    if not sel:
        return ""

    def listed(counts: Mapping[str, int]) -> str:
        return html.escape(", ".join(f"{n} {why}" for why, n in counts.items()) or "none")

    share = sel.get("drift_fired_share")
    rows = [
        ("Retrains, by reason", listed(sel.get("retrains_by_reason", {}))),
        ("Promotions, by retrain reason", listed(sel.get("promotions_by_reason", {}))),
        ("Not promoted, by decision", listed(sel.get("not_promoted_by_code", {}))),
        ("Seconds in retrains / in retrains not promoted",
         f"{sel.get('retrain_seconds', 0):.1f} / {sel.get('not_promoted_seconds', 0):.1f}"),
        ("Sessions the drift trigger fired",
         f"{sel.get('drift_fired_sessions', 0)}"
         + ("" if share is None else f" ({100 * share:.1f} %)")),
    ]
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{v}</td></tr>" for k, v in rows)
    return f"<h2>Model selection</h2><table>{body}</table>"


def render_tear_sheet(result: BacktestResult) -> str:
    """The tear sheet of ``result`` as one HTML document."""
    figures = result.figures()
    per = {MAIN: {k: v for k, v in figures.items() if k != "baselines"}} | figures["baselines"]
    strategies = result.strategies
    equity = {
        n: (list(s.equity.index), list(s.equity / s.equity.iloc[0])) for n, s in strategies.items()
    }
    drawdown = {
        n: (list(s.equity.index), list(drawdown_series(s.equity.to_numpy(dtype=float))))
        for n, s in strategies.items()
    }
    turnover = {
        n: (list(s.daily_turnover.index), list(s.daily_turnover.rolling(21, min_periods=1).mean()))
        for n, s in strategies.items()
    }
    c = result.costs
    costs = (
        f"<p>Simulator fills: auction price moved {c.slippage_bps:g} bps against the order, "
        f"commission {c.commission_per_share_usd:g} USD per share (in the simulated equity). "
        f"Accounting: {c.commission_bps:g} bps of notional"
        + (f", square-root impact with coefficient {c.impact_coefficient:g}"
           if c.impact_coefficient > 0 else ", no market impact")
        + " (charged on top of the simulated equity).</p>"
    )
    title = (f"Backtest {figures['start']} .. {figures['end']}: {result.optimizer}, "
             f"{figures['sessions']} sessions")
    sections = [
        "<h2>Figures</h2>",
        f'<p class="meta">Deflated Sharpe ratio for {result.n_trials} configuration(s) tried. '
        "Sharpe and Sortino annualised from daily returns, no risk-free rate.</p>",
        _figures_table(per),
        "<h2>Equity</h2>",
        _lines(equity, "growth of 1", "Equity after all costs, relative to the first session."),
        "<h2>Drawdown</h2>",
        _lines(drawdown, "fraction", "Equity below its running high.", zero=True),
        "<h2>Information coefficient</h2>",
        _ic_table(result, figures),
        _decay_table(figures),
        _ic_plot(result),
        _selection_table(figures),
        "<h2>Turnover</h2>",
        _lines(turnover, "per session", "One-way turnover per session, 21-session mean."),
        "<h2>Costs</h2>",
        costs,
        "<h2>Corporate events</h2>",
        _corporate_events_table(result),
        "<h2>Figures as JSON</h2>",
        f"<pre>{html.escape(json.dumps(figures, indent=2))}</pre>",
    ]
    retrains = ", ".join(f"{n} {why}" for why, n in figures["retrains"].items()) or "none"
    meta = (f'<p class="meta">backtest id {result.backtest_id}, provider {result.provider}, '
            f"wall time {result.seconds:.1f} s; models trained: {retrains}</p>")
    return (
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{_CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1>{meta}{''.join(sections)}</body></html>"
    )


def tear_sheet_path(result: BacktestResult, settings: Settings) -> Path:
    """Where the tear sheet of ``result`` goes: ``reports/backtest/<start>_<end>_<id>/index.html``."""
    folder = f"{result.sessions[0]}_{result.sessions[-1]}_{result.backtest_id}"
    return settings.reports_dir / "backtest" / folder / "index.html"


def write_tear_sheet(result: BacktestResult, settings: Settings, path: Path | None = None) -> Path:
    """Write the tear sheet (default :func:`tear_sheet_path`) and return its path."""
    path = path or tear_sheet_path(result, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_tear_sheet(result), encoding="utf-8")
    return path
