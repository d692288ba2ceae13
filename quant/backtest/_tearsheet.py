"""The tear sheet: one self-contained HTML page (inline SVG plots, no network asset).

Sections, as users know them from pyfolio and quantstats: the figures of the
strategy beside its baselines; equity curves; drawdowns with the worst five
tabulated; rolling Sharpe ratio and volatility; the monthly returns heat map;
the distribution of daily returns; gross and net exposure; the daily IC and
rank IC series with their 21-session means, the IC decay and model selection;
turnover; costs and slippage in dollars per book and cumulated over time;
corporate events. Plots (:mod:`quant.backtest._tearsheet_plots`) use
matplotlib's object API (no pyplot state); the new tables are in
:mod:`quant.backtest._tearsheet_tables`.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quant.backtest._result import MAIN
from quant.backtest._stats import drawdown_series, rolling_sharpe, rolling_volatility
from quant.backtest._tearsheet_plots import histogram, ic_plot, lines
from quant.backtest._tearsheet_tables import costs_table, drawdowns_table, fmt, monthly_heat_map

if TYPE_CHECKING:
    from quant.backtest._result import BacktestResult
    from quant.config import Settings

__all__ = ["ROLLING_SESSIONS", "render_tear_sheet", "tear_sheet_path", "write_tear_sheet"]

ROLLING_SESSIONS = 63
"""Window of the rolling Sharpe ratio and volatility (a quarter); 21 when the backtest has
fewer than twice as many returns."""
_ROWS = (
    ("cagr", "CAGR", "pct"),
    ("annualised_volatility", "Annualised volatility", "pct"),
    ("sharpe", "Sharpe (annualised)", "num"),
    ("sortino", "Sortino (annualised)", "num"),
    ("max_drawdown", "Maximum drawdown", "pct"),
    ("calmar", "Calmar", "num"),
    ("turnover", "Turnover (one-way, per year)", "num"),
    ("hit_rate", "Hit rate (up sessions)", "pct"),
    ("skew", "Skewness (daily)", "num"),
    ("kurtosis", "Kurtosis (daily, normal = 3)", "num"),
    ("var_95", "Value at risk 95 % (daily, historical)", "pct"),
    ("cvar_95", "Expected shortfall 95 % (daily)", "pct"),
    ("gross_exposure", "Gross exposure (mean)", "pct"),
    ("net_exposure", "Net exposure (mean)", "pct"),
    ("psr", "Probabilistic Sharpe ratio (SR* = 0)", "num"),
    ("dsr", "Deflated Sharpe ratio", "num"),
    ("total_return", "Total return", "pct"),
    ("final_equity_usd", "Final equity, USD", "usd"),
    ("commission_usd", "Simulator commission, USD", "usd"),
    ("accounting_costs_usd", "Commission bps + impact, USD", "usd"),
    ("slippage_usd", "Slippage vs auction price, USD", "usd"),
    ("shortfall_usd", "Shortfall vs decision price, USD", "usd"),
    ("orders", "Orders", "int"),
    ("fills", "Fills", "int"),
)
_CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#1f2328}
h1{font-size:22px}h2{font-size:17px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
table{border-collapse:collapse;font-size:13px}td,th{padding:4px 10px;border-bottom:1px solid #eaeef2}
th{text-align:left}td.n{text-align:right;font-variant-numeric:tabular-nums}
.meta{color:#57606a;font-size:12px}figure{margin:8px 0}
table.heat td{min-width:52px}
"""


def _figures_table(figures: Mapping[str, Mapping[str, Any]]) -> str:
    names = list(figures)
    head = "".join(f"<th>{html.escape(n)}</th>" for n in names)
    body = []
    for key, label, kind in _ROWS:
        cells = "".join(f'<td class="n">{fmt(figures[n].get(key), kind)}</td>' for n in names)
        body.append(f"<tr><th>{html.escape(label)}</th>{cells}</tr>")
    return f"<table><tr><th></th>{head}</tr>{''.join(body)}</table>"


def _ic_table(result: BacktestResult, figures: Mapping[str, Any]) -> str:
    rows = []
    for key in ("ic", "rank_ic"):
        s = figures[key]
        rows.append(
            f"<tr><th>{key}</th>"
            + "".join(f'<td class="n">{fmt(s.get(k), "num")}</td>'
                      for k in ("mean", "std", "t_stat", "positive_share"))
            + f'<td class="n">{s.get("n", 0)}</td></tr>'
        )
    head = "".join(f"<th>{h}</th>" for h in ("", "mean", "std", "t-stat", "share > 0", "sessions"))
    series = "".join(
        f"<tr><td>{r.session}</td><td class=\"n\">{fmt(r.ic, 'num')}</td>"
        f"<td class=\"n\">{fmt(r.rank_ic, 'num')}</td></tr>"
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
        + "".join(f'<td class="n">{fmt(d.get(k), "num")}</td>' for k in ("ic", "rank_ic", "icir"))
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


def _series(frame: Mapping[str, Any]) -> dict[str, tuple[list, list]]:
    """``{name: series}`` as the ``lines`` plot wants it: (sessions, values)."""
    return {n: (list(v.index), list(v)) for n, v in frame.items()}


def _rolling(result: BacktestResult) -> str:
    """Rolling Sharpe ratio and volatility of every book, or a note when too short."""
    n = len(result.strategy.returns)
    window = ROLLING_SESSIONS if n >= 2 * ROLLING_SESSIONS else 21
    if n < window:
        return f"<p>Fewer than {window} daily returns: no rolling figures.</p>"
    ppy = result.periods_per_year
    books = result.strategies.items()
    sharpe = _series({k: rolling_sharpe(s.returns, window, ppy) for k, s in books})
    vol = _series({k: rolling_volatility(s.returns, window, ppy) for k, s in books})
    return (
        lines(sharpe, "Sharpe", f"Sharpe ratio over the trailing {window} sessions, annualised "
              "(mean / standard deviation of daily returns x sqrt(periods per year)).", zero=True)
        + lines(vol, "annualised volatility", f"Standard deviation of the daily returns over "
                f"the trailing {window} sessions x sqrt(periods per year).")
    )


def _distribution(result: BacktestResult, figures: Mapping[str, Any]) -> str:
    """Histogram of the strategy's daily returns and its moments and tail figures."""
    facts = (f"skewness {fmt(figures['skew'], 'num')}, kurtosis {fmt(figures['kurtosis'], 'num')} "
             f"(normal: 0 and 3), value at risk 95 % {fmt(figures['var_95'], 'pct')}, "
             f"expected shortfall 95 % {fmt(figures['cvar_95'], 'pct')}")
    return histogram(result.strategy.returns, figures["var_95"],
                     f"Daily returns of the strategy after all costs: {facts}. VaR: the 5th "
                     "percentile of the daily returns; expected shortfall: their mean below it.")


def _exposure(result: BacktestResult) -> str:
    """Gross (solid) and net (dashed) exposure of every book per session."""
    held = {n: s.exposure for n, s in result.strategies.items()}
    gross = _series({n: e["gross"] for n, e in held.items()})
    net = _series({f"{n} net": e["net"] for n, e in held.items()})
    return lines(gross, "fraction of equity", "Gross exposure (solid: sum of |position value|) "
                 "and net exposure (dashed: sum of signed position values) over the simulated "
                 "account's equity, at each session's close.", zero=True, dashed=net)


def _costs(result: BacktestResult) -> str:
    """The cost model, the costs per book in dollars and their cumulative sum over time."""
    c = result.costs
    model = (
        f"<p>Simulator fills: auction price moved {c.slippage_bps:g} bps against the order, "
        f"commission {c.commission_per_share_usd:g} USD per share (in the simulated equity). "
        f"Accounting: {c.commission_bps:g} bps of notional"
        + (f", square-root impact with coefficient {c.impact_coefficient:g}"
           if c.impact_coefficient > 0 else ", no market impact")
        + " (charged on top of the simulated equity).</p>"
    )
    cumulative = {}
    for name, s in result.strategies.items():
        per = s.costs_by_session(c.slippage_bps)
        cumulative[name] = (per["commission_usd"] + per["accounting_usd"]
                            + per["slippage_usd"]).cumsum()
    return (
        model + costs_table(result)
        + '<p class="meta">Total: commission, accounting costs and slippage (the fill price '
        "against the auction price), all in the equity. Shortfall: the fill price against the "
        "decision price (the close the order was sized at): the slippage plus the move from "
        "that close to the auction; not a cost on top.</p>"
        + lines(_series(cumulative), "USD", "Cumulative trading costs (commission, accounting "
                "costs and slippage) per book.")
    )


def render_tear_sheet(result: BacktestResult) -> str:
    """The tear sheet of ``result`` as one HTML document."""
    figures = result.figures()
    per = {MAIN: {k: v for k, v in figures.items() if k != "baselines"}} | figures["baselines"]
    strategies = result.strategies
    equity = _series({n: s.equity / s.equity.iloc[0] for n, s in strategies.items()})
    drawdown = {
        n: (list(s.equity.index), list(drawdown_series(s.equity.to_numpy(dtype=float))))
        for n, s in strategies.items()
    }
    turnover = _series({n: s.daily_turnover.rolling(21, min_periods=1).mean()
                        for n, s in strategies.items()})
    title = (f"Backtest {figures['start']} .. {figures['end']}: {result.optimizer}, "
             f"{figures['sessions']} sessions")
    sections = [
        "<h2>Figures</h2>",
        f'<p class="meta">Deflated Sharpe ratio for {result.n_trials} configuration(s) tried. '
        "Sharpe and Sortino annualised from daily returns, no risk-free rate.</p>",
        _figures_table(per),
        "<h2>Equity</h2>",
        lines(equity, "growth of 1", "Equity after all costs, relative to the first session."),
        "<h2>Drawdown</h2>",
        lines(drawdown, "fraction", "Equity below its running high.", zero=True),
        "<h3>Worst drawdowns</h3>",
        drawdowns_table(figures["worst_drawdowns"]),
        '<p class="meta">The strategy\'s five deepest falls below a previous high: from the peak '
        "(the last close at the high) to the trough and back to the peak's equity.</p>",
        "<h2>Rolling Sharpe ratio and volatility</h2>",
        _rolling(result),
        "<h2>Monthly returns</h2>",
        monthly_heat_map(result.strategy.returns),
        '<p class="meta">The strategy\'s daily returns compounded per calendar month and year '
        "(a month or year covers the sessions of the backtest in it).</p>",
        "<h2>Return distribution</h2>",
        _distribution(result, figures),
        "<h2>Exposure</h2>",
        _exposure(result),
        "<h2>Information coefficient</h2>",
        _ic_table(result, figures),
        _decay_table(figures),
        ic_plot(result),
        _selection_table(figures),
        "<h2>Turnover</h2>",
        lines(turnover, "per session", "One-way turnover per session, 21-session mean."),
        "<h2>Costs and slippage</h2>",
        _costs(result),
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
