"""The HTML report of one daily run.

One self-contained page per DAG run under
``QUANT_HOME/reports/<dag_id>/runs/<run_key>/index.html`` (figures are inline
SVG, no network asset; :func:`quant.report.report_path`); another run of the
same session gets its own page, and the session's page
``reports/<dag_id>/<session>/index.html`` lists them all. A dry run says so in
its header and banner. Sections, each with a stable ``id``, each rendered
(saying there is nothing yet) when its tables are empty, as on a first run or a
run that failed early:

``summary``
    status, what failed (tasks and their errors), orders sent, and why none was
    sent (sidecar HALTED, dry run, every order rejected, no orders);
``equity``
    equity curve and drawdown of the run's account (``ops.execution_runs``);
``weights``
    the session's target weights by sector (``ops.target_weights`` with
    ``raw.symbols``);
``turnover``
    turnover and gross exposure over time (``ops.portfolio_diagnostics``);
``model``
    validation metrics of each trained model over time (``ops.models``) and the
    latest retrain decisions (``ops.retrain_decisions``);
``orders``
    the run's own orders with the reason codes of rejections (``ops.orders``);
``data-quality``
    the run's checks (``ops.dq_results``) and a link to its Data Docs;
``timings``
    the run's wall time (first task start to last task end), each stage's wall
    time (the ``dbt.*`` tasks are one stage; tasks that ran in parallel are not
    added up), and each task's state, seconds, start and end;
``market`` and ``stages``
    the market data of the session and each stage's summary as returned.

The run is recorded in ``ops.pipeline_runs`` (the UI finds reports by run id).
"""

from __future__ import annotations

import html
import json
import math
from collections import defaultdict
from collections.abc import Mapping
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from quant.config import Settings, get_settings
from quant.db import connect
from quant.report._html import empty, fmt, kv_table, page, rows_table, section
from quant.report._plots import bar_figure, line_figure, two_panel_figure
from quant.report._run_data import RunData, as_utc_text, drawdown, load_run_data
from quant.report._session_page import write_session_page
from quant.run_folders import report_path, write_text_atomic

__all__ = ["stage_wall_seconds", "wall_seconds", "write_run_report"]

TASK_ORDER = (
    "ingest_bars",
    "dbt",
    "data_quality",
    "retrain_model",
    "predict",
    "optimize_portfolio",
    "generate_orders",
    "pretrade_check",
    "submit_orders",
    "reconcile",
    "report",
)
"""Tasks of the daily DAG in pipeline order (``dbt`` stands for every ``dbt.*`` task)."""

FAILED_STAGE = "run failed"
"""Key of the stage summary the DAG's failure callback passes (``reason``, ``failed or not run``)."""


# -- sections -----------------------------------------------------------------------------------
def _is_dry_run(data: RunData, stages: Mapping[str, Any], requested: bool = False) -> bool:
    """Whether the run was a dry run: as requested, per its execution record, or per a stage."""
    said = any(isinstance(s, Mapping) and s.get("dry_run") is True for s in stages.values())
    return requested or data.dry_run or said


def _summary(
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


def _equity(data: RunData) -> str:
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


def _weights(data: RunData) -> str:
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


def _turnover(data: RunData) -> str:
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


def _model(data: RunData) -> str:
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
            ["model", "trained through", "status", "validation rank IC", "ICIR", "hit rate",
             "training rows"],
            [(m["model_id"], m["trained_through"].isoformat(), m["status"],
              m["validation_rank_ic"], m["icir"], m["hit_rate"], m["train_rows"])
             for m in data.models[-8:]],
        ))
    else:
        parts.append(empty("No model trained yet."))
    if data.decisions:
        parts.append("<h3>Retrain decisions</h3>" + rows_table(
            ["session", "action", "reason", "model", "champion", "champion changed"],
            [(d["session_date"].isoformat(), d["action"], d["reason"], d["model_id"],
              d["champion_model_id"], d["champion_changed"]) for d in data.decisions],
        ))
    return section("model", "Model metrics over time", "".join(parts))


def _orders(data: RunData) -> str:
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


def _data_quality(data: RunData, docs: Path) -> str:
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


def _task_rank(task_id: str) -> tuple[int, str]:
    head = _stage_of(task_id)
    return (TASK_ORDER.index(head) if head in TASK_ORDER else len(TASK_ORDER), task_id)


def _stage_of(task_id: str) -> str:
    """The stage a task belongs to: its group (``dbt`` for ``dbt.*``) or itself."""
    return task_id.split(".", 1)[0].split("[", 1)[0]


def _instant(value: Any) -> datetime | None:
    """A task's start or end as an aware UTC datetime (ISO-8601 text or datetime; None stays None)."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=timezone.utc) if moment.tzinfo is None else moment


def _span(entries: list[Mapping[str, Any]]) -> tuple[datetime | None, datetime | None]:
    starts = [s for s in (_instant(e.get("start")) for e in entries) if s is not None]
    ends = [e for e in (_instant(x.get("end")) for x in entries) if e is not None]
    return (min(starts) if starts else None, max(ends) if ends else None)


def wall_seconds(timings: Mapping[str, Mapping[str, Any]]) -> float | None:
    """Seconds from the earliest task start to the latest task end; None when unknown.

    Tasks that ran in parallel count once: this is elapsed time, not a sum of task
    durations. ``timings`` maps task id to ``{"state", "seconds", "start", "end"}``
    (start and end ISO-8601 UTC text or datetimes, either may be None).
    """
    first, last = _span(list(timings.values()))
    if first is None or last is None:
        if len(timings) == 1:  # one task: its own duration is the wall time
            only = next(iter(timings.values())).get("seconds")
            return None if only is None else float(only)
        return None
    return max(0.0, (last - first).total_seconds())


def stage_wall_seconds(timings: Mapping[str, Mapping[str, Any]]) -> dict[str, float | None]:
    """Wall seconds of each stage in pipeline order (the ``dbt.*`` tasks form one stage)."""
    grouped: dict[str, dict[str, Mapping[str, Any]]] = defaultdict(dict)
    for task_id, entry in timings.items():
        grouped[_stage_of(task_id)][task_id] = entry
    return {stage: wall_seconds(grouped[stage]) for stage in sorted(grouped, key=_task_rank)}


def _utc_text(value: Any) -> str:
    moment = _instant(value)
    return "" if moment is None else as_utc_text(moment.astimezone(timezone.utc))


def _timings(timings: Mapping[str, Mapping[str, Any]], note: str) -> str:
    if not timings:
        return section("timings", "Timings", empty(note))
    tasks = sorted(timings, key=_task_rank)
    stages = stage_wall_seconds(timings)
    known = {s: v for s, v in stages.items() if v is not None}
    parts = []
    if known:
        parts.append(bar_figure(
            list(known), list(known.values()), ylabel="seconds",
            caption="Wall time per stage, first task start to last task end (tasks of a stage "
                    "that ran in parallel count once).",
        ))
    first, last = _span(list(timings.values()))
    run_wall = wall_seconds(timings)
    parts.append(kv_table({
        "wall time (seconds)": run_wall if run_wall is not None else "unknown (no start and end times)",
        "first task started": _utc_text(first),
        "last task ended": _utc_text(last),
        "tasks": len(tasks),
    }))
    parts.append(f'<p class="meta">{html.escape(note)}</p>')
    grouped: dict[str, list[str]] = defaultdict(list)
    for task_id in tasks:
        grouped[_stage_of(task_id)].append(task_id)
    parts.append("<h3>Stages</h3>" + rows_table(
        ["stage", "tasks", "wall seconds", "start", "end"],
        [(stage, len(grouped[stage]),
          stages[stage] if stages[stage] is not None else "unknown",
          *(_utc_text(x) for x in _span([timings[t] for t in grouped[stage]])))
         for stage in stages],
        css="stages",
    ))
    parts.append("<h3>Tasks</h3>" + rows_table(
        ["task", "state", "seconds", "start", "end"],
        [(t, timings[t].get("state"), timings[t].get("seconds"),
          _utc_text(timings[t].get("start")), _utc_text(timings[t].get("end"))) for t in tasks],
        css="tasks",
    ))
    return section("timings", "Timings", "".join(parts))


def _stages(stages: Mapping[str, Mapping[str, Any]]) -> str:
    if not stages:
        return section("stages", "Stage summaries", empty("No stage returned a summary."))
    parts = []
    for name, figures in stages.items():
        body = kv_table(dict(figures)) if isinstance(figures, Mapping) else html.escape(fmt(figures))
        parts.append(f"<details><summary>{html.escape(name)}</summary>{body}</details>")
    return section("stages", "Stage summaries", "".join(parts))


def _timings_from(
    stages: Mapping[str, Mapping[str, Any]],
    task_timings: Mapping[str, Mapping[str, Any]] | None,
) -> tuple[dict[str, dict[str, Any]], str]:
    """Task timings: as passed (Airflow's), else the stages' own."""
    if task_timings:
        timings = {k: dict(v) for k, v in task_timings.items()}
        if any(v.get("state") == "running" for v in timings.values()):  # the DAG's report task
            return timings, ("Durations recorded by Airflow for the tasks finished when the "
                             "report was written (the report task itself is still running).")
        return timings, "Durations recorded by Airflow."
    own = {name: {"state": "success", "seconds": float(s["seconds"]), "start": None, "end": None}
           for name, s in stages.items()
           if isinstance(s, Mapping) and isinstance(s.get("seconds"), (int, float))}
    if own:
        return own, "Durations the stages measured themselves."
    return {}, "No task timings available (the report was written outside an Airflow task)."


# -- the page -----------------------------------------------------------------------------------
def write_run_report(
    *,
    dag_id: str,
    run_id: str,
    session: date,
    stages: dict[str, dict[str, Any]],
    settings: Settings | None = None,
    run_type: str = "manual",
    status: str = "success",
    task_timings: Mapping[str, Mapping[str, Any]] | None = None,
    dry_run: bool = False,
) -> Path:
    """Write the run's HTML report, list it on its session's page, and return its path.

    Parameters
    ----------
    dag_id, run_id : str
        The Airflow DAG and run the report is for; the page goes to
        :func:`quant.report.report_path` ``(dag_id, run_id)``.
    session : date
        The trading session of the run.
    stages : dict
        Stage name -> the figures that stage returned (shown in order). The
        failure callback passes ``{"run failed": {"reason", "failed or not run",
        "errors"}}`` (``errors``: task id -> error text).
    run_type, status : str
        Recorded with the run in ``ops.pipeline_runs``; ``status`` other than
        ``"success"`` puts what failed at the top of the page.
    task_timings : mapping, optional
        Task id -> ``{"state", "seconds", "start", "end"}`` (start and end
        ISO-8601 UTC text or datetimes, may be None), as Airflow recorded them
        (the DAG's report task passes :func:`quant.orchestration.task_timings`).
        Without them, the ``seconds`` the stage summaries carry. The run's
        recorded ``report.seconds`` is its wall time.
    dry_run : bool
        The run was triggered as a dry run. The page also says "dry run" when the
        run's execution record or a stage summary (``"dry_run": true``) says so.
    """
    settings = settings or get_settings()
    path = report_path(dag_id, run_id, settings)
    conn = connect(settings)
    try:
        data = load_run_data(conn, dag_id=dag_id, run_id=run_id, session=session)
    finally:
        conn.close()
    dry = _is_dry_run(data, stages, dry_run)
    timings, note = _timings_from(stages, task_timings)
    summary, lines = _summary(data, stages, status, dry)
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        f"<h1>{html.escape(dag_id)} &mdash; session {session.isoformat()} "
        f'<span class="badge {"success" if status == "success" else "failed"}">'
        f"{html.escape(status)}</span>"
        + (' <span class="badge dry">dry run</span>' if dry else "")
        + "</h1>"
        f'<p class="meta">run <code>{html.escape(run_id)}</code> ({html.escape(run_type)}'
        f'{", dry run" if dry else ""}) &middot; generated {generated} &middot; '
        f'<a href="../../{session.isoformat()}/index.html">all runs of this session</a></p>'
    )
    body = [
        summary,
        _equity(data),
        _weights(data),
        _turnover(data),
        _model(data),
        _orders(data),
        _data_quality(data, path.parent / "data_quality" / "index.html"),
        _timings(timings, note),
        section("market", "Market data", kv_table(data.market)),
        _stages(stages),
    ]
    title = f"{dag_id} {session.isoformat()} {run_id}" + (" (dry run)" if dry else "")
    write_text_atomic(path, page(title, header, body))
    wall = wall_seconds(timings)
    record = dict(stages) | {"report": {
        "summary": lines,
        "seconds": None if wall is None else round(wall, 3),
        "dry_run": dry,
    }}
    _record_run(dag_id, run_id, session, run_type, status, record, settings)
    write_session_page(dag_id, session, settings)
    return path


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def _record_run(
    dag_id: str,
    run_id: str,
    session: date,
    run_type: str,
    status: str,
    stages: dict[str, Any],
    settings: Settings,
) -> None:
    # jsonb refuses NaN and the NUL character: NaN becomes null, NUL is dropped
    summary = json.dumps(_jsonable(stages), default=str).replace("\\u0000", "")
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                """
                insert into ops.pipeline_runs (run_id, dag_id, logical_date, run_type, status, summary)
                values (%s, %s, %s, %s, %s, %s)
                on conflict (run_id) do update
                    set status = excluded.status, summary = excluded.summary, updated_at = now()
                """,
                (run_id, dag_id, session, run_type, status, summary),
            )
    finally:
        conn.close()
