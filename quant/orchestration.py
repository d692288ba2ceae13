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
import re
import secrets
import subprocess
import sys
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timezone
from pathlib import Path
from typing import Any

from quant.config import Settings, get_settings
from quant.exceptions import PipelineRunError
from quant.paths import project_root

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
FAILED_STAGE = "run failed"
BACKFILL_MAX_ACTIVE_RUNS = 1
"""Runs of a backfill at once when its creator does not say (the REST API would take 10)."""
"""Key of the stage summary of a failed run's report (``reason``, ``failed or not run``, ``errors``)."""
ADMIN_USER = "admin"


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
    """The running task's DAG run.

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
    return RunContext(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        run_type=str(run_type),
        session=session,
        params=dict(context.get("params") or {}),
    )


def unknown_conf_keys(conf: Mapping[str, Any] | None, params: Iterable[str]) -> str | None:
    """The one-line refusal of a run conf with keys outside ``params``, or None when it has none.

    A DAG without params takes any conf (nothing to check it against).
    """
    known = sorted(params)
    unknown = sorted(set(conf or {}) - set(known))
    if not known or not unknown:
        return None
    return (
        f"unknown conf key(s) {', '.join(map(repr, unknown))}: "
        f"this DAG's params are {', '.join(known)}"
    )


class TriggerConfGuard:
    """ASGI middleware for the API server: checks the conf of triggers and backfills.

    Airflow validates each declared param's value at trigger time but keeps keys it
    does not know, so ``{"optimiser": "hrp"}`` would start a run that silently uses
    the default optimizer. This guard reads ``POST /api/v2/dags/{dag_id}/dagRuns``
    (the REST API and the UI's trigger form) and ``POST /api/v2/backfills``
    (``dag_run_conf``) and answers 400 naming the unknown keys and the known ones.
    The DAG's params come from its serialized version in the metadata database.
    A backfill created without ``max_active_runs`` gets
    :data:`BACKFILL_MAX_ACTIVE_RUNS` instead of the API's default of 10. Registered by the ``quant_risk`` plugin as a root middleware.
    """

    _TRIGGER = re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?$")
    _BACKFILL = re.compile(r"^/api/v2/backfills/?$")

    def __init__(self, app: Any, params_of: Any = None) -> None:
        self.app = app
        self.params_of = params_of or _serialized_dag_params

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        trigger, backfill = self._TRIGGER.match(path), self._BACKFILL.match(path)
        if trigger is None and backfill is None:
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        refusal, body = await self._check(body, trigger.group("dag_id") if trigger else None)
        if refusal is not None:
            payload = json.dumps({"detail": refusal}).encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _check(self, body: bytes, dag_id: str | None) -> tuple[str | None, bytes]:
        """The refusal (or None) and the body to pass on."""
        import anyio

        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return None, body  # the API answers malformed JSON itself
        if not isinstance(payload, dict):
            return None, body
        if dag_id is None and "max_active_runs" not in payload:
            # Airflow applies a backfill's own max_active_runs, not the DAG's, and the REST
            # API defaults it to 10: runs of one pipeline sharing its marts and its
            # simulator account must not run side by side unless the caller says so.
            payload["max_active_runs"] = BACKFILL_MAX_ACTIVE_RUNS
            body = json.dumps(payload).encode()
        conf = payload.get("conf") if dag_id else payload.get("dag_run_conf")
        dag_id = dag_id or payload.get("dag_id")
        if not isinstance(conf, dict) or not conf or not isinstance(dag_id, str):
            return None, body
        params = await anyio.to_thread.run_sync(self.params_of, dag_id)
        if params is None:
            return None, body  # unknown DAG: the API says so
        return unknown_conf_keys(conf, params), body


def _serialized_dag_params(dag_id: str) -> list[str] | None:
    """Param names of ``dag_id``'s latest serialized version (None when it has none)."""
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        found = SerializedDagModel.get_dag(dag_id, session=session)
    return None if found is None else list(found.params)


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
