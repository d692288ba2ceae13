"""The HTML of the UI pages of the ``quant_risk`` plugin (the routes are in ``_web.py``).

Self-contained pages: inline style, no script, nothing loaded from another host.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any

from quant.report._data_docs import validations_banner

__all__ = ["data_quality_body", "no_report_body", "page", "risk_body"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1b1f24;max-width:1200px}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.4rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.4rem 0}th,td{padding:.2rem .7rem;border:1px solid #d0d7de;
text-align:left;font-variant-numeric:tabular-nums;vertical-align:top;overflow-wrap:break-word}
th{background:#f6f8fa}table.checks{table-layout:fixed;width:100%}
table.checks td{overflow-wrap:anywhere}table.checks th:nth-child(1){width:9%}
table.checks th:nth-child(2){width:11%}table.checks th:nth-child(3){width:22%}
table.checks th:nth-child(4){width:9%}table.checks th:nth-child(5){width:17%}
.state{font-size:1.2rem;font-weight:700;padding:.3rem .8rem;border-radius:.3rem;display:inline-block}
.ACTIVE{background:#dafbe1;color:#1a7f37}.REDUCING{background:#fff8c5;color:#9a6700}
.HALTED{background:#ffebe9;color:#cf222e}.UNREACHABLE{background:#eaeef2;color:#57606a}
form{display:inline-block;margin:.5rem 1rem .5rem 0;padding:.6rem;border:1px solid #d0d7de;border-radius:.3rem}
input,select,button{margin:.2rem}.msg{padding:.5rem;border-radius:.3rem;background:#ddf4ff}
.failed{color:#cf222e;font-weight:700}.passed{color:#1a7f37}.meta{color:#57606a;font-size:.9rem}
.warning{color:#9a6700;font-weight:700}code,pre{font-family:ui-monospace,monospace;font-size:.85rem}
"""


def page(title: str, body: str) -> str:
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}'
        f"</title><style>{_CSS}</style></head><body>{body}</body></html>"
    )


def _kv(rows: dict[str, Any]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table>{cells}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4f}" if abs(value) < 10 else f"{value:,.2f}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


def risk_body(
    state: dict[str, Any] | None, error: str | None, message: str | None, user: str
) -> str:
    parts = ["<h1>Risk</h1>", f'<p class="meta">signed in as {html.escape(user)}</p>']
    if message:
        parts.append(f'<p class="msg">{html.escape(message)}</p>')
    if state is None:
        parts.append('<p><span class="state UNREACHABLE">SIDECAR UNREACHABLE</span></p>')
        parts.append(
            f"<p>{html.escape(error or '')}</p><p>No order can be submitted while the sidecar "
            "is unreachable (fail closed). Start it with <code>quant sidecar</code>.</p>"
        )
    else:
        trading_state = str(state.get("trading_state", "?"))
        parts.append(
            f'<p><span class="state {html.escape(trading_state)}">{html.escape(trading_state)}</span>'
            f" since {html.escape(str(state.get('since', '')))}</p>"
        )
        if state.get("fail_closed_reason"):
            parts.append(f"<p>fail-closed: {html.escape(str(state['fail_closed_reason']))}</p>")
        book = dict(state.get("book") or {})
        summary = {
            k: book.get(k)
            for k in (
                "session", "equity_usd", "sod_equity_usd", "day_pnl_usd", "drawdown",
                "peak_equity_usd", "cash_usd", "gross_exposure_usd", "net_exposure_usd",
                "daily_loss_limit_usd", "orders_today",
            )
        }
        parts.append("<h2>Day P&amp;L and book</h2>" + _kv(summary))
        positions = book.get("positions") or {}
        marks = book.get("marks") or {}
        if positions:
            rows = "".join(
                f"<tr><td>{html.escape(s)}</td><td>{_fmt(q)}</td><td>{_fmt(marks.get(s))}</td></tr>"
                for s, q in sorted(positions.items())
            )
            parts.append(
                "<h2>Positions</h2><table><tr><th>symbol</th><th>shares</th><th>mark (USD)</th>"
                f"</tr>{rows}</table>"
            )
        parts.append("<h2>Limits</h2>" + _kv(dict(state.get("limits") or {})))
        events = state.get("recent_events") or []
        if events:
            head = "".join(f"<th>{html.escape(k)}</th>" for k in events[0])
            rows = "".join(
                "<tr>" + "".join(f"<td>{html.escape(_fmt(v))}</td>" for v in e.values()) + "</tr>"
                for e in events
            )
            parts.append(f"<h2>Recent kill-switch events</h2><table><tr>{head}</tr>{rows}</table>")
        else:
            parts.append("<h2>Recent kill-switch events</h2><p>none</p>")
    parts.append(
        """<h2>Controls</h2>
<p class="meta">Recorded with your user name. Needs the right to operate (Airflow role Op or Admin).</p>
<form method="post" action="risk/kill"><strong>Kill switch</strong><br>
<input name="reason" placeholder="reason" required maxlength="500">
<select name="mode"><option>halt</option><option>reduce</option><option>flatten</option></select><br>
<button type="submit">Trip</button></form>
<form method="post" action="risk/resume"><strong>Resume trading</strong><br>
<input name="reason" placeholder="reason" required maxlength="500"><br>
<button type="submit">Resume</button></form>"""
    )
    return "".join(parts)


def _dq_value(value: Any) -> str:
    if isinstance(value, dict) and set(value) <= {"value", "error"}:
        text = _fmt(value.get("value"))
        if value.get("error"):
            text += f" (error: {value['error']})"
        return text
    return _fmt(value)


def _short(text: str, limit: int = 400) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _offending(rows: list[Any], shown: int = 10) -> str:
    """Offending rows as ``SYMBOL (column=value, ...)``, the first ``shown`` of them."""
    parts = []
    for row in rows[:shown]:
        if isinstance(row, dict):
            rest = ", ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k != "symbol")
            parts.append(f"{row['symbol']} ({rest})" if "symbol" in row else rest)
        else:
            parts.append(_fmt(row))
    more = f" (+{len(rows) - shown} more)" if len(rows) > shown else ""
    return _short("; ".join(parts), 600) + more


def no_report_body(dag_id: str, run_id: str, state: str | None) -> str:
    """The page of a run without a report: why, from the run's state (None: unknown)."""
    what = f"run <code>{html.escape(run_id)}</code> of DAG <code>{html.escape(dag_id)}</code>"
    if state == "failed":
        why = ("The run failed. Its report is written by the DAG's failure callback (in the "
               "DAG processor, shortly after the run fails), which has not written it yet: "
               "open this tab again in a minute.")
    elif state in ("queued", "running", "up_for_retry", "restarting", "scheduled"):
        why = f"The run is {html.escape(state)}: its last task writes the report."
    elif state is None:
        why = "No report was recorded for it."
    else:
        why = f"The run is {html.escape(state)} and no report was recorded for it."
    return f"<h1>No run report yet</h1><p>No report for {what}.</p><p>{why}</p>"


def data_quality_body(
    dag_id: str,
    run_id: str,
    rows: list[dict[str, Any]],
    pages: Any,
    docs: Path,
    docs_url: str,
) -> str:
    """The data-quality page of a run: its checks (``ops.dq_results`` rows, failures
    first) and links to its Great Expectations Data Docs (folder ``docs``, served at
    ``docs_url``; ``pages`` as :func:`~quant.report._data_docs.validation_pages` lists them).
    """
    failed = [r for r in rows if not r["success"]]
    blocking = sum(1 for r in failed if r["severity"] == "blocking")
    head = (f"<h1>Data quality &mdash; {html.escape(dag_id)}</h1>"
            f'<p class="meta">run <code>{html.escape(run_id)}</code>'
            + (f" &middot; session {rows[0]['session_date'].isoformat()}" if rows else "")
            + "</p>")
    verdict = (f'<p class="failed">{len(failed)} of {len(rows)} check(s) failed '
               f"({blocking} blocking).</p>" if failed
               else f'<p class="passed">All {len(rows)} check(s) passed.</p>')
    table_rows = "".join(
        "<tr>"
        + ('<td class="failed">FAILED</td>' if not r["success"] else '<td class="passed">passed</td>')
        + f"<td>{html.escape(r['suite'])}</td><td><code>{html.escape(r['check_name'])}</code></td>"
        + (f'<td class="{"failed" if r["severity"] == "blocking" else "warning"}">'
           if not r["success"] else "<td>")
        + f"{html.escape(r['severity'])}</td>"
        + f"<td>{html.escape(_short(_dq_value(r['observed_value'])))}</td>"
        + f"<td>{html.escape(_offending(r['unexpected'] or []))}</td></tr>"
        for r in rows
    )
    table = (
        '<table class="checks"><thead><tr><th>result</th><th>suite</th><th>check</th>'
        "<th>severity</th><th>observed</th><th>offending rows</th></tr></thead>"
        f"<tbody>{table_rows}</tbody></table>" if rows
        else "<p>No check results recorded for this run (only its Data Docs).</p>"
    )
    failed_suites = {r["suite"] for r in failed}
    links = validations_banner(pages, failed_suites, docs_url)
    index = (f'<p><a href="{html.escape(docs_url)}index.html">Great Expectations Data Docs '
             "of this run</a> (expectation suites and validation results, served offline)</p>"
             if (docs / "index.html").is_file()
             else "<p>No Great Expectations Data Docs were written for this run.</p>")
    return (head + verdict + "<h2>Checks (failures first)</h2>" + table
            + "<h2>Great Expectations Data Docs</h2>" + index + links)
