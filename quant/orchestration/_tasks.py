"""What the DAG files' tasks call: the run a task belongs to, broker credentials, the dbt
task group and its template macros, and Airflow's "fail, do not retry".
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from quant.config import get_settings
from quant.orchestration._guard import unknown_conf_keys
from quant.pipeline import RunContext

__all__ = [
    "BROKER_CONNECTIONS",
    "DBT_ENV_KEYS",
    "broker_credentials",
    "current_run",
    "dbt_env",
    "dbt_task_group",
    "dbt_var",
    "fail_without_retry",
]

# -- helpers for the DAG files (they import Airflow, lazily) ------------------------------------
DBT_ENV_KEYS = ("DBT_PG_HOST", "DBT_PG_PORT", "DBT_PG_USER", "DBT_PG_PASSWORD", "DBT_PG_DBNAME")
BROKER_CONNECTIONS = {"alpaca": "quant_alpaca", "ibkr": "quant_ibkr"}
"""Airflow connection ids holding broker credentials, when users keep them in Airflow."""


def current_run(*, credentials: bool = False) -> RunContext:
    """The running task's DAG run, as the run context its stage takes.

    The wiring of DAG runs (scheduled, manual, asset-triggered, backfill): the session,
    run id and type, the process's settings, the run's params (``dry_run``, ``broker``
    as ``requested_broker``, ...) and, with ``credentials``, the chosen broker's
    credentials from its Airflow connection (:func:`broker_credentials`; the execution
    stages ask for them, the others need none).

    Works for every run type, with or without a logical date: a run triggered with
    ``"logical_date": null`` (the REST API, the UI's trigger button) is for the latest
    session closed at its ``run_after``. Raises ``AirflowFailException`` when the run's
    conf has keys the DAG does not declare as params (a typo such as ``optimiser`` would
    otherwise be ignored silently), and ``AirflowSkipException`` for a non-session date.
    """
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

    from quant.calendar import NotASessionError, get_calendar

    context = get_current_context()
    dag_run = context["dag_run"]
    unknown = unknown_conf_keys(dag_run.conf, context["dag"].params)
    if unknown:
        raise AirflowFailException(unknown)
    cal = get_calendar(get_settings().exchange)
    try:
        session = cal.session_for_run(getattr(dag_run, "logical_date", None), dag_run.run_after)
    except NotASessionError as exc:
        raise AirflowSkipException(str(exc)) from exc
    run_type = getattr(dag_run.run_type, "value", dag_run.run_type)
    settings = get_settings()
    params = dict(context.get("params") or {})
    requested = params.get("broker")
    return RunContext(
        session=session,
        run_id=dag_run.run_id,
        settings=settings,
        dag_id=dag_run.dag_id,
        run_type=str(run_type),
        dry_run=bool(params.get("dry_run")),
        requested_broker=requested,
        credentials=broker_credentials(requested or settings.broker) if credentials else None,
        params=params,
    )


def broker_credentials(broker: str | None) -> dict[str, Any] | None:
    """Credentials of ``broker`` from its Airflow connection, or None (use the environment).

    ``quant_alpaca``: login = API key id, password = secret key, host = base URL.
    ``quant_ibkr``: host, port and ``extra`` ``{"client_id": N}``.
    """
    conn_id = BROKER_CONNECTIONS.get(broker or "")
    if conn_id is None:
        return None
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = Connection.get(conn_id)
    except AirflowNotFoundException:
        return None
    if broker == "alpaca":
        out = {"api_key": conn.login, "secret_key": conn.password}
        if conn.host:
            out["base_url"] = conn.host if "://" in conn.host else f"https://{conn.host}"
        return out
    extra = conn.extra_dejson or {}
    return {
        k: v
        for k, v in {"host": conn.host, "port": conn.port, "client_id": extra.get("client_id")}.items()
        if v is not None
    }


def dbt_task_group(group_id: str = "dbt") -> Any:
    """The Cosmos task group of the dbt project: one ``dbt build`` task per model.

    Each task runs its model and then the model's tests (Cosmos ``TestBehavior.BUILD``),
    so the graph shows one node per model in dependency order and a failed test stops
    the models downstream of it.

    Rendered from ``dbt/target/manifest.json`` (never ``dbt ls`` at parse time).
    The connection reaches the tasks as ``DBT_PG_*`` variables resolved when they
    run (templates calling the DAG's ``dbt_env`` macro), and the run's session as
    dbt vars (``dbt_var``), so nothing touches the database at parse time.
    """
    from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
    from cosmos.constants import InvocationMode, LoadMode, TestBehavior

    from quant.transform import MANIFEST_COMMAND, dbt_project_dir, manifest_path

    project, manifest = dbt_project_dir(), manifest_path()
    if not manifest.exists():
        raise FileNotFoundError(
            f"the dbt manifest {manifest} is missing; build it with `{MANIFEST_COMMAND}`"
        )
    return DbtTaskGroup(
        group_id=group_id,
        project_config=ProjectConfig(
            dbt_project_path=project, manifest_path=manifest, install_dbt_deps=False
        ),
        profile_config=ProfileConfig(
            profile_name="quant", target_name="default", profiles_yml_filepath=project / "profiles.yml"
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.BUILD,
            emit_datasets=False,  # a Unix-socket host makes no valid asset URI
        ),
        execution_config=ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER),
        operator_args={
            "install_deps": False,
            "retries": 0,
            "env": {key: "{{ dbt_env('" + key + "') }}" for key in DBT_ENV_KEYS},
            "vars": {
                key: "{{ dbt_var('" + key + "', dag_run) }}"
                for key in ("run_date", "provider_priority")
            },
        },
    )


def dbt_env(key: str) -> str:
    """Template macro: one ``DBT_PG_*`` variable, resolved when the task runs."""
    from quant.transform import dbt_environment

    return dbt_environment()[key]


def dbt_var(key: str, dag_run: Any) -> str:
    """Template macro: one dbt variable of the run's session (``run_date``, ...).

    Takes the run, not the template's ``logical_date``: a run triggered without a
    logical date has none in its template context.
    """
    from quant.calendar import get_calendar
    from quant.transform import dbt_vars

    settings = get_settings()
    session = get_calendar(settings.exchange).session_for_run(
        getattr(dag_run, "logical_date", None), dag_run.run_after
    )
    return dbt_vars(session, settings)[key]


@contextmanager
def fail_without_retry(*errors: type[BaseException]) -> Iterator[None]:
    """Turn ``errors`` into Airflow's "fail, do not retry" (a halted sidecar, a position break).

    Network tasks retry with backoff; a refusal that a retry cannot change ends the task at once.
    """
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except errors as exc:
        raise AirflowFailException(str(exc)) from exc
