"""``quant up``: start the long-running services and stop them cleanly.

Each component runs as its own process group with the project's Airflow
environment; on Ctrl-C (or SIGTERM) every group is sent SIGTERM, given time
to exit, then killed. A component that dies on its own stops the others, so
a half-running stack is never left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console

from quant.config import Settings
from quant.orchestration import admin_password_file, airflow_environment, ensure_airflow_db

__all__ = ["Component", "components", "serve"]


@dataclass
class Component:
    """One supervised process."""

    name: str
    argv: list[str]
    process: subprocess.Popen | None = field(default=None, repr=False)


def _airflow(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("airflow")
    return [str(exe) if exe.exists() else "airflow", *args]


def components(settings: Settings, port: int, host: str = "127.0.0.1") -> list[Component]:
    """The processes ``quant up`` runs."""
    found = [
        Component("api-server", _airflow("api-server", "--host", host, "--port", str(port))),
        Component("scheduler", _airflow("scheduler")),
        Component("dag-processor", _airflow("dag-processor")),
        Component("triggerer", _airflow("triggerer")),
    ]
    # Without a configured token the sidecar runs in local demo mode: it generates one
    # under QUANT_HOME and says where; a configured token is never replaced.
    argv = [sys.executable, "-m", "quant.cli", "sidecar"]
    if settings.sidecar_token is None:
        argv.append("--demo")
    found.append(Component("sidecar", argv))
    return found


def _stop(procs: list[Component], timeout_s: float = 20.0) -> None:
    for comp in procs:
        if comp.process and comp.process.poll() is None:
            try:
                os.killpg(comp.process.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    deadline = time.monotonic() + timeout_s
    for comp in procs:
        if comp.process is None:
            continue
        remaining = max(0.1, deadline - time.monotonic())
        try:
            comp.process.wait(remaining)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(comp.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            comp.process.wait()


def serve(
    settings: Settings, *, port: int = 8080, host: str = "127.0.0.1", console: Console | None = None
) -> int:
    """Run the services in the foreground until interrupted; return an exit code."""
    from quant.db import migrate

    console = console or Console()
    migrate(settings)  # the pipeline's schemas: the first scheduled run needs them
    ensure_airflow_db(settings)
    env = {**os.environ, **airflow_environment(settings)}
    env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"] = f"http://127.0.0.1:{port}/execution/"
    logs = settings.home / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    procs = components(settings, port, host)
    for comp in procs:
        out = open(logs / f"{comp.name}.log", "ab")
        comp.process = subprocess.Popen(
            comp.argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        out.close()
    password = json.loads(admin_password_file(settings).read_text())["admin"]
    console.print(f"Airflow UI: http://{host}:{port}  (login admin / {password})")
    if any(c.name == "sidecar" for c in procs):
        token_note = (
            "token from QUANT_SIDECAR_TOKEN"
            if settings.sidecar_token is not None
            else f"demo token in {settings.sidecar_token_file}"
        )
        console.print(f"risk sidecar: {settings.sidecar_url} ({token_note})")
    console.print(f"logs: {logs}; Ctrl-C stops everything")

    stopping = False

    def _on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, _on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        while not stopping:
            for comp in procs:
                if comp.process is not None and comp.process.poll() is not None:
                    console.print(
                        f"[red]{comp.name} exited with code {comp.process.returncode}; "
                        f"see {logs / (comp.name + '.log')}[/]"
                    )
                    stopping, code = True, 1
                    break
            time.sleep(0.5)
    finally:
        console.print("stopping ...")
        _stop(procs)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code
