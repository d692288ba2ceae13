"""Where the repository's folders are (``dags/``, ``plugins/``, ``dbt/``, ``bench/``)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["project_root"]


def project_root() -> Path:
    """The repository root (holds dags/, plugins/, dbt/)."""
    return Path(__file__).resolve().parents[1]
