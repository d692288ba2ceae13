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

__all__ = ["SidecarProcess", "free_port"]


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class SidecarProcess:
    """Start and stop ``python -m quant.sidecar`` with the given settings' home and a token."""

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
