"""The Airflow environment of the project: home, metadata database, secrets, the CLI.

Building it imports nothing of Airflow: Airflow reads its configuration at import,
so the environment is applied before anything imports it.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from datetime import date, datetime, time
from pathlib import Path
from typing import Any

from quant.config import Settings, get_settings
from quant.exceptions import PipelineRunError
from quant.paths import project_root

__all__ = [
    "ADMIN_USER",
    "DAG_ID",
    "admin_password_file",
    "airflow_cli",
    "airflow_environment",
    "apply_airflow_environment",
    "ensure_airflow_db",
    "logical_datetime",
    "run_after_datetime",
]


DAG_ID = "daily_trading"
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
