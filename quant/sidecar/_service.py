"""The sidecar's core: rules engine, trading state, kill switch, intraday monitor.

The kill switch itself (state changes, their records, the broker actions of a
kill) is :class:`~quant.sidecar._kill.KillSwitch`; the service trips it.

:class:`RiskService` is transport-free: the HTTP app (``_app.py``), the tests
and the benchmark call it directly. It is single-threaded by design (the
HTTP server runs it on one event loop), so no locks: a kill, a check and a
batch of marks never interleave.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from quant.exceptions import BrokerError, DatabaseError
from quant.risk import (
    CheckResult,
    KillMode,
    Override,
    ReasonCode,
    RejectionBurstDetector,
    RiskContext,
    RiskEngine,
    RiskLimits,
    RiskOrder,
    StateEvent,
    TradingState,
    TradingStateMachine,
    feed_is_stale,
    find_breaches,
)
from quant.sidecar._kill import KillSwitch, PersistenceError
from quant.sidecar._metrics import SidecarMetrics
from quant.sidecar._store import StateStore

if TYPE_CHECKING:
    from quant.config import RiskSettings
    from quant.execution import Broker

__all__ = ["RiskService", "PersistenceError"]

log = logging.getLogger("quant.sidecar")


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _utc_session(now: float) -> str:
    return _utc(now).date().isoformat()


class RiskService:
    """Pre-trade checks, trading state and kill switch over one book.

    Parameters
    ----------
    risk : RiskSettings
        Limits and kill-switch triggers (``settings.risk``).
    store : StateStore or None
        Persistence; ``None`` keeps everything in memory (tests of pure logic).
    broker_factory : callable or None
        Returns the :class:`~quant.execution.Broker` whose orders a kill
        cancels; called lazily, and again after a failure.
    market_open : callable, optional
        ``market_open(now_s) -> bool``; the stale-feed trigger only fires while
        it is True. Default: never (no stale-feed trips).
    session_of : callable, optional
        ``session_of(now_s) -> "YYYY-MM-DD"``, the trading session a time
        belongs to. Default: the UTC date.
    metrics : SidecarMetrics, optional
    """

    def __init__(
        self,
        risk: RiskSettings,
        *,
        store: StateStore | None = None,
        broker_factory: Callable[[], Broker] | None = None,
        market_open: Callable[[float], bool] | None = None,
        session_of: Callable[[float], str] | None = None,
        metrics: SidecarMetrics | None = None,
    ) -> None:
        self.risk = risk
        self.limits = RiskLimits.from_mapping(risk.model_dump())
        self.ctx = RiskContext(self.limits)
        self.engine = RiskEngine(self.ctx)
        self.store = store
        self.market_open = market_open or (lambda now: False)
        self.session_of = session_of or _utc_session
        self.metrics = metrics or SidecarMetrics()
        self.switch = KillSwitch(
            risk, self.ctx, store=store, metrics=self.metrics, broker_factory=broker_factory
        )
        self.burst = RejectionBurstDetector(risk.rejection_burst, risk.rejection_window_s)
        self.last_marks_at: float | None = None
        self.started_at = time.time()
        self._saved_peak = 0.0
        self._sod_by_session: dict[str, float] = {}

    # -- start ----------------------------------------------------------------------------
    def start(self, *, sync_broker: bool = True) -> None:
        """Restore the persisted state (or start HALTED when it cannot be read), then
        load the book from the broker."""
        if self.store is not None:
            try:
                restored = self.store.load()
            except DatabaseError as exc:
                self.switch.fail_closed(f"cannot read the kill-switch state at start: {exc}")
            else:
                self._restore(restored)
        if sync_broker and self.switch.has_broker:
            try:
                self.sync_from_broker(actor="startup")
            except (BrokerError, DatabaseError) as exc:
                log.error("book not loaded from the broker at start", extra={"error": str(exc)})
        self.metrics.set_state(self.machine.state)

    def _restore(self, restored: Any) -> None:
        state = restored.state
        last = restored.last_event
        event = self.machine.force(
            state,
            kind="restore",
            reason=(
                "no earlier state: starting ACTIVE"
                if last is None
                else f"restored from event {last['event_id']} ({last['kind']}: {last['reason']})"
            ),
            reason_code=str(ReasonCode.STATE_RESTORED),
            actor="startup",
            details={"last_event": last},
        )
        self.ctx.state = state
        if last is not None and state is not TradingState.ACTIVE:
            self.machine.since = datetime.fromisoformat(last["at"])  # not the restart time
        for scope, key, override in restored.overrides:
            self.ctx.set_override(scope, key, override)
        if restored.universe:
            self.ctx.universe.update(restored.universe)
        if restored.peak_equity_usd is not None:
            self.ctx.peak_equity_usd = restored.peak_equity_usd
            self._saved_peak = restored.peak_equity_usd
        self._sod_by_session = restored.sod_equity_by_session
        assert self.store is not None
        try:
            self.store.append(event)
        except DatabaseError as exc:
            log.error("restore event not recorded", extra={"error": str(exc)})
        log.info("state restored", extra={"trading_state": str(state)})

    # -- checks (hot path) ------------------------------------------------------------------
    def check(self, orders: Sequence[RiskOrder], now: float | None = None) -> list[CheckResult]:
        """Check a batch; approved orders are booked in flight. A burst of denials
        trips the switch (after the batch is answered)."""
        results = self.engine.check_batch(orders, now)
        m = self.metrics
        denied = 0
        for r in results:
            if not r.approved:
                denied += 1
                for d in r.denials:
                    m.count_denial(d.code, True)
            if r.shadow:
                for d in r.shadow:
                    m.count_denial(d.code, False)
                    log.info(
                        "shadow denial",
                        extra={"client_order_id": r.client_order_id, "denial": d.as_dict()},
                    )
        if len(results) > denied:
            m.approved.inc(len(results) - denied)
        if denied:
            m.denied.inc(denied)
        if denied:
            burst = self.burst.record(denied, self.ctx.now)
            if burst is not None:
                self.switch.trip(
                    KillMode.HALT,
                    reason=f"{burst} denials within {self.risk.rejection_window_s:g} s",
                    code=ReasonCode.REJECTION_BURST,
                    actor="monitor",
                    manual=False,
                    details={"denials": burst, "window_s": self.risk.rejection_window_s},
                )
        return results

    # -- kill switch ----------------------------------------------------------------------
    def kill(
        self, reason: str, mode: KillMode | str = KillMode.HALT, *, actor: str
    ) -> dict[str, Any]:
        """A person's kill: state change recorded, open orders cancelled, positions
        flattened when ``mode`` is ``flatten``. Returns what was done."""
        return self.switch.trip(
            KillMode(mode), reason=reason, code=ReasonCode.MANUAL, actor=actor, manual=True
        )

    def resume(self, reason: str, *, actor: str) -> dict[str, Any]:
        """Back to ACTIVE. The event is written first; if it cannot be, nothing changes.

        Raises
        ------
        PersistenceError
            The resume could not be recorded; the state is unchanged.
        """
        out = self.switch.resume(reason, actor=actor)
        self.last_marks_at = None  # the stale-feed trigger re-arms on the next batch
        return out

    def broker(self) -> Broker | None:
        """The broker adapter, opened on first use (None when none is configured)."""
        return self.switch.broker()

    # -- overrides ------------------------------------------------------------------------
    def set_override(
        self, scope: str, key: str, override: Override | None, *, actor: str
    ) -> dict[str, Any]:
        """Set or clear a per-symbol / per-strategy override; recorded first.

        Raises
        ------
        PersistenceError
            It could not be recorded; nothing changed.
        ValueError
            Unknown scope.
        """
        if scope not in ("symbol", "strategy"):
            raise ValueError(f"scope must be 'symbol' or 'strategy', got {scope!r}")
        key = key.upper() if scope == "symbol" else key
        state = self.machine.state
        event = StateEvent(
            kind="override",
            from_state=state,
            to_state=state,
            reason_code=str(ReasonCode.OVERRIDE),
            reason=(override.reason if override is not None else "cleared") or "override",
            actor=actor,
            at=datetime.now(UTC),
            details={
                "scope": scope,
                "key": key,
                "override": None if override is None else override.as_dict(),
            },
        )
        event_id = None
        if self.store is not None:
            try:
                event_id = self.store.save_override(scope, key, override, set_by=actor, event=event)
            except DatabaseError as exc:
                raise PersistenceError(f"override not recorded, nothing changed: {exc}") from exc
        self.ctx.set_override(scope, key, override)
        log.warning("override set", extra=event.details | {"actor": actor})
        current = (
            self.ctx.symbol_overrides if scope == "symbol" else self.ctx.strategy_overrides
        ).get(key)
        return {
            "event_id": event_id,
            "scope": scope,
            "key": key,
            "override": None if current is None else current.as_dict(),
        }

    # -- book and marks -------------------------------------------------------------------
    def load_book(
        self,
        *,
        cash_usd: float,
        positions: Mapping[str, float],
        marks: Mapping[str, float],
        universe: Mapping[str, str | None] | None = None,
        session: str | None = None,
        clear_in_flight: bool = True,
        now: float | None = None,
    ) -> dict[str, Any]:
        """Replace the book with a snapshot (see :meth:`RiskContext.load_book`)."""
        now = time.time() if now is None else now
        session = session or self.session_of(now)
        self.ctx.load_book(
            cash_usd=cash_usd,
            positions=positions,
            marks=marks,
            now=now,
            universe=universe,
            session=session,
            clear_in_flight=clear_in_flight,
        )
        sod = self._sod_by_session.get(session)
        if sod is not None and self.ctx.sod_equity_usd != sod:
            # a restart mid-session keeps the morning's start-of-day equity
            self.ctx.sod_equity_usd = sod
            self.ctx.daily_loss_limit_usd = self.limits.daily_loss_limit_for(sod)
            self.ctx.revalue()
        self._sod_by_session = {session: self.ctx.sod_equity_usd}
        if marks:
            self.last_marks_at = now
        self._save_day(force=True)
        self._update_gauges()
        return self.book_summary()

    def sync_from_broker(self, *, actor: str = "http") -> dict[str, Any]:
        """Load positions and cash from the broker. Prices the broker holds value the
        book but are not fresh marks: push marks before checking orders."""
        broker = self.broker()
        if broker is None:
            raise BrokerError("no broker configured")
        account = broker.account()
        positions = broker.positions()
        for p in positions:
            if p.market_price_usd > 0:
                self.ctx.ref_prices[p.symbol] = p.market_price_usd
        summary = self.load_book(
            cash_usd=account.cash_usd,
            positions={p.symbol: p.qty_shares for p in positions},
            marks={},
        )
        log.info("book loaded from the broker", extra={"actor": actor, "positions": len(positions)})
        return summary

    def apply_marks(self, prices: Mapping[str, float], now: float | None = None) -> dict[str, Any]:
        """Take a batch of marks, revalue, and trip the switch within this batch on a
        daily-loss or drawdown breach."""
        now = time.time() if now is None else now
        self.ctx.apply_marks(prices, now)
        self.last_marks_at = now
        self.metrics.marks.inc()
        self._update_gauges()
        out: dict[str, Any] = {"applied": len(prices), **self.book_summary()}
        breaches = find_breaches(self.ctx)
        out["breaches"] = [{"code": str(b.code), "context": b.context} for b in breaches]
        if breaches and self.risk.kill_on_breach != "off":
            first = breaches[0]
            mode = KillMode.REDUCE if self.risk.kill_on_breach == "reduce" else KillMode.HALT
            out["kill"] = self.switch.trip(
                mode,
                reason=f"{first.code}: "
                + ", ".join(f"{k}={v:.6g}" for k, v in first.context.items()),
                code=first.code,
                actor="monitor",
                manual=False,
                details={"breaches": out["breaches"]},
            )
        if self.ctx.peak_equity_usd > self._saved_peak:
            self._save_day(force=False)
        return out

    def tick(self, now: float | None = None) -> dict[str, Any] | None:
        """Periodic watch (once a second): trips on a stale feed during market hours."""
        now = time.time() if now is None else now
        silence = self.risk.stale_feed_s
        if feed_is_stale(self.last_marks_at, now, silence, self.market_open(now)):
            assert self.last_marks_at is not None
            age = now - self.last_marks_at
            return self.switch.trip(
                KillMode.HALT,
                reason=f"no marks for {age:.0f} s during market hours (limit {silence:g} s)",
                code=ReasonCode.STALE_FEED,
                actor="monitor",
                manual=False,
                details={"silence_s": age, "stale_feed_s": silence},
            )
        return None

    def _save_day(self, *, force: bool) -> None:
        if self.store is None or not self.ctx.book_loaded or self.ctx.session is None:
            return
        try:
            self.store.save_day(self.ctx.session, self.ctx.sod_equity_usd, self.ctx.peak_equity_usd)
            self._saved_peak = self.ctx.peak_equity_usd
        except DatabaseError as exc:
            log.error("equity peak not recorded", extra={"error": str(exc), "forced": force})

    def _update_gauges(self) -> None:
        m = self.metrics
        m.equity.set(self.ctx.equity_usd)
        m.day_pnl.set(self.ctx.day_pnl_usd)
        m.drawdown.set(self.ctx.drawdown)

    # -- views ----------------------------------------------------------------------------
    @property
    def machine(self) -> TradingStateMachine:
        """The trading-state machine of the kill switch."""
        return self.switch.machine

    @property
    def fail_closed_reason(self) -> str | None:
        """Why the service started HALTED (the state could not be read), else None."""
        return self.switch.fail_closed_reason

    @property
    def state(self) -> TradingState:
        return self.machine.state

    def book_summary(self) -> dict[str, Any]:
        c = self.ctx
        return {
            "trading_state": str(self.machine.state),
            "session": c.session,
            "equity_usd": c.equity_usd,
            "sod_equity_usd": c.sod_equity_usd,
            "day_pnl_usd": c.day_pnl_usd,
            "peak_equity_usd": c.peak_equity_usd,
            "drawdown": c.drawdown,
        }

    def health(self) -> dict[str, Any]:
        out: dict[str, Any] = {"status": "ok", "trading_state": str(self.machine.state)}
        if self.fail_closed_reason:
            out["fail_closed_reason"] = self.fail_closed_reason
        return out

    def state_view(self, events: int = 20) -> dict[str, Any]:
        """Everything ``GET /v1/state`` shows."""
        out: dict[str, Any] = {
            "trading_state": str(self.machine.state),
            "since": self.machine.since.isoformat(),
            "fail_closed_reason": self.fail_closed_reason,
            "limits": self.limits.as_dict(),
            "kill_switch": {
                "kill_on_breach": self.risk.kill_on_breach,
                "stale_feed_s": self.risk.stale_feed_s,
                "rejection_burst": self.risk.rejection_burst,
                "rejection_window_s": self.risk.rejection_window_s,
                "last_marks_at": self.last_marks_at,
            },
            "rules": [
                {"name": r.name, "family": r.family, "mode": str(r.mode)} for r in self.engine.rules
            ],
            "book": self.ctx.snapshot(),
            "last_event": None
            if self.machine.last_event is None
            else self.machine.last_event.as_dict(),
        }
        if self.store is not None:
            try:
                out["recent_events"] = self.store.recent_events(events)
            except DatabaseError as exc:
                out["recent_events"] = []
                out["recent_events_error"] = str(exc)
        return out
