"""Pages the Airflow plugin ``quant_risk`` adds to the Airflow UI.

A FastAPI app (mounted by the plugin under ``/quant``) with:

- ``GET /quant/risk``: the sidecar's trading state, limits, book, day P&L and
  recent kill-switch events, with kill and resume forms (the sidecar's bearer
  token is required; it is forwarded, never stored or logged);
- ``GET /quant/runs/{dag_id}/{run_id}/report`` and ``.../data-quality``: the
  run report and the Data Docs of a DAG run (found from the run id);
- ``/quant/files/...``: the report folder itself.

It imports nothing from Airflow, so it is tested on its own.
"""

from __future__ import annotations

import html
import json
from datetime import date
from typing import Any

from quant.config import Settings, get_settings

__all__ = ["create_app"]

_CSS = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#1b1f24;max-width:1200px}
h1{font-size:1.3rem}h2{font-size:1.05rem;margin-top:1.4rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.4rem 0}th,td{padding:.2rem .7rem;border:1px solid #d0d7de;
text-align:left;font-variant-numeric:tabular-nums;vertical-align:top}th{background:#f6f8fa}
.state{font-size:1.2rem;font-weight:700;padding:.3rem .8rem;border-radius:.3rem;display:inline-block}
.ACTIVE{background:#dafbe1;color:#1a7f37}.REDUCING{background:#fff8c5;color:#9a6700}
.HALTED{background:#ffebe9;color:#cf222e}.UNREACHABLE{background:#eaeef2;color:#57606a}
form{display:inline-block;margin:.5rem 1rem .5rem 0;padding:.6rem;border:1px solid #d0d7de;border-radius:.3rem}
input,select,button{margin:.2rem}.msg{padding:.5rem;border-radius:.3rem;background:#ddf4ff}
"""


def _page(title: str, body: str) -> str:
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


def _risk_body(state: dict[str, Any] | None, error: str | None, message: str | None) -> str:
    parts = ["<h1>Risk</h1>"]
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
<form method="post" action="risk/kill"><strong>Kill switch</strong><br>
<input name="reason" placeholder="reason" required>
<select name="mode"><option>halt</option><option>reduce</option><option>flatten</option></select><br>
<input name="token" type="password" placeholder="sidecar token" required>
<button type="submit">Trip</button></form>
<form method="post" action="risk/resume"><strong>Resume trading</strong><br>
<input name="reason" placeholder="reason" required><br>
<input name="token" type="password" placeholder="sidecar token" required>
<button type="submit">Resume</button></form>"""
    )
    return "".join(parts)


def create_app(settings: Settings | None = None) -> Any:
    """The FastAPI app of the UI pages."""
    from fastapi import FastAPI, Form, HTTPException
    from fastapi.responses import HTMLResponse, RedirectResponse
    from fastapi.staticfiles import StaticFiles

    from quant.exceptions import QuantError
    from quant.sidecar import SidecarClient

    app = FastAPI(title="quant", docs_url=None, redoc_url=None, openapi_url=None)

    def _settings() -> Settings:
        return settings or get_settings()

    def _client(token: str | None = None) -> SidecarClient:
        s = _settings()
        return SidecarClient(s.sidecar_url, token=token, timeout_s=2.0)

    def _risk(message: str | None = None, status: int = 200) -> HTMLResponse:
        state: dict[str, Any] | None = None
        error = None
        try:
            with _client() as client:
                state = client.state()
        except QuantError as exc:
            error = str(exc)
        return HTMLResponse(_page("Risk", _risk_body(state, error, message)), status_code=status)

    @app.get("/risk", response_class=HTMLResponse)
    def risk_page() -> HTMLResponse:
        return _risk()

    @app.post("/risk/kill", response_class=HTMLResponse)
    def risk_kill(
        reason: str = Form(...), mode: str = Form("halt"), token: str = Form(...)
    ) -> HTMLResponse:
        if mode not in ("halt", "reduce", "flatten"):
            return _risk(f"unknown mode {mode!r}", status=400)
        try:
            with _client(token) as client:
                out = client.kill(reason, mode=mode)
        except QuantError as exc:
            return _risk(f"kill refused: {exc}", status=400)
        return _risk(f"kill switch tripped ({mode}): {out.get('trading_state', '')}")

    @app.post("/risk/resume", response_class=HTMLResponse)
    def risk_resume(reason: str = Form(...), token: str = Form(...)) -> HTMLResponse:
        try:
            with _client(token) as client:
                client.resume(reason)
        except QuantError as exc:
            return _risk(f"resume refused: {exc}", status=400)
        return _risk("trading resumed")

    def _session_of(dag_id: str, run_id: str) -> date:
        from quant.db import connect

        conn = connect(_settings())
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    """
                    select logical_date from ops.pipeline_runs where dag_id = %s and run_id = %s
                    union all
                    select session_date from ops.dq_results where run_id = %s
                    limit 1
                    """,
                    (dag_id, run_id, run_id),
                )
                row = cur.fetchone()
        finally:
            conn.close()
        if row is None:
            raise HTTPException(404, f"no report recorded for run {run_id!r} of {dag_id!r}")
        return row[0]

    @app.get("/runs/{dag_id}/{run_id}/report")
    def run_report(dag_id: str, run_id: str) -> RedirectResponse:
        session = _session_of(dag_id, run_id)
        return RedirectResponse(f"../../../files/{dag_id}/{session.isoformat()}/index.html")

    @app.get("/runs/{dag_id}/{run_id}/data-quality")
    def run_data_quality(dag_id: str, run_id: str) -> RedirectResponse:
        session = _session_of(dag_id, run_id)
        return RedirectResponse(
            f"../../../files/{dag_id}/{session.isoformat()}/data_quality/index.html"
        )

    reports = _settings().reports_dir
    reports.mkdir(parents=True, exist_ok=True)
    app.mount("/files", StaticFiles(directory=str(reports), html=True), name="files")
    return app
