"""Where the reports of a DAG run live under ``QUANT_HOME/reports``.

Layout, per DAG::

    <dag_id>/runs/<run_key>/index.html          the run's report
    <dag_id>/runs/<run_key>/data_quality/       the run's Great Expectations Data Docs
    <dag_id>/<session>/index.html               the session's runs, latest first

A run id becomes a folder name through :func:`run_key`: safe in a file name and
in a URL path segment, and distinct for distinct run ids.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import date
from pathlib import Path

from quant.config import Settings, get_settings

__all__ = [
    "data_docs_path",
    "report_path",
    "run_dir",
    "run_key",
    "session_page_path",
    "write_text_atomic",
]

_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_SAFE_DAG_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_MAX_KEY = 120
_HASH_SEP = "~"
"""Separates a sanitised run id from its hash. ``~`` is itself sanitised away, so a key
that contains it always comes from a run id that was changed, and the hash tells such
run ids apart."""


def run_key(run_id: str) -> str:
    """The folder name of ``run_id``: the run id itself when it is safe, else a safe form plus a hash.

    Safe means letters, digits, ``_``, ``.`` and ``-``, not starting with a dot, at
    most 120 characters. Anything else (``manual__2026-12-03T21:00:00+00:00`` has
    ``:`` and ``+``) is replaced by ``_`` and ``~`` plus 12 hex digits of the run
    id's SHA-256 are appended, so two run ids never share a key.
    """
    if not run_id:
        raise ValueError("run_id is empty")
    safe = _UNSAFE.sub("_", run_id)
    if safe.startswith("."):
        safe = "_" + safe[1:]
    if safe == run_id and len(safe) <= _MAX_KEY:
        return run_id
    digest = hashlib.sha256(run_id.encode()).hexdigest()[:12]
    return f"{safe[:_MAX_KEY]}{_HASH_SEP}{digest}"


def _dag_dir(dag_id: str, settings: Settings) -> Path:
    if not _SAFE_DAG_ID.fullmatch(dag_id):
        raise ValueError(f"dag_id {dag_id!r} is not a safe folder name")
    return settings.reports_dir / dag_id


def run_dir(dag_id: str, run_id: str, settings: Settings | None = None) -> Path:
    """The folder of ``dag_id``'s run ``run_id`` (its report and Data Docs)."""
    if isinstance(run_id, date):
        raise TypeError(
            "reports are stored per run: pass the run id (session_page_path takes a session)"
        )
    settings = settings or get_settings()
    return _dag_dir(dag_id, settings) / "runs" / run_key(run_id)


def report_path(dag_id: str, run_id: str, settings: Settings | None = None) -> Path:
    """Where the report of ``dag_id``'s run ``run_id`` is written."""
    return run_dir(dag_id, run_id, settings) / "index.html"


def data_docs_path(dag_id: str, run_id: str, settings: Settings | None = None) -> Path:
    """The folder of the Great Expectations Data Docs of ``dag_id``'s run ``run_id``."""
    return run_dir(dag_id, run_id, settings) / "data_quality"


def session_page_path(dag_id: str, session: date, settings: Settings | None = None) -> Path:
    """Where the page listing ``dag_id``'s runs of ``session`` is written."""
    settings = settings or get_settings()
    return _dag_dir(dag_id, settings) / session.isoformat() / "index.html"


def write_text_atomic(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` at once: a reader never sees half a page, and two
    writers of the same page each write whole pages (the last one stays)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
