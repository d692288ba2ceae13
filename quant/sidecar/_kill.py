"""The sidecar's kill switch: the book's trading state, recorded, and what a kill does.

A trip (a person's kill, or a trigger of the monitor) changes the trading
state, records the change, voids the approvals in flight, cancels every open
order at the broker and, for a ``flatten`` kill, sends reduce-only orders
closing every position; each of those broker actions is recorded as an event
of its own. A resume is recorded before it takes effect.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from quant.exceptions import BrokerError, DatabaseError
from quant.risk import (
    KillMode,
    ReasonCode,
    RiskContext,
    StateEvent,
    TradingState,
    TradingStateMachine,
)

if TYPE_CHECKING:
    from quant.config import RiskSettings
    from quant.execution import Broker
    from quant.sidecar._metrics import SidecarMetrics
    from quant.sidecar._store import StateStore

__all__ = ["KillSwitch", "PersistenceError"]

log = logging.getLogger("quant.sidecar")


class PersistenceError(DatabaseError):
    """Raised when a state change that must be recorded first cannot be written."""


class KillSwitch:
    """The trading state of one book, its recorded changes and the broker actions of a kill.

    Parameters
    ----------
    risk : RiskSettings
        ``cancel_attempts`` and ``flatten_attempts`` (``settings.risk``).
    ctx : RiskContext
        The book: its trading state follows the switch's, and a trip voids its
        approvals in flight.
    store : StateStore or None
        Where events are recorded; ``None`` keeps them in memory only.
    metrics : SidecarMetrics
        Trading-state gauge and trip counters.
    broker_factory : callable or None
        Returns the :class:`~quant.execution.Broker` whose orders a kill
        cancels; called lazily, and again after a failure.
    """

    def __init__(
        self,
        risk: RiskSettings,
        ctx: RiskContext,
        *,
        store: StateStore | None,
        metrics: SidecarMetrics,
        broker_factory: Callable[[], Broker] | None,
    ) -> None:
        self.risk = risk
        self.ctx = ctx
        self.machine = TradingStateMachine()
        self.store = store
        self.metrics = metrics
        self._broker_factory = broker_factory
        self._broker: Broker | None = None
        self.fail_closed_reason: str | None = None

    @property
    def has_broker(self) -> bool:
        """Whether a broker is configured."""
        return self._broker_factory is not None

    def fail_closed(self, why: str) -> None:
        """Go HALTED because the recorded state cannot be read (fail closed), and say why."""
        event = self.machine.force(
            TradingState.HALTED,
            kind="fail_closed",
            reason=why,
            reason_code=str(ReasonCode.STATE_UNREADABLE),
            actor="startup",
        )
        self.ctx.state = TradingState.HALTED
        self.fail_closed_reason = why
        log.critical("starting HALTED (fail closed)", extra={"reason": why})
        try:
            assert self.store is not None
            self.store.append(event)
        except DatabaseError as exc:
            log.error("fail-closed event not recorded", extra={"error": str(exc)})

    def record(self, event: StateEvent, *, required: bool) -> int | None:
        """Append ``event`` to the store; its id, or None when there is no store.

        Raises
        ------
        PersistenceError
            ``required`` and the event could not be written.
        """
        if self.store is None:
            return None
        try:
            return self.store.append(event)
        except DatabaseError as exc:
            log.error("kill-switch event not recorded", extra={"error": str(exc)})
            if required:
                raise PersistenceError(f"event not recorded, state unchanged: {exc}") from exc
            return None

    def trip(
        self,
        mode: KillMode,
        *,
        reason: str,
        code: ReasonCode,
        actor: str,
        manual: bool,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Trip the switch: record the change, void in-flight approvals, cancel open orders,
        and close every position when ``mode`` is ``flatten``. Returns what was done."""
        started = time.perf_counter()
        event = self.machine.trip(
            mode, reason=reason, reason_code=code, actor=actor, manual=manual, details=details
        )
        if event is None:
            return {"tripped": False, "trading_state": str(self.machine.state)}
        self.ctx.state = self.machine.state
        self.metrics.set_state(self.machine.state)
        self.metrics.trips.labels(str(code)).inc()
        log.critical(
            "kill switch tripped",
            extra={"reason_code": str(code), "reason": reason, "mode": str(mode), "actor": actor},
        )
        out: dict[str, Any] = {"tripped": True, "trading_state": str(self.machine.state)}
        out["event"] = event.as_dict()
        try:
            out["event_id"] = self.record(event, required=False)
            out["persisted"] = self.store is not None and out["event_id"] is not None
        except PersistenceError:  # pragma: no cover - required=False never raises
            out["persisted"] = False
        # in-flight approvals are void: their orders are being cancelled
        self.ctx.in_flight = {}
        self.ctx.projected = dict(self.ctx.positions)
        self.ctx.revalue()
        out["cancel"] = self._cancel_all(event)
        if mode is KillMode.FLATTEN:
            out["flatten"] = self._flatten(event, out.get("event_id"))
        out["elapsed_ms"] = (time.perf_counter() - started) * 1000.0
        return out

    def resume(self, reason: str, *, actor: str) -> dict[str, Any]:
        """Back to ACTIVE. The event is written first; if it cannot be, nothing changes.

        Raises
        ------
        PersistenceError
            The resume could not be recorded; the state is unchanged.
        """
        old = self.machine.state
        old_last = self.machine.last_event
        event = self.machine.resume(reason=reason, actor=actor)
        try:
            event_id = self.record(event, required=True)
        except PersistenceError:
            self.machine.state = old
            self.machine.last_event = old_last
            raise
        self.ctx.state = TradingState.ACTIVE
        self.fail_closed_reason = None
        self.metrics.set_state(TradingState.ACTIVE)
        log.warning("trading resumed", extra={"actor": actor, "reason": reason})
        return {"event_id": event_id, "event": event.as_dict(), "trading_state": "ACTIVE"}

    def broker(self) -> Broker | None:
        """The broker adapter, opened on first use (None when none is configured)."""
        if self._broker is None and self._broker_factory is not None:
            self._broker = self._broker_factory()
        return self._broker

    def _cancel_all(self, trip: StateEvent) -> dict[str, Any]:
        result: dict[str, Any] = {"cancelled": 0, "attempts": 0, "remaining": None, "errors": []}
        for _ in range(self.risk.cancel_attempts):
            result["attempts"] += 1
            try:
                broker = self.broker()
                if broker is None:
                    result["errors"].append("no broker configured")
                    break
                result["cancelled"] += broker.cancel_all()
                remaining = broker.open_orders()
                result["remaining"] = len(remaining)
                if not remaining:
                    break
            except (BrokerError, DatabaseError, OSError) as exc:
                self._broker = None  # reopen on the next attempt
                result["errors"].append(str(exc))
        self._action_event("cancel", trip, result)
        return result

    def _flatten(self, trip: StateEvent, event_id: int | None) -> dict[str, Any]:
        from quant.execution import Order

        result: dict[str, Any] = {
            "submitted": [],
            "attempts": 0,
            "errors": [],
            "open_positions": None,
        }
        for attempt in range(self.risk.flatten_attempts):
            result["attempts"] += 1
            try:
                broker = self.broker()
                if broker is None:
                    result["errors"].append("no broker configured")
                    break
                positions = [p for p in broker.positions() if p.qty_shares != 0]
                closing = {o.symbol for o in broker.open_orders() if o.reduce_only}
                todo = [p for p in positions if p.symbol not in closing]
                result["open_positions"] = len(positions)
                if not todo:
                    break
                for p in todo:
                    order = Order(
                        client_order_id=f"flatten-{event_id or int(time.time())}-{attempt}-{p.symbol}",
                        symbol=p.symbol,
                        side="sell" if p.qty_shares > 0 else "buy",
                        qty_shares=abs(p.qty_shares),
                        reduce_only=True,
                        strategy="kill_switch",
                    )
                    try:
                        placed = broker.submit(order)
                        result["submitted"].append(placed.client_order_id)
                    except BrokerError as exc:
                        result["errors"].append(f"{p.symbol}: {exc}")
            except (BrokerError, DatabaseError, OSError) as exc:
                self._broker = None
                result["errors"].append(str(exc))
        self._action_event("flatten", trip, result)
        return result

    def _action_event(self, kind: str, trip: StateEvent, result: dict[str, Any]) -> None:
        state = self.machine.state
        event = StateEvent(
            kind=kind,
            from_state=state,
            to_state=state,
            reason_code=trip.reason_code,
            reason=f"{kind} after {trip.kind}: {trip.reason}",
            actor=trip.actor,
            at=datetime.now(UTC),
            mode=trip.mode,
            details=result,
        )
        self.record(event, required=False)
