"""dbt, run against the project's database.

The profile in ``dbt/profiles.yml`` reads its connection from ``DBT_PG_*``
environment variables, which :func:`dbt_environment` derives from the
project's database settings: no credentials are written to files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from quant.config import Settings, get_settings
from quant.db import connection_params, database_url
from quant.exceptions import QuantError
from quant.paths import project_root

__all__ = [
    "DbtError",
    "DbtResult",
    "dbt_environment",
    "dbt_project_dir",
    "dbt_vars",
    "ensure_manifest",
    "manifest_path",
    "manifest_is_stale",
    "mart_summary",
    "run_dbt",
]

MANIFEST_COMMAND = "make manifest (or: python -m quant.transform)"
"""What builds the manifest the DAG renders its dbt tasks from."""


class DbtError(QuantError):
    """Raised when a dbt command fails; the message lists the failed nodes."""


@dataclass(frozen=True, slots=True)
class DbtResult:
    """Outcome of one dbt command."""

    command: tuple[str, ...]
    nodes: dict[str, str]  # unique_id -> status

    @property
    def models_built(self) -> int:
        return sum(1 for k, v in self.nodes.items() if k.startswith("model.") and v == "success")

    @property
    def tests_passed(self) -> int:
        return sum(1 for k, v in self.nodes.items() if k.startswith("test.") and v == "pass")


def dbt_project_dir() -> Path:
    return project_root() / "dbt"


def manifest_path() -> Path:
    """The manifest ``dbt parse`` writes and the DAG renders one task per model from."""
    return dbt_project_dir() / "target" / "manifest.json"


def _dbt_sources(project: Path) -> list[Path]:
    files = [project / "dbt_project.yml", project / "profiles.yml"]
    for folder in ("models", "macros", "tests"):
        files += [p for p in (project / folder).rglob("*") if p.is_file()]
    return [p for p in files if p.exists()]


def manifest_is_stale() -> bool:
    """True when the manifest is missing or older than a file of the dbt project."""
    path = manifest_path()
    if not path.exists():
        return True
    built = path.stat().st_mtime
    return any(p.stat().st_mtime > built for p in _dbt_sources(dbt_project_dir()))


def ensure_manifest(*, force: bool = False) -> Path:
    """(Re)build ``dbt/target/manifest.json`` with ``dbt parse`` when missing or stale.

    ``dbt parse`` reads no database: the profile's connection variables get
    placeholders when they are not set. Runs dbt in a subprocess so the calling
    process keeps its environment.

    Raises
    ------
    DbtError
        ``dbt parse`` failed; the message holds its output.
    """
    import subprocess
    import sys

    path = manifest_path()
    if not force and not manifest_is_stale():
        return path
    project = dbt_project_dir()
    env = {
        **os.environ,
        "DBT_PROFILES_DIR": str(project),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DBT_LOG_PATH": str(project / "logs"),
    }
    for key, placeholder in (
        ("DBT_PG_HOST", "localhost"),
        ("DBT_PG_USER", "postgres"),
        ("DBT_PG_DBNAME", "quant"),
    ):
        env.setdefault(key, placeholder)
    exe = Path(sys.executable).with_name("dbt")
    cmd = [
        str(exe) if exe.exists() else "dbt",
        "parse",
        "--project-dir",
        str(project),
        "--target-path",
        str(path.parent),
        "--no-partial-parse",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=project)
    if proc.returncode != 0 or not path.exists():
        raise DbtError(f"dbt parse failed:\n{proc.stdout[-4000:]}{proc.stderr[-2000:]}")
    path.touch()
    return path


def dbt_vars(session: date | str, settings: Settings | None = None) -> dict[str, str]:
    """dbt variables of a build as of ``session``: its date and the provider priority.

    The priority is the configured provider chain (``QUANT_PROVIDER``), best first.
    """
    settings = settings or get_settings()
    day = session if isinstance(session, str) else session.isoformat()
    return {"run_date": day, "provider_priority": settings.provider}


def dbt_environment(settings: Settings | None = None) -> dict[str, str]:
    """Environment variables the dbt profile and dbt itself need."""
    settings = settings or get_settings()
    params = connection_params(database_url(settings))
    return {
        "DBT_PG_HOST": str(params["host"]),
        "DBT_PG_PORT": str(params["port"]),
        "DBT_PG_USER": str(params["user"]),
        "DBT_PG_PASSWORD": str(params["password"]),
        "DBT_PG_DBNAME": str(params["dbname"]),
        "DBT_PROFILES_DIR": str(dbt_project_dir()),
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "False",
        "DBT_TARGET_PATH": str(settings.home / "dbt" / "target"),
        "DBT_LOG_PATH": str(settings.home / "dbt" / "logs"),
    }


def run_dbt(
    args: Sequence[str],
    *,
    settings: Settings | None = None,
    vars: dict[str, object] | None = None,
) -> DbtResult:
    """Run a dbt command (``["build", "--select", "staging"]``) in-process.

    Raises
    ------
    DbtError
        The command failed; the message names each failed node.
    """
    import json

    from dbt.cli.main import dbtRunner

    settings = settings or get_settings()
    os.environ.update(dbt_environment(settings))
    cli_args = [*args, "--project-dir", str(dbt_project_dir())]
    if vars:
        cli_args += ["--vars", json.dumps(vars, default=str)]
    result = dbtRunner().invoke(cli_args)
    nodes: dict[str, str] = {}
    failed: list[str] = []
    if result.result is not None and hasattr(result.result, "results"):
        for node_result in result.result.results:
            status = str(node_result.status)
            nodes[node_result.node.unique_id] = status
            if status in {"error", "fail", "runtime error"}:
                failed.append(f"{node_result.node.unique_id}: {node_result.message}")
    if not result.success:
        detail = "; ".join(failed) or str(result.exception or "unknown error")
        raise DbtError(f"dbt {' '.join(args)} failed: {detail}")
    return DbtResult(tuple(args), nodes)


def mart_summary(session: date, settings: Settings | None = None) -> dict[str, int]:
    """Rows of the session in the marts (for the run report): features, tradable names, labels."""
    from quant.db import connect

    conn = connect(settings or get_settings())
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                """
                select
                    (select count(*) from marts.features where session_date = %(d)s),
                    (select count(*) from marts.universe where session_date = %(d)s and is_tradable),
                    (select count(*) from marts.labels where session_date = %(d)s)
                """,
                {"d": session},
            )
            features, tradable, labels = cur.fetchone()
    finally:
        conn.close()
    return {"feature rows": features, "tradable names": tradable, "label rows": labels}


if __name__ == "__main__":  # python -m quant.transform: (re)build the manifest
    print(ensure_manifest(force=True))
