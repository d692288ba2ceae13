"""Reading Airflow's metadata database: a run's record and its task instances.

Short-lived connections with timeouts, usable from a task and from the DAG
processor's callbacks alike (neither may block on the task supervisor).
"""

from __future__ import annotations

import json
import os
import re
import sys
from datetime import datetime, timezone
from typing import Any

from quant.config import get_settings

__all__ = [
    "dag_run_record",
    "task_timings",
]


def _metadata_url() -> str | None:
    """libpq URL of Airflow's metadata database (PostgreSQL only).

    Airflow's own setting where it is a PostgreSQL URL (the scheduler, the DAG
    processor); Airflow 3 replaces it inside task processes, which are not meant to
    use the ORM, so there the project's convention gives it: database ``airflow`` on
    the pipeline's server (:func:`quant.db.airflow_database_url`).
    """
    url = os.environ.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if not url.startswith("postgresql"):
        from quant.db import airflow_database_url
        from quant.exceptions import QuantError

        try:
            url = airflow_database_url(get_settings())
        except QuantError:
            return None
    return re.sub(r"^postgresql\+\w+://", "postgresql://", url)


def _metadata_rows(query: str, args: tuple) -> list[tuple] | None:
    """Rows of a read-only query on the metadata database, or None when it cannot be reached.

    A short-lived connection with connect and statement timeouts: the DAG failure callback
    runs in the DAG processor, which kills a callback that blocks and then marks the DAG
    stale; it must never wait on anything.
    """
    import psycopg2

    url = _metadata_url()
    if url is None:
        return None
    try:
        conn = psycopg2.connect(url, connect_timeout=5, options="-c statement_timeout=10000")
    except psycopg2.Error:
        return None
    try:
        with conn, conn.cursor() as cur:
            cur.execute(query, args)
            return cur.fetchall()
    except psycopg2.Error:
        return None
    finally:
        conn.close()


def _iso(value: Any) -> str | None:
    return value.astimezone(timezone.utc).isoformat() if isinstance(value, datetime) else None


def task_timings(dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    """State, seconds, start and end of each task of a DAG run.

    ``{task_id: {"state", "seconds", "start", "end"}}`` (mapped tasks as ``task[i]``;
    start and end ISO-8601 UTC or None). Read from the metadata database (works in a
    task and in the DAG processor's callbacks alike); when that is not PostgreSQL or
    cannot be reached, inside a running task the Task SDK's breadcrumbs (no start or
    end), else empty.
    """
    rows = _metadata_rows(
        "select task_id, map_index, state, duration, start_date, end_date from task_instance "
        "where dag_id = %s and run_id = %s order by task_id, map_index",
        (dag_id, run_id),
    )
    if rows is not None:
        return {
            task_id + (f"[{index}]" if index is not None and index >= 0 else ""): {
                "state": str(state), "seconds": duration, "start": _iso(start), "end": _iso(end)
            }
            for task_id, index, state, duration, start, end in rows
        }
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    if runner is None or getattr(runner, "SUPERVISOR_COMMS", None) is None:
        return {}
    if not _inside_task(runner):
        return {}  # a DAG-processor callback: the supervisor would not answer
    out: dict[str, dict[str, Any]] = {}
    for crumb in runner.RuntimeTaskInstance.get_task_breadcrumbs(dag_id, run_id):
        index = crumb.get("map_index")
        key = crumb["task_id"] + (f"[{index}]" if index is not None and index >= 0 else "")
        out[key] = {"state": str(crumb.get("state")), "seconds": crumb.get("duration"),
                    "start": None, "end": None}
    return out


def _inside_task(runner: Any) -> bool:
    """Whether this process runs an Airflow task (not a DAG processor's callback)."""
    try:
        from airflow.sdk import get_current_context

        get_current_context()
    except Exception:  # noqa: BLE001 - any failure means there is no task context here
        return False
    return True


def dag_run_record(dag_id: str, run_id: str) -> dict[str, Any] | None:
    """``logical_date``, ``run_after``, ``run_type``, ``state`` of a DAG run from the metadata DB."""
    rows = _metadata_rows(
        "select logical_date, run_after, run_type, state, conf from dag_run "
        "where dag_id = %s and run_id = %s",
        (dag_id, run_id),
    )
    if not rows:
        return None
    logical, run_after, run_type, state, conf = rows[0]
    if isinstance(conf, str | bytes):
        conf = json.loads(conf)
    return {"logical_date": logical, "run_after": run_after, "run_type": run_type,
            "state": state, "conf": conf if isinstance(conf, dict) else {}}
