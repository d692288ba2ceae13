"""Failure callbacks: a task records its error; the DAG run's callback writes the failed run's report."""

from __future__ import annotations

from typing import Any

from quant.config import Settings, get_settings
from quant.exceptions import PipelineRunError
from quant.orchestration._metadata import dag_run_record, task_timings

__all__ = [
    "FAILED_STAGE",
    "on_run_failure",
    "on_task_failure",
    "record_task_failure",
    "task_errors",
]


FAILED_STAGE = "run failed"
"""Key of the stage summary of a failed run's report (``reason``, ``failed or not run``, ``errors``)."""


def on_task_failure(context: dict[str, Any]) -> None:
    """Task failure callback (runs in the task's process): record the task's error.

    The DAG's failure callback runs in the DAG processor and never sees the exception;
    it reads what this records (``ops.task_failures``) to name the error in the report.
    """
    ti = context["ti"]
    error = context.get("exception")
    text = f"{type(error).__name__}: {error}" if error is not None else "failed (no exception)"
    record_task_failure(ti.dag_id, ti.run_id, ti.task_id, getattr(ti, "map_index", -1) or -1,
                        int(getattr(ti, "try_number", 0) or 0), text)


def record_task_failure(
    dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int, error: str,
    settings: Settings | None = None,
) -> None:
    """Store one failed try's error (its first 4,000 characters: the head says what broke)."""
    from quant.db import connect

    conn = connect(settings or get_settings())
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                """
                insert into ops.task_failures (dag_id, run_id, task_id, map_index, try_number, error)
                values (%s, %s, %s, %s, %s, %s)
                on conflict (dag_id, run_id, task_id, map_index, try_number)
                do update set error = excluded.error, failed_at = now()
                """,
                (dag_id, run_id, task_id, map_index, try_number, error.replace("\x00", "")[:4000]),
            )
    finally:
        conn.close()


def task_errors(dag_id: str, run_id: str, settings: Settings | None = None) -> dict[str, str]:
    """The last recorded error of each failed task of a run, ``{task_id: error}``."""
    from quant.db import connect

    conn = connect(settings or get_settings())
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                """
                select distinct on (task_id, map_index) task_id, map_index, error
                from ops.task_failures where dag_id = %s and run_id = %s
                order by task_id, map_index, try_number desc
                """,
                (dag_id, run_id),
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    return {task + (f"[{index}]" if index >= 0 else ""): error for task, index, error in rows}


def on_run_failure(context: dict[str, Any]) -> None:
    """DAG failure callback: record the failed run and write its report, saying what failed.

    It runs in the DAG processor, with what a callback has there: the DAG, the run id,
    the reason (and, when Airflow knows it, the last task instance). Everything else
    (the run's dates and type, its task instances) is read from the metadata database
    with timeouts, and the errors from what the tasks' own failure callbacks recorded;
    nothing here asks the task supervisor, so the callback never blocks.
    """
    from quant.calendar import NotASessionError, get_calendar
    from quant.report import write_run_report

    settings = get_settings()
    dag_id = context["dag"].dag_id if context.get("dag") is not None else context["dag_run"].dag_id
    run_id = context.get("run_id") or context["dag_run"].run_id
    record = dag_run_record(dag_id, run_id)
    dag_run = context.get("dag_run")
    if record is None and dag_run is not None:  # no PostgreSQL metadata DB: what the context has
        record = {"logical_date": getattr(dag_run, "logical_date", None),
                  "run_after": dag_run.run_after, "run_type": dag_run.run_type,
                  "conf": dict(getattr(dag_run, "conf", None) or {})}
    if record is None:
        raise PipelineRunError(f"run {run_id!r} of {dag_id!r} not found: no report written")
    try:
        session = get_calendar(settings.exchange).session_for_run(
            record["logical_date"], record["run_after"]
        )
    except NotASessionError:
        return  # a run for a non-session date skipped every task: nothing to report
    timings = task_timings(dag_id, run_id)
    failed = sorted(t for t, v in timings.items() if v["state"] in ("failed", "upstream_failed"))
    if not failed and context.get("ti") is not None:
        failed = [context["ti"].task_id]  # the task whose failure failed the run
    errors = task_errors(dag_id, run_id, settings)
    first = next((t for t in failed if t in errors), None)
    reason = (f"{first} failed: {errors[first].splitlines()[0] if errors[first] else ''}"
              if first else str(context.get("reason") or "a task failed"))
    write_run_report(
        dag_id=dag_id,
        run_id=run_id,
        session=session,
        stages={FAILED_STAGE: {"reason": reason, "failed or not run": failed,
                               "errors": {t: errors[t] for t in failed if t in errors}}},
        settings=settings,
        run_type=str(getattr(record["run_type"], "value", record["run_type"])),
        status="failed",
        task_timings=timings,
        dry_run=bool(record["conf"].get("dry_run")),
    )
