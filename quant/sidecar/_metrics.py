"""Prometheus metrics of one sidecar (own registry, so several can live in one process)."""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from quant.risk import ReasonCode, TradingState

__all__ = ["CONTENT_TYPE_LATEST", "SidecarMetrics"]

disable_created_metrics()  # no *_created series: they double the exposition for no use here

_LATENCY_BUCKETS = (
    0.000_05,
    0.000_1,
    0.000_25,
    0.000_5,
    0.001,
    0.002_5,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
)


class SidecarMetrics:
    """Counters of checks and denials, check latency, trading state, kill-switch trips."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.checks = Counter("quant_sidecar_checks", "Orders checked", ["result"], registry=r)
        self.approved = self.checks.labels("approved")
        self.denied = self.checks.labels("denied")
        self.denials = Counter(
            "quant_sidecar_denials", "Denials by reason code", ["reason", "enforced"], registry=r
        )
        self._denial_children = {
            (code.value, enforced): self.denials.labels(code.value, enforced)
            for code in ReasonCode
            for enforced in ("true", "false")
        }
        self.latency = Histogram(
            "quant_sidecar_check_latency_seconds",
            "Time to answer one POST /v1/check (decode, rules, encode)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.batch_size = Histogram(
            "quant_sidecar_check_batch_orders",
            "Orders per POST /v1/check",
            buckets=(1, 10, 50, 100, 500, 1000, 5000),
            registry=r,
        )
        self.state = Gauge(
            "quant_sidecar_trading_state",
            "1 for the current trading state, 0 for the others",
            ["state"],
            registry=r,
        )
        self.trips = Counter(
            "quant_sidecar_kill_switch_trips", "Kill-switch trips", ["reason_code"], registry=r
        )
        self.marks = Counter("quant_sidecar_mark_batches", "Batches of marks applied", registry=r)
        self.equity = Gauge("quant_sidecar_equity_usd", "Current equity, USD", registry=r)
        self.day_pnl = Gauge("quant_sidecar_day_pnl_usd", "Day P&L, USD", registry=r)
        self.drawdown = Gauge("quant_sidecar_drawdown", "Drawdown from peak, fraction", registry=r)
        self.set_state(TradingState.ACTIVE)

    def count_denial(self, code: str, enforced: bool) -> None:
        self._denial_children[(code, "true" if enforced else "false")].inc()

    def set_state(self, state: TradingState) -> None:
        for s in TradingState:
            self.state.labels(s.value).set(1.0 if s is state else 0.0)

    def render(self) -> bytes:
        return generate_latest(self.registry)
