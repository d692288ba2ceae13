"""The weekly performance report: the trailing sessions of the daily pipeline on one page.

Written by the ``weekly_performance`` DAG (scheduled on the daily DAG's assets)
to ``QUANT_HOME/reports/weekly_performance/<session>/index.html``. For each of
the trailing ``sessions`` sessions up to ``as_of``:

- returns: the account's (equity of the daily DAG's account from one session
  to the next, ``ops.execution_runs``) and the target portfolio's (the
  session's ``ops.target_weights`` times each name's next-session total
  return, ``marts.labels.forward_return_1d``, once known);
- turnover (``ops.portfolio_diagnostics``);
- hit rate of the predictions: share of names whose score and tradeable
  return (from the next session's open, where the orders fill, to the open
  after it: ``marts.labels.open_return_1d``) are on the same side of the
  session's median (:func:`quant.model.daily_metrics`), and the rank IC;
- orders and rejections, with rejections by reason code (``ops.orders``).
"""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from quant import ledger
from quant.config import Settings, get_settings
from quant.db import connect
from quant.report._html import empty, kv_table, page, rows_table, section
from quant.report._plots import bar_figure, line_figure

__all__ = ["PERFORMANCE_DAG_ID", "performance_report_path", "write_performance_report"]

PERFORMANCE_DAG_ID = "weekly_performance"
DAILY_DAG_ID = "daily_trading"
SENT = ("submitting", "submitted", "partially_filled", "filled", "cancelled", "broker_rejected")


def performance_report_path(as_of: date, settings: Settings | None = None) -> Path:
    """Where the performance report as of ``as_of`` is written."""
    settings = settings or get_settings()
    return settings.reports_dir / PERFORMANCE_DAG_ID / as_of.isoformat() / "index.html"


def _latest_session(cur: Any) -> date | None:
    cur.execute("select max(session_date) from ops.target_weights")
    return cur.fetchone()[0]


def _account_returns(conn: Any, window: list[date], before: date) -> tuple[str, dict[date, float]]:
    row = ledger.latest_execution(conn, DAILY_DAG_ID, window[-1])
    if row is None:
        return "", {}
    equity = {
        day: value
        for day, value, _ in ledger.account_equity(
            conn, row["broker"], row["account"], up_to=window[-1], since=before
        )
    }
    days = [before, *window]
    out = {
        day: equity[day] / equity[prev] - 1.0
        for prev, day in zip(days, days[1:], strict=False)
        if day in equity and prev in equity and equity[prev]
    }
    return f"{row['broker']} / {row['account']}", out


def _label_returns(
    cur: Any, settings: Settings, window: list[date], column: str
) -> dict[tuple[date, str], float]:
    """Each (session, name)'s ``column`` of the labels mart over ``window``; empty while the
    mart (or the column) is not built: ``forward_return_1d`` is close to close,
    ``open_return_1d`` from the next session's open to the open after it."""
    schema = settings.model.marts_schema
    cur.execute(
        "select 1 from information_schema.columns where table_schema = %s "
        "and table_name = 'labels' and column_name = %s",
        (schema, column),
    )
    if cur.fetchone() is None:
        return {}
    cur.execute(
        f"select session_date, symbol, {column} from {schema}.labels "  # noqa: S608 - names from settings and code
        f"where session_date = any(%s) and {column} is not null",
        (window,),
    )
    return {(d, s): float(r) for d, s, r in cur.fetchall()}


def _weights(cur: Any, window: list[date]) -> dict[date, dict[str, float]]:
    cur.execute(
        "select session_date, symbol, weight from ops.target_weights where session_date = any(%s)",
        (window,),
    )
    out: dict[date, dict[str, float]] = defaultdict(dict)
    for d, s, w in cur.fetchall():
        out[d][s] = float(w)
    return out


def _predictions(cur: Any, window: list[date]) -> list[tuple[date, str, float]]:
    cur.execute(
        "select session_date, symbol, score from ops.predictions where session_date = any(%s)",
        (window,),
    )
    return [(d, s, float(v)) for d, s, v in cur.fetchall()]


def _orders(conn: Any, window: list[date]) -> tuple[dict[date, dict[str, int]], dict[str, int]]:
    per_day: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    reasons: dict[str, int] = defaultdict(int)
    for day, status, codes in ledger.order_outcomes(conn, DAILY_DAG_ID, window):
        per_day[day]["orders"] += 1
        per_day[day]["submitted"] += status in SENT
        per_day[day]["rejected"] += status == "rejected"
        for code in codes or []:
            reasons[code] += 1
    return per_day, reasons


def _hit_rates(
    predictions: list[tuple[date, str, float]], realised: dict[tuple[date, str], float]
) -> dict[date, tuple[float | None, float | None, int]]:
    from quant.model import daily_metrics

    rows = [(d, s, v, realised[(d, s)]) for d, s, v in predictions if (d, s) in realised]
    if not rows:
        return {}
    metrics = daily_metrics([r[0] for r in rows], [r[2] for r in rows], [r[3] for r in rows])
    return {
        d: (_num(m["hit_rate"]), _num(m["rank_ic"]), int(m["n_names"]))
        for d, m in metrics.iterrows()
    }


def _num(value: Any) -> float | None:
    return None if value is None or value != value else float(value)  # NaN -> None


def write_performance_report(
    as_of: date | None = None, settings: Settings | None = None, *, sessions: int = 5
) -> Path:
    """Write the performance report of the ``sessions`` sessions up to ``as_of``; return its path.

    Parameters
    ----------
    as_of : date, optional
        Last session of the window; default the latest session with target weights
        (else the latest closed session).
    sessions : int
        Sessions in the window (5: a trading week).
    """
    from quant.calendar import get_calendar

    settings = settings or get_settings()
    cal = get_calendar(settings.exchange)
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            as_of = as_of or _latest_session(cur) or cal.latest_closed_session()
            window = [cal.shift(as_of, -k) for k in range(sessions - 1, -1, -1)]
            before = cal.shift(window[0], -1)
            account, account_returns = _account_returns(conn, window, before)
            realised = _label_returns(cur, settings, window, "forward_return_1d")
            weights = _weights(cur, window)
            hits = _hit_rates(_predictions(cur, window), _label_returns(cur, settings, window, "open_return_1d"))
            orders, reasons = _orders(conn, window)
            cur.execute(
                "select session_date, turnover from ops.portfolio_diagnostics "
                "where session_date = any(%s)",
                (window,),
            )
            turnover = {d: float(t) for d, t in cur.fetchall()}
    finally:
        conn.close()

    portfolio = {}
    for day in window:
        held = weights.get(day, {})
        known = [s for s, w in held.items() if w and (day, s) in realised]
        if known:
            portfolio[day] = sum(held[s] * realised[(day, s)] for s in known)
    rows = [
        (
            day.isoformat(),
            account_returns.get(day),
            portfolio.get(day),
            turnover.get(day),
            hits.get(day, (None, None, 0))[0],
            hits.get(day, (None, None, 0))[1],
            orders.get(day, {}).get("orders", 0),
            orders.get(day, {}).get("submitted", 0),
            orders.get(day, {}).get("rejected", 0),
        )
        for day in window
    ]
    totals = {
        "sessions": f"{window[0].isoformat()} to {window[-1].isoformat()}",
        "account": account or "no account traded yet",
        "account return": _compound(account_returns.values()),
        "target-portfolio return (realised so far)": _compound(portfolio.values()),
        "mean turnover": sum(turnover.values()) / len(turnover) if turnover else None,
        "mean hit rate": _mean([h[0] for h in hits.values()]),
        "orders": sum(o.get("orders", 0) for o in orders.values()),
        "submitted": sum(o.get("submitted", 0) for o in orders.values()),
        "rejected": sum(o.get("rejected", 0) for o in orders.values()),
    }
    sections = [section("summary", "Summary", kv_table(totals))]
    sections.append(section(
        "returns", "Returns",
        bar_figure([r[0] for r in rows], [r[2] or 0.0 for r in rows], ylabel="return",
                   caption="Target-portfolio return of each session: its weights times the "
                           "next session's total returns (0 where not known yet).")
        if portfolio else empty("No realised returns for this window yet."),
    ))
    sections.append(section(
        "turnover", "Turnover",
        line_figure(window, {"turnover": [turnover.get(d) for d in window]},
                    ylabel="fraction of equity", caption="One-way turnover of each rebalance.")
        if turnover else empty("No portfolio construction in this window."),
    ))
    sections.append(section(
        "hit-rate", "Hit rate of the predictions",
        bar_figure([d.isoformat() for d in sorted(hits)], [hits[d][0] or 0.0 for d in sorted(hits)],
                   ylabel="hit rate",
                   caption="Share of names whose score and tradeable return (next session's "
                           "open to the open after it) are on the same side of the session's "
                           "median (0.5 = no skill).")
        if hits else empty("No predictions with a realised return in this window yet."),
    ))
    reason_table = (rows_table(["reason code", "orders"],
                               sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0])))
                    if reasons else empty("No order was rejected in this window."))
    sections.append(section("orders", "Orders and rejections", reason_table))
    sections.append(section("sessions", "Per session", rows_table(
        ["session", "account return", "target-portfolio return", "turnover", "hit rate",
         "rank IC", "orders", "submitted", "rejected"], rows)))
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (f"<h1>Weekly performance &mdash; {sessions} sessions to {as_of.isoformat()}</h1>"
              f'<p class="meta">generated {html.escape(generated)}</p>')
    path = performance_report_path(as_of, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page(f"weekly performance {as_of.isoformat()}", header, sections))
    tmp.replace(path)
    return path


def _compound(values: Any) -> float | None:
    values = list(values)
    if not values:
        return None
    total = 1.0
    for v in values:
        total *= 1.0 + v
    return total - 1.0


def _mean(values: list[float | None]) -> float | None:
    known = [v for v in values if v is not None]
    return sum(known) / len(known) if known else None
