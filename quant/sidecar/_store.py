"""The sidecar's persistence in PostgreSQL: kill-switch log, overrides, equity peaks.

Every write is one transaction and is not retried: a failed write raises
:class:`~quant.exceptions.DatabaseError` and the connection is dropped, so the
next call reconnects. Nothing here is on the check hot path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any

from quant.exceptions import DatabaseError
from quant.risk import Override, StateEvent, TradingState

if TYPE_CHECKING:
    from psycopg2.extensions import connection as PgConnection

__all__ = ["RestoredState", "StateStore"]


@dataclass(slots=True)
class RestoredState:
    """What the sidecar reads at start."""

    state: TradingState
    last_event: dict[str, Any] | None
    overrides: list[tuple[str, str, Override]] = field(default_factory=list)
    peak_equity_usd: float | None = None
    sod_equity_by_session: dict[str, float] = field(default_factory=dict)
    universe: dict[str, str] = field(default_factory=dict)


class StateStore:
    """Reads and appends the sidecar's state.

    Parameters
    ----------
    connect : callable
        Returns a new psycopg2 connection (e.g. ``lambda: quant.db.connect(settings)``).
    provider : str
        Market-data provider chain (``QUANT_PROVIDER``, comma-separated) whose
        ``raw.symbols`` rows make the default universe; the first provider that
        knows a symbol gives its sector.
    """

    def __init__(self, connect: Callable[[], PgConnection], *, provider: str = "synthetic") -> None:
        self._connect = connect
        self._conn: PgConnection | None = None
        self.provider = provider
        self.providers = [p.strip() for p in provider.split(",") if p.strip()]

    def _run(self, fn: Callable[[Any], Any]) -> Any:
        import psycopg2

        try:
            if self._conn is None or self._conn.closed:
                self._conn = self._connect()
            conn = self._conn
            with conn, conn.cursor() as cur:
                return fn(cur)
        except (psycopg2.Error, DatabaseError) as exc:
            self.close()
            if isinstance(exc, DatabaseError):
                raise
            raise DatabaseError(f"sidecar state store: {exc}".strip()) from exc

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            finally:
                self._conn = None

    # -- reads ----------------------------------------------------------------------------
    def load(self, today: date | None = None) -> RestoredState:
        """The last trading state, the overrides, equity peaks and the universe.

        Raises
        ------
        DatabaseError
            The database cannot be reached or read (the caller starts HALTED).
        """

        def read(cur: Any) -> RestoredState:
            cur.execute(
                "select event_id, at, kind, from_state, to_state, mode, reason_code, reason, "
                "actor, details from ops.kill_switch_events order by event_id desc limit 1"
            )
            row = cur.fetchone()
            last = None if row is None else _event_row(row)
            state = TradingState.ACTIVE if last is None else TradingState(last["to_state"])
            cur.execute(
                "select scope, key, size_multiplier, reduce_only, trading_disabled, reason "
                "from ops.risk_overrides order by scope, key"
            )
            overrides = [
                (
                    r[0],
                    r[1],
                    Override(
                        size_multiplier=r[2], reduce_only=r[3], trading_disabled=r[4], reason=r[5]
                    ),
                )
                for r in cur.fetchall()
            ]
            cur.execute("select session, sod_equity_usd, peak_equity_usd from ops.risk_days")
            days = cur.fetchall()
            peak = max((r[2] for r in days), default=None)
            sod = {r[0].isoformat(): r[1] for r in days}
            cur.execute(
                "select distinct on (symbol) symbol, sector from raw.symbols "
                "where provider = any(%s) and (delisted_at is null or delisted_at >= %s) "
                "order by symbol, array_position(%s, provider)",
                (self.providers, today or date.today(), self.providers),
            )
            universe = {r[0]: r[1] for r in cur.fetchall()}
            return RestoredState(
                state=state,
                last_event=last,
                overrides=overrides,
                peak_equity_usd=peak,
                sod_equity_by_session=sod,
                universe=universe,
            )

        return self._run(read)

    def recent_events(self, limit: int = 20) -> list[dict[str, Any]]:
        """The latest kill-switch events, newest first."""

        def read(cur: Any) -> list[dict[str, Any]]:
            cur.execute(
                "select event_id, at, kind, from_state, to_state, mode, reason_code, reason, "
                "actor, details from ops.kill_switch_events order by event_id desc limit %s",
                (limit,),
            )
            return [_event_row(r) for r in cur.fetchall()]

        return self._run(read)

    # -- writes ---------------------------------------------------------------------------
    def append(self, event: StateEvent) -> int:
        """Append one event; returns its ``event_id``."""

        mode = None if event.mode is None else str(event.mode)
        return self._run(lambda cur: _insert_event(cur, event, kind=event.kind, mode=mode))

    def save_override(
        self, scope: str, key: str, override: Override | None, *, set_by: str, event: StateEvent
    ) -> int:
        """Set (or with None clear) an override and append its event, in one transaction."""

        def write(cur: Any) -> int:
            if override is None or override.is_neutral:
                cur.execute(
                    "delete from ops.risk_overrides where scope = %s and key = %s", (scope, key)
                )
            else:
                cur.execute(
                    "insert into ops.risk_overrides (scope, key, size_multiplier, reduce_only, "
                    "trading_disabled, reason, set_by, set_at) "
                    "values (%s, %s, %s, %s, %s, %s, %s, now()) "
                    "on conflict (scope, key) do update set size_multiplier = excluded.size_multiplier, "
                    "reduce_only = excluded.reduce_only, trading_disabled = excluded.trading_disabled, "
                    "reason = excluded.reason, set_by = excluded.set_by, set_at = now()",
                    (
                        scope,
                        key,
                        override.size_multiplier,
                        override.reduce_only,
                        override.trading_disabled,
                        override.reason,
                        set_by,
                    ),
                )
            return _insert_event(cur, event, kind="override", mode=None)

        return self._run(write)

    def save_day(self, session: str, sod_equity_usd: float, peak_equity_usd: float) -> None:
        """Record a session's start-of-day equity and the running peak."""

        def write(cur: Any) -> None:
            cur.execute(
                "insert into ops.risk_days (session, sod_equity_usd, peak_equity_usd) "
                "values (%s, %s, %s) on conflict (session) do update set "
                "peak_equity_usd = greatest(ops.risk_days.peak_equity_usd, excluded.peak_equity_usd), "
                "updated_at = now()",
                (session, sod_equity_usd, peak_equity_usd),
            )

        self._run(write)


def _insert_event(cur: Any, event: StateEvent, *, kind: str, mode: str | None) -> int:
    """Append ``event`` to ``ops.kill_switch_events`` as ``kind`` with ``mode``; its id."""
    cur.execute(
        "insert into ops.kill_switch_events (at, kind, from_state, to_state, mode, "
        "reason_code, reason, actor, details) values (%s, %s, %s, %s, %s, %s, %s, %s, %s) "
        "returning event_id",
        (
            event.at,
            kind,
            str(event.from_state),
            str(event.to_state),
            mode,
            event.reason_code,
            event.reason,
            event.actor,
            json.dumps(event.details, default=str),
        ),
    )
    return cur.fetchone()[0]


def _event_row(row: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "event_id": row[0],
        "at": row[1].isoformat(),
        "kind": row[2],
        "from_state": row[3],
        "to_state": row[4],
        "mode": row[5],
        "reason_code": row[6],
        "reason": row[7],
        "actor": row[8],
        "details": row[9],
    }
