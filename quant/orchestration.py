"""The Airflow environment of the project and an in-process DAG runner.

This is the package's one integration module with Airflow. Building the
environment does not import Airflow; running a DAG does, lazily, after the
environment has been applied (Airflow reads its configuration at import).

Embedded defaults: ``AIRFLOW_HOME`` under ``QUANT_HOME``, the metadata
database ``airflow`` on the same PostgreSQL server as the pipeline,
LocalExecutor, this repository's ``dags/`` and ``plugins/`` folders, examples
off, low parallelism for small machines.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

from quant.config import Settings, get_settings
from quant.exceptions import PipelineRunError

__all__ = [
    "DAG_ID",
    "RunResult",
    "airflow_environment",
    "apply_airflow_environment",
    "ensure_airflow_db",
    "project_root",
    "run_dag",
    "logical_datetime",
    "run_after_datetime",
    "task_timings",
]

DAG_ID = "daily_trading"
ADMIN_USER = "admin"


def project_root() -> Path:
    """The repository root (holds dags/, plugins/, dbt/)."""
    return Path(__file__).resolve().parents[1]


def _secret_file(path: Path, make: Any) -> str:
    """Read a generated secret, creating it (mode 0600) on first use."""
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    return value


def admin_password_file(settings: Settings) -> Path:
    """JSON file with the UI login (``{"admin": "<password>"}``), generated once."""
    path = settings.airflow_home / "simple_auth_passwords.json"
    _secret_file(path, lambda: json.dumps({ADMIN_USER: secrets.token_urlsafe(12)}))
    return path


def airflow_environment(settings: Settings | None = None) -> dict[str, str]:
    """Environment variables that configure Airflow for this project."""
    from quant.db import airflow_database_url

    settings = settings or get_settings()
    home = settings.airflow_home
    home.mkdir(parents=True, exist_ok=True)
    root = project_root()
    fernet = _secret_file(home / "fernet.key", _fernet_key)
    jwt = _secret_file(home / "jwt.secret", lambda: secrets.token_urlsafe(32))
    env = {
        "AIRFLOW_HOME": str(home),
        "QUANT_HOME": str(settings.home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(root / "dags"),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
        "AIRFLOW__CORE__PARALLELISM": "4",
        "AIRFLOW__CORE__MAX_ACTIVE_TASKS_PER_DAG": "4",
        "AIRFLOW__CORE__FERNET_KEY": fernet,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(admin_password_file(settings)),
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{ADMIN_USER}:admin",
        "AIRFLOW__API_AUTH__JWT_SECRET": jwt,
        "AIRFLOW__API__SECRET_KEY": jwt,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_database_url(settings),
        "AIRFLOW__DATABASE__LOAD_DEFAULT_CONNECTIONS": "False",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "30",
        "AIRFLOW__COSMOS__ENABLE_TELEMETRY": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        "NO_PROXY": "*",
        "PYTHONPATH": os.pathsep.join(
            p for p in (str(root), os.environ.get("PYTHONPATH", "")) if p
        ),
    }
    if settings.database_url:
        env["DATABASE_URL"] = settings.database_url
    return env


def _fernet_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def apply_airflow_environment(settings: Settings | None = None) -> dict[str, str]:
    """Put the Airflow environment into ``os.environ`` (before Airflow is imported)."""
    env = airflow_environment(settings)
    os.environ.update(env)
    return env


def airflow_cli(args: list[str], settings: Settings | None = None, **kwargs: Any) -> int:
    """Run the airflow command line with the project's environment; return its exit code."""
    env = {**os.environ, **airflow_environment(settings)}
    exe = Path(sys.executable).with_name("airflow")
    cmd = [str(exe) if exe.exists() else "airflow", *args]
    return subprocess.call(cmd, env=env, **kwargs)


def ensure_airflow_db(settings: Settings | None = None) -> None:
    """Migrate the Airflow metadata database once per Airflow version and database."""
    settings = settings or get_settings()
    env = {**os.environ, **airflow_environment(settings)}
    from importlib.metadata import version

    stamp = f"{version('apache-airflow')} {env['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN']}"
    marker = settings.airflow_home / ".db_migrated"
    if marker.exists() and marker.read_text() == stamp:
        return
    exe = Path(sys.executable).with_name("airflow")
    proc = subprocess.run(
        [str(exe) if exe.exists() else "airflow", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise PipelineRunError(f"airflow db migrate failed:\n{proc.stdout[-3000:]}{proc.stderr[-3000:]}")
    marker.write_text(stamp)


def logical_datetime(session: date, settings: Settings | None = None) -> datetime:
    """The logical date (UTC) of the daily run for ``session``: its close (early closes included).

    The trading-session timetable (``plugins/trading_calendar.py``) gives session D the
    data interval ``[close(D), close(D) + run_after_close)``, whose start is the logical
    date; ``TradingCalendar.session_for_logical_date`` maps it back to D.
    """
    from quant.calendar import get_calendar

    settings = settings or get_settings()
    return get_calendar(settings.exchange).close_at(session)


def run_after_datetime(session: date, settings: Settings | None = None) -> datetime:
    """When the scheduled run of ``session`` starts: its close plus ``run_after_close``."""
    from datetime import timedelta

    settings = settings or get_settings()
    offset: time = settings.run_after_close
    return logical_datetime(session, settings) + timedelta(hours=offset.hour, minutes=offset.minute)


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
    states = {ti.task_id: str(ti.state) for ti in tis}
    seconds = {ti.task_id: float(ti.duration) for ti in tis if ti.duration is not None}
    return RunResult(dag_id, dr.run_id, session, str(dr.state), states, seconds)


def task_timings(dag_id: str, run_id: str, dag_run: Any = None) -> dict[str, dict[str, Any]]:
    """State and seconds of each finished task of a DAG run, ``{task_id: {"state", "seconds"}}``.

    From ``dag_run``'s task instances when given (a DAG callback's context), else
    asked from the Task SDK when called inside a running Airflow task (its
    execution API: no metadata-database access from the task), else empty.
    """
    if dag_run is not None and hasattr(dag_run, "get_task_instances"):
        return {
            ti.task_id: {"state": str(ti.state), "seconds": ti.duration}
            for ti in dag_run.get_task_instances()
        }
    runner = sys.modules.get("airflow.sdk.execution_time.task_runner")
    if runner is None or not hasattr(runner, "SUPERVISOR_COMMS"):
        return {}  # not inside an Airflow task
    out: dict[str, dict[str, Any]] = {}
    for crumb in runner.RuntimeTaskInstance.get_task_breadcrumbs(dag_id, run_id):
        index = crumb.get("map_index")
        key = crumb["task_id"] + (f"[{index}]" if index is not None and index >= 0 else "")
        out[key] = {"state": str(crumb.get("state")), "seconds": crumb.get("duration")}
    return out


# -- helpers for the DAG files (they import Airflow, lazily) ------------------------------------
DBT_ENV_KEYS = ("DBT_PG_HOST", "DBT_PG_PORT", "DBT_PG_USER", "DBT_PG_PASSWORD", "DBT_PG_DBNAME")
BROKER_CONNECTIONS = {"alpaca": "quant_alpaca", "ibkr": "quant_ibkr"}
"""Airflow connection ids holding broker credentials, when users keep them in Airflow."""


@dataclass(frozen=True, slots=True)
class RunContext:
    """What a task needs to know about the DAG run it belongs to."""

    dag_id: str
    run_id: str
    run_type: str
    session: date
    params: dict[str, Any]


def current_run() -> RunContext:
    """The running task's DAG run (raises AirflowSkipException for a non-session date)."""
    from airflow.sdk import get_current_context
    from airflow.sdk.exceptions import AirflowSkipException

    from quant.calendar import NotASessionError, get_calendar

    context = get_current_context()
    dag_run = context["dag_run"]
    cal = get_calendar(get_settings().exchange)
    try:
        session = cal.session_for_run(context["logical_date"], dag_run.run_after)
    except NotASessionError as exc:
        raise AirflowSkipException(str(exc)) from exc
    run_type = getattr(dag_run.run_type, "value", dag_run.run_type)
    return RunContext(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        run_type=str(run_type),
        session=session,
        params=dict(context.get("params") or {}),
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
    """The Cosmos task group of the dbt project: one task per model, its tests after it.

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
            test_behavior=TestBehavior.AFTER_EACH,
            emit_datasets=False,  # a Unix-socket host makes no valid asset URI
        ),
        execution_config=ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER),
        operator_args={
            "install_deps": False,
            "retries": 0,
            "env": {key: "{{ dbt_env('" + key + "') }}" for key in DBT_ENV_KEYS},
            "vars": {
                key: "{{ dbt_var('" + key + "', logical_date, dag_run) }}"
                for key in ("run_date", "provider_priority")
            },
        },
    )


def dbt_env(key: str) -> str:
    """Template macro: one ``DBT_PG_*`` variable, resolved when the task runs."""
    from quant.transform import dbt_environment

    return dbt_environment()[key]


def dbt_var(key: str, logical_date: datetime | None, dag_run: Any) -> str:
    """Template macro: one dbt variable of the run's session (``run_date``, ...)."""
    from quant.calendar import get_calendar
    from quant.transform import dbt_vars

    settings = get_settings()
    session = get_calendar(settings.exchange).session_for_run(logical_date, dag_run.run_after)
    return dbt_vars(session, settings)[key]


def on_run_failure(context: dict[str, Any]) -> None:
    """DAG failure callback: record the failed run and write its report, saying what failed."""
    from quant.calendar import get_calendar
    from quant.report import write_run_report

    settings = get_settings()
    dag_run = context["dag_run"]
    try:
        session = get_calendar(settings.exchange).session_for_run(
            context.get("logical_date"), dag_run.run_after
        )
    except Exception:  # noqa: BLE001 - a non-session run has no report to write
        return
    failed = [
        ti.task_id for ti in dag_run.get_task_instances(state=["failed", "upstream_failed"])
    ] if hasattr(dag_run, "get_task_instances") else []
    if not failed and context.get("ti") is not None:
        failed = [context["ti"].task_id]  # the task whose failure failed the run
    reason = str(context.get("reason") or context.get("exception") or "a task failed")
    write_run_report(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        session=session,
        stages={"run failed": {"reason": reason, "failed or not run": failed}},
        settings=settings,
        run_type=str(getattr(dag_run.run_type, "value", dag_run.run_type)),
        status="failed",
        task_timings=task_timings(dag_run.dag_id, dag_run.run_id, dag_run),
    )


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
