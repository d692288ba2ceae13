"""The sections of a run's report, one function per section (see :mod:`quant.report._run_report`).

Each returns the section's HTML, saying there is nothing yet when its tables
are empty.
"""

from __future__ import annotations

import html
import json
from collections import defaultdict
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from quant.report._html import empty, fmt, kv_table, rows_table, section
from quant.report._plots import bar_figure, line_figure, two_panel_figure
from quant.report._run_data import RunData, as_utc_text, drawdown

__all__ = [
    "FAILED_STAGE",
    "data_quality_section",
    "equity_section",
    "is_dry_run",
    "model_section",
    "corporate_events_section",
    "orders_section",
    "stages_section",
    "summary_section",
    "turnover_section",
    "weights_section",
]

FAILED_STAGE = "run failed"
"""Key of the stage summary the DAG's failure callback passes (``reason``, ``failed or not run``)."""


def is_dry_run(data: RunData, stages: Mapping[str, Any], requested: bool = False) -> bool:
    """Whether the run was a dry run: as requested, per its execution record, or per a stage."""
    said = any(isinstance(s, Mapping) and s.get("dry_run") is True for s in stages.values())
    return requested or data.dry_run or said


def summary_section(
    data: RunData, stages: Mapping[str, Mapping[str, Any]], status: str, dry_run: bool
) -> tuple[str, list[str]]:
    """The summary section and the sentences of its banner."""
    lines: list[str] = []
    if dry_run:
        lines.append("Dry run: orders are generated and checked, none is sent to the broker.")
    failed = stages.get(FAILED_STAGE)
    errors: Mapping[str, Any] = {}
    if status != "success":
        what = ", ".join(failed.get("failed or not run") or []) if failed else ""
        reason = str(failed.get("reason")) if failed and failed.get("reason") else "a task failed"
        lines.append(f"Run {status}: {reason}." + (f" Failed or not run: {what}." if what else ""))
        errors = (failed or {}).get("errors") or {}
    by_status: dict[str, int] = defaultdict(int)
    for order in data.orders:
        by_status[order["status"]] += 1
    sent = data.sent_orders
    if sent == 0:
        why = []
        risk_check = data.execution["risk_check"] if data.execution else "sidecar"
        if data.trading_state == "HALTED" and risk_check == "sidecar":
            event = data.kill_events[0]
            why.append(
                f"the risk sidecar is HALTED ({event['reason_code']}: {event['reason']}, "
                f"since {as_utc_text(event['at'])})"
            )
        if dry_run:
            why.append("this is a dry run")
        if data.orders and by_status.get("rejected", 0) == len(data.orders):
            why.append("the pre-trade check rejected every order")
        if data.execution is None:
            why.append("this run generated no orders")
        elif not data.orders:
            why.append("the target weights needed no order")
        lines.append("No order submitted" + (": " + "; ".join(why) if why else "") + ".")
    else:
        lines.append(f"{sent} order(s) submitted to {data.execution['broker']} "
                     f"account {data.execution['account']}.")
    figures = {
        "status": status,
        "dry run": dry_run,
        "orders generated": len(data.orders),
        "orders submitted": sent,
        "orders rejected by the pre-trade check": by_status.get("rejected", 0),
        "trading state (sidecar, latest event)": data.trading_state or "no event recorded",
    }
    if data.execution is not None:
        figures |= {
            "broker / account": f"{data.execution['broker']} / {data.execution['account']}",
            "risk check": data.execution["risk_check"],
            "broker choice": data.execution["choice_reason"],
        }
    bad = status != "success" or (sent == 0 and data.trading_state == "HALTED")
    css = "bad" if bad else ("warn" if sent == 0 else "good")
    banner = "".join(f"<p>{html.escape(line)}</p>" for line in lines)
    body = f'<div class="banner {css}">{banner}</div>{kv_table(figures)}'
    if errors:
        body += "<h3>Errors of the failed tasks</h3>" + "".join(
            f"<details open><summary>{html.escape(str(task))}</summary>"
            f'<pre class="reasons">{html.escape(str(error))}</pre></details>'
            for task, error in errors.items()
        )
    return section("summary", "Summary", body), lines


def equity_section(data: RunData) -> str:
    if not data.equity:
        return section("equity", "Equity and drawdown",
                       empty("No account equity recorded yet (no orders generated up to this session)."))
    days = [d for d, _, _ in data.equity]
    values = [e for _, e, _ in data.equity]
    dd = drawdown(values)
    row = data.account or {}
    figures = {
        "account": f"{row.get('broker')} / {row.get('account')} ({data.account_source})",
        "sessions": len(values),
        "equity (USD)": values[-1],
        "cash (USD)": data.equity[-1][2],
        "return since first session": values[-1] / values[0] - 1.0 if values[0] else None,
        "max drawdown": min(dd),
    }
    fig = two_panel_figure(
        days, values, dd, top_label="equity (USD)", bottom_label="drawdown",
        caption="Account equity as each run saw it when generating orders, and its drawdown "
                "from the running peak.",
    )
    return section("equity", "Equity and drawdown", fig + kv_table(figures))


def weights_section(data: RunData) -> str:
    if not data.weights:
        return section("weights", "Current weights by sector",
                       empty("No target weights for this session."))
    by_sector: dict[str, list[tuple[str, float]]] = defaultdict(list)
    for symbol, sector, weight in data.weights:
        by_sector[sector].append((symbol, weight))
    rows = sorted(
        ((s, sum(w for _, w in names), sum(abs(w) for _, w in names), len(names),
          ", ".join(sym for sym, _ in names[:8]) + (" ..." if len(names) > 8 else ""))
         for s, names in by_sector.items()),
        key=lambda r: -r[2],
    )
    fig = bar_figure([r[0] for r in rows], [r[1] for r in rows], ylabel="net weight",
                     caption="Net target weight per sector, fractions of equity.")
    total = {"names": len(data.weights), "gross": sum(abs(w) for _, _, w in data.weights),
             "net": sum(w for _, _, w in data.weights)}
    table = rows_table(["sector", "net weight", "gross weight", "names", "largest names"], rows)
    return section("weights", "Current weights by sector", fig + kv_table(total) + table)


def turnover_section(data: RunData) -> str:
    if not data.diagnostics:
        return section("turnover", "Turnover", empty("No portfolio construction recorded yet."))
    days = [d["session_date"] for d in data.diagnostics]
    fig = line_figure(
        days,
        {"turnover": [d["turnover"] for d in data.diagnostics],
         "gross exposure": [d["gross_exposure"] for d in data.diagnostics]},
        ylabel="fraction of equity",
        caption="One-way turnover sum(|w - w_current|) of each rebalance, and the gross exposure.",
    )
    last = data.diagnostics[-1]
    figures = {
        "session": last["session_date"].isoformat(),
        "method (used)": f"{last['method']} ({last['method_used']}, {last['stage']})",
        "fallback used": last["fallback_used"],
        "turnover": last["turnover"],
        "mean turnover": sum(d["turnover"] for d in data.diagnostics) / len(data.diagnostics),
        "names": last["n_names"],
        "ex-ante volatility": last["ex_ante_vol"],
    }
    return section("turnover", "Turnover", fig + kv_table(figures))


def model_section(data: RunData) -> str:
    parts = []
    if data.models:
        days = [m["trained_through"] for m in data.models]
        parts.append(line_figure(
            days,
            {"validation rank IC": [m["validation_rank_ic"] for m in data.models],
             "validation hit rate - 0.5": [
                 None if m["hit_rate"] is None else m["hit_rate"] - 0.5 for m in data.models]},
            ylabel="metric",
            caption="Walk-forward validation of each model trained up to this session, by the "
                    "last session of its training data.",
        ))
        parts.append(rows_table(
            ["model", "trained through", "status", "validation rank IC", "ICIR",
             "ICIR, tradeable return", "hit rate", "training rows"],
            [(m["model_id"], m["trained_through"].isoformat(), m["status"],
              m["validation_rank_ic"], m["icir"], m.get("tradeable_icir"), m["hit_rate"],
              m["train_rows"])
             for m in data.models[-8:]],
        ))
    else:
        parts.append(empty("No model trained yet."))
    if data.decisions:
        parts.append("<h3>Retrain decisions</h3>" + rows_table(
            ["session", "action", "reason", "model", "champion", "champion changed",
             "promotion decision", "window rank IC: champion", "window rank IC: new model"],
            [(d["session_date"].isoformat(), d["action"], d["reason"], d["model_id"],
              d["champion_model_id"], d["champion_changed"], d.get("promotion_code"),
              d.get("champion_window_rank_ic"), d.get("challenger_window_rank_ic"))
             for d in data.decisions],
        ))
        parts.append('<p class="meta">A new model is compared with the champion on the same '
                     "recent sessions, out of sample, against the tradeable return (next "
                     "open to open); the validation rank IC above plays no part.</p>")
    return section("model", "Model metrics over time", "".join(parts))


def orders_section(data: RunData) -> str:
    if not data.orders:
        return section("orders", "Orders", empty("No orders for this run."))
    reasons: dict[str, int] = defaultdict(int)
    for order in data.orders:
        for code in order["reject_reasons"] or []:
            reasons[code] += 1
    counts: dict[str, int] = defaultdict(int)
    for order in data.orders:
        counts[order["status"]] += 1
    parts = [kv_table(dict(sorted(counts.items())))]
    if reasons:
        parts.append("<h3>Rejections by reason code</h3>" + rows_table(
            ["reason code", "orders"], sorted(reasons.items(), key=lambda kv: (-kv[1], kv[0]))))
    parts.append(rows_table(
        ["client order id", "symbol", "side", "qty (shares)", "ref price (USD)", "notional (USD)",
         "status", "reject reasons", "filled (shares)", "avg fill (USD)"],
        [(o["client_order_id"], o["symbol"], o["side"], o["qty_shares"], o["ref_price_usd"],
          o["notional_usd"], o["status"], " ".join(o["reject_reasons"] or []),
          o["filled_qty_shares"], o["avg_fill_price_usd"]) for o in data.orders],
        css="orders",
    ))
    return section("orders", "Orders", "".join(parts))


def corporate_events_section(data: RunData) -> str:
    """Splits, dividends and closings the account's positions met (``ops.corporate_events``)."""
    if not data.corporate_events:
        return section("corporate-events", "Corporate events",
                       empty("No split, dividend or closing of a held position."))
    return section("corporate-events", "Corporate events", rows_table(
        ["session", "symbol", "event", "ratio", "dividend (USD/share)", "price (USD)",
         "shares before", "shares after", "avg cost before (USD)", "avg cost after (USD)",
         "cash (USD)", "detail"],
        [(e["session_date"].isoformat(), e["symbol"], e["event_type"], e["split_ratio"],
          e["dividend_usd"], e["price_usd"], e["qty_before_shares"], e["qty_after_shares"],
          e["avg_price_before_usd"], e["avg_price_after_usd"], e["cash_usd"], e["detail"] or "")
         for e in data.corporate_events],
    ))


def data_quality_section(data: RunData, docs: Path) -> str:
    link = ('<p><a href="data_quality/index.html">Data Docs of this run</a> '
            '(Great Expectations validation results)</p>' if docs.exists()
            else empty("No Data Docs were written for this run."))
    if not data.dq:
        return section("data-quality", "Data quality",
                       empty("No data-quality checks recorded for this run.") + link)
    failed = [r for r in data.dq if not r["success"]]
    figures = {
        "checks": len(data.dq),
        "passed": len(data.dq) - len(failed),
        "failed (blocking)": sum(1 for r in failed if r["severity"] == "blocking"),
        "failed (warning)": sum(1 for r in failed if r["severity"] == "warning"),
    }
    parts = [kv_table(figures), link]
    if failed:
        parts.append("<h3>Failed checks</h3>" + rows_table(
            ["suite", "check", "severity", "observed", "offending rows (first 5)"],
            [(r["suite"], r["check_name"], r["severity"], _short(r["observed_value"]),
              _short((r["unexpected"] or [])[:5])) for r in failed],
        ))
    return section("data-quality", "Data quality", "".join(parts))


def _short(value: Any, limit: int = 200) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def stages_section(stages: Mapping[str, Mapping[str, Any]]) -> str:
    if not stages:
        return section("stages", "Stage summaries", empty("No stage returned a summary."))
    parts = []
    for name, figures in stages.items():
        body = kv_table(dict(figures)) if isinstance(figures, Mapping) else html.escape(fmt(figures))
        parts.append(f"<details><summary>{html.escape(name)}</summary>{body}</details>")
    return section("stages", "Stage summaries", "".join(parts))
