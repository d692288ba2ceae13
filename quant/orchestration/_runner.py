"""Running a DAG in this process (``dag.test``): the demo, ``quant run`` and the tests."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import Any

from quant.config import Settings, get_settings
from quant.exceptions import PipelineRunError
from quant.orchestration._environment import (
    DAG_ID,
    apply_airflow_environment,
    ensure_airflow_db,
    logical_datetime,
)
from quant.paths import project_root

__all__ = [
    "RunResult",
    "require_runnable",
    "run_dag",
]


@dataclass(frozen=True, slots=True)
class RunResult:
    """Outcome of one in-process DAG run."""

    dag_id: str
    run_id: str
    session: date
    state: str
    task_states: dict[str, str]
    task_seconds: dict[str, float] = field(default_factory=dict)
    """Seconds each task ran (tasks that did not run, e.g. marked done or skipped, are absent)."""

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


def require_runnable(session: date, settings: Settings | None = None) -> None:
    """Refuse a session the DAG has no run for: one before ``QUANT_START_DATE``.

    Airflow's ``dag.test`` of a logical date before the DAG's ``start_date`` creates a
    run without a single task and calls it a success; this says why and what to do.

    Raises
    ------
    PipelineRunError
        ``session`` is before ``settings.start_date``.
    """
    settings = settings or get_settings()
    if session < settings.start_date:
        raise PipelineRunError(
            f"{session.isoformat()} is before the {DAG_ID} DAG's start date "
            f"{settings.start_date.isoformat()} (QUANT_START_DATE): Airflow would create no "
            f"task for it. Set QUANT_START_DATE={session.isoformat()} (or earlier) to run or "
            "backfill it, or use `quant backtest` for research over past sessions"
        )


def run_dag(
    session: date,
    *,
    dag_id: str = DAG_ID,
    conf: dict[str, Any] | None = None,
    settings: Settings | None = None,
    mark_success_pattern: str | None = None,
) -> RunResult:
    """Run one DAG run for ``session`` in this process (``dag.test``) and report its states.

    The project's Airflow environment is applied to ``os.environ`` first, so
    call this before anything in the process has imported Airflow. Tasks whose id
    fully match ``mark_success_pattern`` are marked successful without running (the
    demo uses it for dbt tasks after building the models once for its range).
    """
    settings = settings or get_settings()
    require_runnable(session, settings)
    apply_airflow_environment(settings)
    ensure_airflow_db(settings)

    from quant.transform import ensure_manifest

    ensure_manifest()  # the DAG renders its dbt tasks from it

    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(project_root() / "dags"))
    if bag.import_errors:
        raise PipelineRunError(f"DAG import errors: {bag.import_errors}")
    dag = bag.get_dag(dag_id)
    if dag is None:
        raise PipelineRunError(f"no DAG named {dag_id!r} in {project_root() / 'dags'}")
    logical = logical_datetime(session, settings)
    dr = dag.test(
        logical_date=logical,
        run_after=datetime.now(timezone.utc),
        run_conf=conf or {},
        mark_success_pattern=mark_success_pattern,
    )
    tis = dr.get_task_instances()
    if not tis:
        start = dag.start_date.date().isoformat() if dag.start_date else "unset"
        end = dag.end_date.date().isoformat() if dag.end_date else "none"
        raise PipelineRunError(
            f"the {dag_id} run for {session.isoformat()} ran no task (state {dr.state}): the "
            f"DAG's range is {start} to {end}; a session outside it has no tasks. Move "
            "QUANT_START_DATE to or before the session"
        )
    states = {ti.task_id: str(ti.state) for ti in tis}
    seconds = {ti.task_id: float(ti.duration) for ti in tis if ti.duration is not None}
    return RunResult(dag_id, dr.run_id, session, str(dr.state), states, seconds)
