"""Latency benchmark of the sidecar (``quant bench sidecar --json``, ``bench/sidecar.py``).

Measures, on this machine:

- ``in_process``: one order through every rule (``RiskEngine.check``), microseconds;
- ``http_1`` / ``http_500``: ``POST /v1/check`` with 1 and 500 orders against a
  real uvicorn sidecar process on loopback (keep-alive connection, request
  bodies encoded before timing), milliseconds;
- ``kill_to_cancelled_ms``: from sending ``POST /v1/kill`` until the simulator
  broker shows no open order (200 resting orders), milliseconds (median of 5).

Everything runs in a throwaway QUANT_HOME with its own embedded PostgreSQL,
so the benchmark never touches the real sidecar's state.
"""

from __future__ import annotations

import http.client
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from typing import Any

import msgspec

from quant.risk import RiskContext, RiskEngine, RiskLimits, RiskOrder

__all__ = ["run_benchmark"]

_SECTORS = [f"S{i:02d}" for i in range(11)]
_TOKEN = "bench-token"


def _universe(n: int = 500) -> tuple[dict[str, str], dict[str, float]]:
    symbols = [f"SYM{i:03d}" for i in range(n)]
    universe = {s: _SECTORS[i % len(_SECTORS)] for i, s in enumerate(symbols)}
    marks = {s: 20.0 + (i % 97) * 3.0 for i, s in enumerate(symbols)}
    return universe, marks


def _pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench_in_process(n: int = 20_000, warmup: int = 2_000) -> dict[str, float]:
    """p50/p99 of one order through all rules, microseconds."""
    universe, marks = _universe()
    now = time.time()
    limits = RiskLimits(max_orders_per_second=0, max_orders_per_day=0)
    ctx = RiskContext(limits)
    held = list(universe)[:100]
    ctx.load_book(
        cash_usd=5_000_000.0,
        positions={s: 100.0 for s in held},
        marks=marks,
        now=now,
        universe=universe,
        session="2000-01-03",
    )
    engine = RiskEngine(ctx)
    symbols = list(universe)
    orders = [
        RiskOrder(
            f"b-{i}",
            symbols[i % len(symbols)],
            "buy" if i % 2 == 0 else "sell",
            1.0,
            marks[symbols[i % len(symbols)]],
        )
        for i in range(n + warmup)
    ]
    check = engine.check
    clock = time.perf_counter_ns
    samples: list[float] = []
    for i, o in enumerate(orders):
        t0 = clock()
        check(o, now)
        t1 = clock()
        if i >= warmup:
            samples.append((t1 - t0) / 1_000.0)
    return {"p50_us": round(_pct(samples, 0.5), 2), "p99_us": round(_pct(samples, 0.99), 2)}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(conn: http.client.HTTPConnection, path: str, body: bytes, token: bool = False) -> bytes:
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {_TOKEN}"
    conn.request("POST", path, body=body, headers=headers)
    response = conn.getresponse()
    data = response.read()
    if response.status != 200:
        raise RuntimeError(f"POST {path}: HTTP {response.status}: {data[:300]!r}")
    return data


def _check_bodies(
    symbols: list[str], marks: dict[str, float], batches: int, size: int, prefix: str
) -> list[bytes]:
    bodies = []
    k = 0
    for b in range(batches):
        orders = []
        for _ in range(size):
            s = symbols[k % len(symbols)]
            orders.append(
                {
                    "client_order_id": f"{prefix}-{b}-{k}",
                    "symbol": s,
                    "side": "buy" if k % 2 == 0 else "sell",
                    "qty": 1,
                    "price": marks[s],
                }
            )
            k += 1
        bodies.append(msgspec.json.encode({"orders": orders}))
    return bodies


def _time_requests(
    conn: http.client.HTTPConnection, bodies: list[bytes], warmup: int
) -> dict[str, float]:
    samples = []
    for i, body in enumerate(bodies):
        t0 = time.perf_counter()
        _post(conn, "/v1/check", body)
        t1 = time.perf_counter()
        if i >= warmup:
            samples.append((t1 - t0) * 1_000.0)
    return {"p50_ms": round(_pct(samples, 0.5), 3), "p99_ms": round(_pct(samples, 0.99), 3)}


def bench_http(n_single: int = 3_000, n_batch: int = 300) -> dict[str, Any]:
    """Start a sidecar process in a throwaway home and time checks and kills."""
    from quant.config import load_settings
    from quant.db import connect, migrate, scratch_home
    from quant.execution import Order, SimBroker

    port = _free_port()
    extra = {
        "QUANT_SIDECAR_URL": f"http://127.0.0.1:{port}",
        "QUANT_SIDECAR_TOKEN": _TOKEN,
        "QUANT_RISK__MAX_ORDERS_PER_SECOND": "0",
        "QUANT_RISK__MAX_ORDERS_PER_DAY": "0",
        "QUANT_RISK__REJECTION_BURST": "0",
        "QUANT_RISK__KILL_ON_BREACH": "off",
    }
    with scratch_home("quant-bench-", **extra):
        env = dict(os.environ)
        proc = None
        try:
            settings = load_settings()
            migrate(settings)
            proc = subprocess.Popen(
                [sys.executable, "-m", "quant.sidecar"],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            deadline = time.monotonic() + 60
            while True:
                try:
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    conn.request("GET", "/health")
                    health = conn.getresponse()
                    health.read()
                    if health.status == 200:
                        break
                except OSError:
                    pass
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the benchmark sidecar did not start")
                time.sleep(0.1)
            universe, marks = _universe()
            symbols = list(universe)
            _post(
                conn,
                "/v1/book",
                msgspec.json.encode(
                    {
                        "cash_usd": 5_000_000.0,
                        "positions": {s: 100 for s in symbols[:100]},
                        "marks": marks,
                        "universe": universe,
                    }
                ),
                token=True,
            )
            warm = 300
            http_1 = _time_requests(
                conn, _check_bodies(symbols, marks, n_single + warm, 1, "h1"), warm
            )
            warm = 30
            http_500 = _time_requests(
                conn, _check_bodies(symbols, marks, n_batch + warm, 500, "h500"), warm
            )

            broker = SimBroker(connect(settings))
            kill_ms = []
            for round_ in range(5):
                for i in range(200):
                    broker.submit(
                        Order(
                            client_order_id=f"k{round_}-{i}",
                            symbol=symbols[i],
                            side="buy",
                            qty_shares=1,
                        )
                    )
                t0 = time.perf_counter()
                _post(conn, "/v1/kill", b'{"reason": "benchmark", "mode": "halt"}', token=True)
                while broker.open_orders():
                    time.sleep(0.001)
                kill_ms.append((time.perf_counter() - t0) * 1_000.0)
                _post(conn, "/v1/resume", b'{"reason": "benchmark"}', token=True)
            broker.close()
            conn.close()
            return {
                "http_1": http_1,
                "http_500": http_500,
                "kill_to_cancelled_ms": round(statistics.median(kill_ms), 2),
            }
        finally:
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def run_benchmark() -> dict[str, Any]:
    """All figures as one JSON-ready object."""
    out: dict[str, Any] = {"in_process": bench_in_process()}
    out.update(bench_http())
    return {
        "in_process": out["in_process"],
        "http_1": out["http_1"],
        "http_500": out["http_500"],
        "kill_to_cancelled_ms": out["kill_to_cancelled_ms"],
    }
