"""The trading state machine and the automatic kill-switch triggers (pure logic).

Persistence, broker cancels and flattening live in :mod:`quant.sidecar`; this
module only decides state transitions and when an automatic trigger fires.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from quant.risk._codes import KillMode, ReasonCode, TradingState
from quant.risk._context import RiskContext

__all__ = [
    "Breach",
    "RejectionBurstDetector",
    "StateEvent",
    "TradingStateMachine",
    "feed_is_stale",
    "find_breaches",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class StateEvent:
    """One entry of the kill-switch log (``ops.kill_switch_events``).

    Attributes
    ----------
    kind : str
        ``kill`` (by a person), ``auto_kill`` (a trigger), ``resume``,
        ``restore`` (state read at start), ``fail_closed`` (state could not be
        read), ``override`` (a symbol/strategy override set or cleared),
        ``cancel`` / ``flatten`` (broker actions after a kill).
    from_state, to_state : TradingState
    reason_code : str
        A :class:`ReasonCode` value (``MANUAL`` for a person).
    reason : str
        Free text: what a person typed, or a generated description.
    actor : str
        Who or what: ``cli``, ``http``, ``monitor``, ``startup``...
    at : datetime
        UTC.
    mode : KillMode or None
    details : dict
        Structured context (the breach numbers, the broker's answers).
    """

    kind: str
    from_state: TradingState
    to_state: TradingState
    reason_code: str
    reason: str
    actor: str
    at: datetime
    mode: KillMode | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "from_state": str(self.from_state),
            "to_state": str(self.to_state),
            "mode": None if self.mode is None else str(self.mode),
            "reason_code": self.reason_code,
            "reason": self.reason,
            "actor": self.actor,
            "at": self.at.isoformat(),
            "details": self.details,
        }


class TradingStateMachine:
    """ACTIVE / REDUCING / HALTED with the rules for moving between them.

    - A kill moves to the kill mode's state, but never loosens: a ``reduce``
      kill while HALTED stays HALTED.
    - An automatic trip that would not make the state stricter records
      nothing (returns ``None``); a manual kill is always recorded.
    - Only :meth:`resume` (a person) goes back to ACTIVE.
    """

    __slots__ = ("state", "since", "last_event")

    def __init__(self, state: TradingState = TradingState.ACTIVE) -> None:
        self.state = TradingState(state)
        self.since = datetime.now(UTC)
        self.last_event: StateEvent | None = None

    def trip(
        self,
        mode: KillMode,
        *,
        reason: str,
        reason_code: ReasonCode | str = ReasonCode.MANUAL,
        actor: str,
        manual: bool,
        at: datetime | None = None,
        details: dict[str, Any] | None = None,
    ) -> StateEvent | None:
        """Trip the switch; returns the event to record, or None when nothing changes."""
        mode = KillMode(mode)
        target = mode.target_state
        new = target if target.severity > self.state.severity else self.state
        if not manual and new is self.state:
            return None
        return self._move(
            "kill" if manual else "auto_kill",
            new,
            reason_code=str(reason_code),
            reason=reason,
            actor=actor,
            mode=mode,
            at=at,
            details=details,
        )

    def resume(self, *, reason: str, actor: str, at: datetime | None = None) -> StateEvent:
        """Back to ACTIVE (only ever on a person's request)."""
        return self._move(
            "resume",
            TradingState.ACTIVE,
            reason_code=str(ReasonCode.MANUAL),
            reason=reason,
            actor=actor,
            mode=None,
            at=at,
            details=None,
        )

    def force(
        self,
        state: TradingState,
        *,
        kind: str,
        reason: str,
        reason_code: str,
        actor: str,
        at: datetime | None = None,
        details: dict[str, Any] | None = None,
    ) -> StateEvent:
        """Set a state directly (restore at start, fail closed)."""
        return self._move(
            kind,
            TradingState(state),
            reason_code=reason_code,
            reason=reason,
            actor=actor,
            mode=None,
            at=at,
            details=details,
        )

    def _move(
        self,
        kind: str,
        new: TradingState,
        *,
        reason_code: str,
        reason: str,
        actor: str,
        mode: KillMode | None,
        at: datetime | None,
        details: dict[str, Any] | None,
    ) -> StateEvent:
        at = at or datetime.now(UTC)
        event = StateEvent(
            kind=kind,
            from_state=self.state,
            to_state=new,
            reason_code=reason_code,
            reason=reason,
            actor=actor,
            at=at,
            mode=mode,
            details=details or {},
        )
        if new is not self.state:
            self.since = at
        self.state = new
        self.last_event = event
        return event


@dataclass(frozen=True, slots=True)
class Breach:
    """A limit the book has crossed: which, and by how much."""

    code: ReasonCode
    context: dict[str, Any]


def find_breaches(ctx: RiskContext) -> list[Breach]:
    """The daily-loss and drawdown limits the current book breaches (after revaluation)."""
    out: list[Breach] = []
    limit = ctx.daily_loss_limit_usd
    if ctx.book_loaded and limit is not None and -ctx.day_pnl_usd >= limit:
        out.append(
            Breach(
                ReasonCode.DAILY_LOSS_LIMIT,
                {
                    "day_pnl_usd": ctx.day_pnl_usd,
                    "daily_loss_limit_usd": limit,
                    "sod_equity_usd": ctx.sod_equity_usd,
                    "equity_usd": ctx.equity_usd,
                },
            )
        )
    dd_limit = ctx.limits.max_drawdown_pct
    if ctx.book_loaded and dd_limit is not None and ctx.drawdown >= dd_limit:
        out.append(
            Breach(
                ReasonCode.MAX_DRAWDOWN,
                {
                    "drawdown": ctx.drawdown,
                    "max_drawdown": dd_limit,
                    "equity_usd": ctx.equity_usd,
                    "peak_equity_usd": ctx.peak_equity_usd,
                },
            )
        )
    return out


def feed_is_stale(
    last_marks_at: float | None, now: float, max_silence_s: float | None, market_open: bool
) -> bool:
    """True when the market is open, the feed has delivered at least once, and its
    last batch is older than ``max_silence_s`` (None or 0 disables the check)."""
    if not max_silence_s or not market_open or last_marks_at is None:
        return False
    return now - last_marks_at > max_silence_s


class RejectionBurstDetector:
    """Fires when ``threshold`` or more denials fall within ``window_s`` seconds.

    Parameters
    ----------
    threshold : int
        0 disables the detector.
    window_s : float
    """

    __slots__ = ("threshold", "window_s", "_times")

    def __init__(self, threshold: int, window_s: float) -> None:
        self.threshold = threshold
        self.window_s = window_s
        self._times: deque[tuple[float, int]] = deque()

    def record(self, denied: int, now: float) -> int | None:
        """Add ``denied`` denials at ``now``; returns the count in the window when it
        reaches the threshold, else None."""
        if not self.threshold or denied <= 0:
            return None
        times = self._times
        times.append((now, denied))
        cutoff = now - self.window_s
        while times and times[0][0] < cutoff:
            times.popleft()
        total = sum(n for _, n in times)
        if total >= self.threshold:
            times.clear()
            return total
        return None
