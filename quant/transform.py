"""dbt, run against the project's database.

The profile in ``dbt/profiles.yml`` reads its connection from ``DBT_PG_*``
environment variables, which :func:`dbt_environment` derives from the
project's database settings: no credentials are written to files.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from quant.config import Settings, get_settings
from quant.db import connection_params, database_url
from quant.exceptions import QuantError

__all__ = ["DbtError", "DbtResult", "dbt_environment", "dbt_project_dir", "run_dbt"]


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
    from quant.orchestration import project_root

    return project_root() / "dbt"


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
