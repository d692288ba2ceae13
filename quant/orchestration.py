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
from dataclasses import dataclass
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

    @property
    def succeeded(self) -> bool:
        return self.state == "success"


def run_dag(
    session: date,
    *,
    dag_id: str = DAG_ID,
    conf: dict[str, Any] | None = None,
    settings: Settings | None = None,
) -> RunResult:
    """Run one DAG run for ``session`` in this process (``dag.test``) and report its states.

    The project's Airflow environment is applied to ``os.environ`` first, so
    call this before anything in the process has imported Airflow.
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
    dr = dag.test(logical_date=logical, run_after=datetime.now(timezone.utc), run_conf=conf or {})
    states = {ti.task_id: str(ti.state) for ti in dr.get_task_instances()}
    return RunResult(dag_id, dr.run_id, session, str(dr.state), states)
