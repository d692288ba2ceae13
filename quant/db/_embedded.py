"""The embedded PostgreSQL server (from the ``pgserver`` package).

The server keeps its data in ``<QUANT_HOME>/pgdata`` and listens only on a
Unix socket. It outlives the process that started it: ``quant db up`` starts
it, ``quant db down`` stops it, and every other command reuses the running
server (starting it when needed). A server that crashed leaves a stale
``postmaster.pid``; starting again detects that the process is gone and
recovers.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path

from quant.exceptions import DatabaseError

__all__ = ["EmbeddedStatus", "embedded_server_uri", "embedded_status", "start_embedded", "stop_embedded"]

log = logging.getLogger(__name__)


def _quiet_runtime_dir() -> None:
    # pgserver asks platformdirs for a runtime dir; without XDG_RUNTIME_DIR it warns on stderr.
    warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR", module="platformdirs")
    # pgserver logs every server command at INFO, including from an atexit hook.
    logging.getLogger("pgserver").setLevel(logging.WARNING)


@dataclass(frozen=True, slots=True)
class EmbeddedStatus:
    """What ``quant db status`` reports about the embedded server."""

    pgdata: Path
    initialised: bool
    running: bool
    pid: int | None
    socket_dir: Path | None


def start_embedded(pgdata: Path) -> str:
    """Start (or reuse) the embedded server and return its base URI.

    Parameters
    ----------
    pgdata : Path
        Data directory; created and initialised on first use.

    Returns
    -------
    str
        ``postgresql://postgres:@/postgres?host=<socket dir>``.
    """
    _quiet_runtime_dir()
    import pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    try:
        server = pgserver.get_server(pgdata, cleanup_mode=None)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, AssertionError) as exc:
        logfile = pgdata / "log"
        tail = logfile.read_text()[-2000:] if logfile.exists() else "(no server log)"
        raise DatabaseError(
            f"could not start the embedded PostgreSQL in {pgdata}: {exc}\n{tail}"
        ) from exc
    return server.get_uri()


def embedded_server_uri(pgdata: Path, database: str) -> str:
    """URI of ``database`` on the embedded server, starting the server if needed."""
    base = start_embedded(pgdata)
    return base.replace("@/postgres?", f"@/{database}?", 1)


def embedded_status(pgdata: Path) -> EmbeddedStatus:
    """Report on the embedded server without starting it."""
    _quiet_runtime_dir()
    from pgserver.utils import PostmasterInfo

    initialised = (pgdata / "PG_VERSION").exists()
    info = PostmasterInfo.read_from_pgdata(pgdata) if initialised else None
    running = bool(info is not None and info.is_running())
    return EmbeddedStatus(
        pgdata=pgdata,
        initialised=initialised,
        running=running,
        pid=info.pid if running and info is not None else None,
        socket_dir=info.socket_dir if running and info is not None else None,
    )


def stop_embedded(pgdata: Path) -> bool:
    """Stop the embedded server; return whether one was running."""
    status = embedded_status(pgdata)
    if not status.running:
        return False
    from pgserver._commands import pg_ctl

    user = "pgserver" if os.geteuid() == 0 else None
    try:
        pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user)
    except subprocess.CalledProcessError as exc:
        raise DatabaseError(f"could not stop the embedded PostgreSQL in {pgdata}: {exc}") from exc
    return True
