"""The HTML report of one daily run.

One self-contained page per (DAG, session) under
``QUANT_HOME/reports/<dag_id>/<session>/index.html``; a rerun of the same
session rewrites it. The page shows each stage's figures as the stages
returned them and a summary of the market data the run saw.
"""

from __future__ import annotations

import html
import json
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from quant.config import Settings, get_settings
from quant.db import connect

__all__ = ["report_path", "write_run_report"]


def report_path(dag_id: str, session: date, settings: Settings | None = None) -> Path:
    """Where the report of ``dag_id``'s run for ``session`` is written."""
    settings = settings or get_settings()
    return settings.reports_dir / dag_id / session.isoformat() / "index.html"


def _market_summary(session: date, settings: Settings) -> dict[str, Any]:
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                """
                select count(*), count(distinct symbol), min(close), max(close), sum(volume)
                from raw.bars where date = %s
                """,
                (session,),
            )
            rows, symbols, min_close, max_close, volume = cur.fetchone()
            cur.execute("select count(distinct date) from raw.bars where date <= %s", (session,))
            history = cur.fetchone()[0]
    finally:
        conn.close()
    return {
        "bars on the session": rows,
        "symbols on the session": symbols,
        "lowest close (USD)": round(min_close, 2) if min_close is not None else None,
        "highest close (USD)": round(max_close, 2) if max_close is not None else None,
        "shares traded": int(volume or 0),
        "sessions of history": history,
    }


def _table(rows: dict[str, Any]) -> str:
    cells = "".join(
        f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(_fmt(v))}</td></tr>"
        for k, v in rows.items()
    )
    return f"<table>{cells}</table>"


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.4g}"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str)
    return "" if value is None else str(value)


_CSS = """
body{font-family:system-ui,sans-serif;margin:2rem;color:#1b1f24;max-width:1100px}
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem;border-bottom:1px solid #d0d7de}
table{border-collapse:collapse;margin:.5rem 0}th,td{padding:.25rem .8rem;border:1px solid #d0d7de;
text-align:left;font-variant-numeric:tabular-nums}th{background:#f6f8fa;font-weight:600}
.ok{color:#1a7f37}.failed{color:#cf222e}.meta{color:#57606a;font-size:.9rem}
"""


def write_run_report(
    *,
    dag_id: str,
    run_id: str,
    session: date,
    stages: dict[str, dict[str, Any]],
    settings: Settings | None = None,
    run_type: str = "manual",
    status: str = "success",
) -> Path:
    """Write the run's HTML report and return its path.

    Parameters
    ----------
    dag_id, run_id : str
        The Airflow DAG and run the report is for.
    session : date
        The trading session of the run.
    stages : dict
        Stage name -> the figures that stage returned (shown in order).
    run_type, status : str
        Recorded with the run in ``ops.pipeline_runs`` (the UI finds reports by run id).
    """
    settings = settings or get_settings()
    path = report_path(dag_id, session, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    market = _market_summary(session, settings)
    sections = [
        f"<h2>{html.escape(name)}</h2>{_table(figures)}" for name, figures in stages.items()
    ]
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{html.escape(dag_id)} {session.isoformat()}</title><style>{_CSS}</style></head>
<body>
<h1>{html.escape(dag_id)} &mdash; session {session.isoformat()}</h1>
<p class="meta">run <code>{html.escape(run_id)}</code> &middot; generated {generated}</p>
<h2>Market data</h2>{_table(market)}
{''.join(sections)}
</body></html>
"""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(page)
    tmp.replace(path)
    _record_run(dag_id, run_id, session, run_type, status, stages, settings)
    return path


def _record_run(
    dag_id: str,
    run_id: str,
    session: date,
    run_type: str,
    status: str,
    stages: dict[str, dict[str, Any]],
    settings: Settings,
) -> None:
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
                (run_id, dag_id, session, run_type, status, json.dumps(stages, default=str)),
            )
    finally:
        conn.close()
