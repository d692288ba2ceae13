"""The page of one session: every recorded run of a DAG for it, latest first, with links.

``QUANT_HOME/reports/<dag_id>/<session>/index.html``, rewritten whenever a run
report of the session is written; each run keeps its own report under
``<dag_id>/runs/<run_key>/`` (:mod:`quant.run_folders`).
"""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path
from typing import Any

from quant.config import Settings
from quant.db import connect
from quant.report._html import empty, page, section
from quant.run_folders import run_key, session_page_path, write_text_atomic

__all__ = ["session_runs", "write_session_page"]


def session_runs(dag_id: str, session: date, settings: Settings) -> list[dict[str, Any]]:
    """The recorded runs of ``dag_id`` for ``session`` (``ops.pipeline_runs``), latest first.

    Each: ``run_id``, ``run_type``, ``status``, ``dry_run`` (bool), ``started_at``,
    ``updated_at`` (UTC).
    """
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                """
                select run_id, run_type, status,
                       coalesce((summary -> 'report' ->> 'dry_run')::boolean, false),
                       started_at, updated_at
                from ops.pipeline_runs where dag_id = %s and logical_date = %s
                order by started_at desc, run_id desc
                """,
                (dag_id, session),
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    names = ("run_id", "run_type", "status", "dry_run", "started_at", "updated_at")
    return [dict(zip(names, row, strict=True)) for row in rows]


def _stamp(value: Any) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else ""


def write_session_page(dag_id: str, session: date, settings: Settings) -> Path:
    """Write the page listing ``dag_id``'s runs of ``session`` and return its path."""
    runs = session_runs(dag_id, session, settings)
    path = session_page_path(dag_id, session, settings)
    if runs:
        rows = "".join(
            "<tr>"
            f'<td><a href="../runs/{html.escape(run_key(r["run_id"]))}/index.html">'
            f'<code>{html.escape(r["run_id"])}</code></a></td>'
            f'<td>{html.escape(r["run_type"])}</td>'
            f'<td><span class="badge {"success" if r["status"] == "success" else "failed"}">'
            f'{html.escape(r["status"])}</span></td>'
            f'<td>{"dry run" if r["dry_run"] else "no"}</td>'
            f"<td>{_stamp(r['started_at'])}</td><td>{_stamp(r['updated_at'])}</td>"
            "</tr>"
            for r in runs
        )
        body = (
            '<table class="runs"><thead><tr><th>run</th><th>type</th><th>status</th>'
            "<th>dry run</th><th>first reported</th><th>last reported</th></tr></thead>"
            f"<tbody>{rows}</tbody></table>"
        )
    else:
        body = empty("No run of this session has been recorded.")
    header = (
        f"<h1>{html.escape(dag_id)} &mdash; session {session.isoformat()}</h1>"
        f'<p class="meta">{len(runs)} run(s), latest first; each keeps its own report.</p>'
    )
    text = page(f"{dag_id} {session.isoformat()} runs", header, [section("runs", "Runs", body)])
    write_text_atomic(path, text)
    return path
