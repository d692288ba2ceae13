"""`quant up` as a real process tree, driven through Airflow's REST API, for tests.

The stack runs in a QUANT_HOME of its own (its own embedded PostgreSQL, Airflow
home, reports and sidecar), so nothing the scheduler's runs write mixes with
other tests' tables. Every component is the one users run: the API server (with
the quant plugins), the scheduler with the LocalExecutor, the DAG processor, the
triggerer and the risk sidecar.

It also watches the DAG while it runs: a background thread asks
``GET /api/v2/dags/{dag_id}`` every few seconds and keeps every answer that
says the DAG is missing or stale (a callback that blocks the DAG processor makes
Airflow deactivate the DAG).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quant.config import Settings, load_settings
from quant.testing.sidecar_process import free_port

__all__ = ["AirflowStack", "HttpAnswer"]


@dataclass(frozen=True, slots=True)
class HttpAnswer:
    """Status, headers and body of one HTTP answer."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    def json(self) -> Any:
        return json.loads(self.body)


class AirflowStack:
    """`quant up` on free ports in ``home``; ``start()`` waits until the DAG is served."""

    def __init__(self, home: Path, *, sidecar_token: str, dag_id: str = "daily_trading") -> None:
        self.home = home
        self.dag_id = dag_id
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.sidecar_url = f"http://127.0.0.1:{free_port()}"
        self.sidecar_token = sidecar_token
        self.env = {
            k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "QUANT_"))
        } | {
            "QUANT_HOME": str(home),
            "QUANT_SIDECAR_URL": self.sidecar_url,
            "QUANT_SIDECAR_TOKEN": sidecar_token,
            # no live price feed here: the sidecar's marks come only from the runs' checks,
            # so during market hours its feed goes stale between runs and would trip the
            # STALE_FEED kill switch; a day's allowance keeps runs at any hour comparable
            "QUANT_RISK__STALE_FEED_S": "86400",
        }
        self.proc: subprocess.Popen[str] | None = None
        self.token = ""
        self.password = ""
        self.dag_problems: list[str] = []
        self._watching = threading.Event()
        self._watcher: threading.Thread | None = None

    # -- life cycle -----------------------------------------------------------------------------
    def quant(self, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
        """Run a ``quant`` command with the stack's environment."""
        return subprocess.run(
            [sys.executable, "-m", "quant.cli", *args], env=self.env, capture_output=True,
            text=True, timeout=timeout_s, check=False,
        )

    def start(self, timeout_s: float = 240) -> None:
        """Start `quant up`, log in, and wait until the DAG is parsed and served."""
        self.home.mkdir(parents=True, exist_ok=True)
        log = open(self.home / "quant-up.out", "a")  # noqa: SIM115 - closed with the process
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "quant.cli", "up", "--port", str(self.port)],
            env=self.env, stdout=log, stderr=subprocess.STDOUT, text=True,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while self._get("/api/v2/monitor/health").status != 200:
            self._alive_until(deadline, "the API server did not answer")
        self.password = json.loads(
            (self.home / "airflow" / "simple_auth_passwords.json").read_text()
        )["admin"]
        self.token = self.login("admin", self.password)
        while self.api("GET", f"/api/v2/dags/{self.dag_id}").status != 200:
            self._alive_until(deadline, f"the DAG {self.dag_id} was not served")
        self._watching.set()
        self._watcher = threading.Thread(target=self._watch, daemon=True)
        self._watcher.start()

    def _alive_until(self, deadline: float, what: str) -> None:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"quant up exited ({self.proc.returncode}): {self.log_tail()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} in time: {self.log_tail()}")
        time.sleep(1)

    def stop(self) -> None:
        """Ctrl-C to `quant up` (it stops every component), then the embedded server."""
        self._watching.clear()
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        from quant.db import stop_embedded

        stop_embedded(self.home / "pgdata")

    def remove(self) -> None:
        shutil.rmtree(self.home, ignore_errors=True)

    def log_tail(self, chars: int = 4000) -> str:
        """The end of each component's log (for assertion messages)."""
        parts = []
        for path in sorted((self.home / "logs").glob("*.log")) + [self.home / "quant-up.out"]:
            if path.exists():
                parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    @property
    def settings(self) -> Settings:
        """Settings on the stack's home (its database, its reports)."""
        return load_settings(home=self.home, sidecar_url=self.sidecar_url,
                             sidecar_token=self.sidecar_token)

    # -- HTTP -----------------------------------------------------------------------------------
    def _get(self, path: str) -> HttpAnswer:
        try:
            return self.request("GET", path)
        except OSError:
            return HttpAnswer(0, b"")

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        form: dict[str, str] | None = None,
        timeout_s: float = 30,
    ) -> HttpAnswer:
        """One HTTP request to the API server; redirects are not followed."""
        data = None
        all_headers = dict(headers or {})
        if form is not None:
            from urllib.parse import urlencode

            data = urlencode(form).encode()
            all_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif body is not None:
            data = json.dumps(body).encode()
            all_headers.setdefault("Content-Type", "application/json")
        request = urllib.request.Request(
            self.base_url + path, data=data, method=method, headers=all_headers
        )
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            with opener.open(request, timeout=timeout_s) as response:
                return HttpAnswer(response.status, response.read(), dict(response.headers))
        except urllib.error.HTTPError as exc:
            return HttpAnswer(exc.code, exc.read(), dict(exc.headers))

    def api(self, method: str, path: str, body: Any = None) -> HttpAnswer:
        """A REST call with the admin's bearer token."""
        return self.request(method, path, body, headers={"Authorization": f"Bearer {self.token}"})

    def login(self, username: str, password: str) -> str:
        """A JWT for the user (``POST /auth/token``), as the UI and API clients get one."""
        answer = self.request("POST", "/auth/token", {"username": username, "password": password})
        if answer.status not in (200, 201):
            raise RuntimeError(f"login failed: {answer.status} {answer.body[:300]!r}")
        return answer.json()["access_token"]

    def _watch(self) -> None:
        while self._watching.is_set():
            try:
                answer = self.api("GET", f"/api/v2/dags/{self.dag_id}")
            except OSError as exc:
                answer = HttpAnswer(0, str(exc).encode())
            if answer.status != 200:
                self.dag_problems.append(f"{time.strftime('%H:%M:%S')} {answer.status}")
            elif answer.json().get("is_stale"):
                self.dag_problems.append(f"{time.strftime('%H:%M:%S')} is_stale")
            self._watching.wait(3)

    # -- DAG runs -------------------------------------------------------------------------------
    def unpause(self) -> None:
        answer = self.api("PATCH", f"/api/v2/dags/{self.dag_id}", {"is_paused": False})
        assert answer.status == 200, answer.body[:500]

    def trigger(self, conf: dict[str, Any] | None = None, logical_date: str | None = None) -> str:
        """Trigger a run (``logical_date`` None: the API's null logical date); its run id."""
        answer = self.api("POST", f"/api/v2/dags/{self.dag_id}/dagRuns",
                          {"logical_date": logical_date, "conf": conf or {}})
        if answer.status != 200:
            raise RuntimeError(f"trigger refused: {answer.status} {answer.body[:500]!r}")
        return answer.json()["dag_run_id"]

    def run(self, run_id: str) -> dict[str, Any]:
        answer = self.api("GET", f"/api/v2/dags/{self.dag_id}/dagRuns/{_quote(run_id)}")
        assert answer.status == 200, answer.body[:500]
        return answer.json()

    def task_states(self, run_id: str) -> dict[str, str]:
        answer = self.api(
            "GET", f"/api/v2/dags/{self.dag_id}/dagRuns/{_quote(run_id)}/taskInstances?limit=200"
        )
        assert answer.status == 200, answer.body[:500]
        return {ti["task_id"]: ti["state"] for ti in answer.json()["task_instances"]}

    def wait_for(self, run_id: str, timeout_s: float = 1500) -> str:
        """Wait until the run is finished; its state."""
        deadline = time.monotonic() + timeout_s
        while True:
            state = self.run(run_id)["state"]
            if state in ("success", "failed"):
                return state
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"run {run_id} still {state} after {timeout_s:.0f} s: "
                    f"{self.task_states(run_id)}\n{self.log_tail()}"
                )
            time.sleep(3)

    def explain(self, run_id: str, chars: int = 3000) -> str:
        """The states of a run's tasks and the log ends of those that failed."""
        states = self.task_states(run_id)
        parts = [json.dumps(states)]
        logs = self.home / "airflow" / "logs" / f"dag_id={self.dag_id}" / f"run_id={run_id}"
        for task_id, state in states.items():
            if state == "failed":
                for path in sorted((logs / f"task_id={task_id}").glob("*.log")):
                    parts.append(f"--- {task_id} {path.name}\n"
                                 f"{path.read_text(errors='replace')[-chars:]}")
        return "\n".join(parts)

    def runs(self, **query: str) -> list[dict[str, Any]]:
        from urllib.parse import urlencode

        answer = self.api("GET", f"/api/v2/dags/{self.dag_id}/dagRuns?"
                          + urlencode({"limit": "100", **query}))
        assert answer.status == 200, answer.body[:500]
        return answer.json()["dag_runs"]


def _quote(run_id: str) -> str:
    from urllib.parse import quote

    return quote(run_id, safe="")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None
