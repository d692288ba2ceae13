"""The risk sidecar as a real process on loopback, for tests and benchmarks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from quant.config import Settings
from quant.exceptions import SidecarError

__all__ = ["SidecarProcess", "free_port", "replaying_sidecar"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SidecarProcess:
    """Start and stop ``python -m quant.sidecar`` with the given settings' home and a token
    (``with SidecarProcess(...) as proc:`` starts it and stops it at the end)."""

    def __init__(
        self,
        settings: Settings,
        port: int,
        token: str,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.url = f"http://127.0.0.1:{port}"
        self.token = token
        self.env = (
            dict(os.environ)
            | {
                "QUANT_HOME": str(settings.home),
                "QUANT_SIDECAR_URL": self.url,
                "QUANT_SIDECAR_TOKEN": token,
            }
            | (extra_env or {})
        )
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        """Start the process and wait until ``/health`` answers."""
        from quant.sidecar import SidecarClient

        self.proc = subprocess.Popen(
            [sys.executable, "-m", "quant.sidecar"],
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        client = SidecarClient(self.url, timeout_s=0.5)
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                out = self.proc.stdout.read().decode() if self.proc.stdout else ""
                raise AssertionError(f"sidecar exited with {self.proc.returncode}: {out}")
            try:
                client.health()
                return
            except SidecarError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def __enter__(self) -> SidecarProcess:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after 10 s."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


def replaying_sidecar(settings: Settings, token: str) -> SidecarProcess:
    """A sidecar (not started) for tests that replay past sessions: its price feed counts
    as fresh for a day (``QUANT_RISK__STALE_FEED_S``), so a past session's prices pass."""
    return SidecarProcess(
        settings, free_port(), token, extra_env={"QUANT_RISK__STALE_FEED_S": "86400"}
    )
