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
from collections.abc import Mapping
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from quant.config import Settings, get_settings
from quant.db import connect
from quant.report._html import kv_table, page, section
from quant.report._run_data import load_run_data
from quant.report._run_sections import (
    corporate_events_section,
    data_quality_section,
    equity_section,
    is_dry_run,
    model_section,
    orders_section,
    stages_section,
    summary_section,
    turnover_section,
    weights_section,
)
from quant.report._run_timings import (
    stage_wall_seconds,
    timings_from,
    timings_section,
    wall_seconds,
)
from quant.report._session_page import write_session_page
from quant.run_folders import report_path, write_text_atomic

__all__ = ["stage_wall_seconds", "wall_seconds", "write_run_report"]


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
    dry = is_dry_run(data, stages, dry_run)
    timings, note = timings_from(stages, task_timings)
    summary, lines = summary_section(data, stages, status, dry)
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
        equity_section(data),
        weights_section(data),
        turnover_section(data),
        model_section(data),
        orders_section(data),
        corporate_events_section(data),
        data_quality_section(data, path.parent / "data_quality" / "index.html"),
        timings_section(timings, note),
        section("market", "Market data", kv_table(data.market)),
        stages_section(stages),
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
