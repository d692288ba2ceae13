"""Where a run's orders are checked: the risk sidecar, or the risk engine in process.

The broker choice of ``generate_orders`` (:func:`~quant.execution.choose_broker`)
decides once, by the safety rules, and records it with the run
(``ops.execution_runs.risk_check``): runs on a broker's account (and the
simulator's ``paper`` account) go through the sidecar, whose book is that
account's; backfills and replays of old sessions check against their own
simulated book with :class:`quant.risk.RiskEngine` and never touch the live
sidecar. The stages after it take the :class:`RiskGate` that :func:`risk_gate`
gives for the record, and ask it; none tests the choice itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

from quant.execution._common import calendar

if TYPE_CHECKING:
    from quant.pipeline import RunContext
    from quant.sidecar.client import SidecarClient

__all__ = ["InProcessGate", "RiskGate", "SidecarGate", "Verdict", "risk_gate"]

Verdict = tuple[str, bool, list[str], list[dict[str, Any]]]
"""(client order id, approved, reason codes, the denials' details)."""


class RiskGate(Protocol):
    """The pre-trade check of a run and the controls that go with it."""

    name: str
    """``"sidecar"`` or ``"in_process"`` (the recorded choice)."""

    def check(
        self,
        pending: Sequence[Mapping[str, Any]],
        *,
        cash_usd: float,
        positions: dict[str, float],
        marks: dict[str, float],
        universe: dict[str, str] | None,
        session: date,
        strategy: str,
    ) -> tuple[list[Verdict], str]:
        """Check ``pending`` orders (rows of ``ops.orders``) against the book; (verdicts, trading state)."""
        ...

    def trading_state(self) -> str | None:
        """The kill switch's state before a submission; None when there is none to ask."""
        ...

    def lock(self, diff: Mapping[str, Any], session: date) -> tuple[bool, str | None]:
        """Set a symbol whose positions differ reduce-only; (locked, why not)."""
        ...

    def unlock(self, symbol: str) -> None:
        """Clear the reduce-only lock of a symbol whose positions match again."""
        ...


class SidecarGate:
    """The live risk sidecar, over HTTP (:class:`quant.sidecar.client.SidecarClient`).

    Opens its client when first needed (a reconciliation without a difference asks
    nothing) and closes it at the end, unless the run context brought its own.
    """

    name = "sidecar"

    def __init__(self, run: RunContext) -> None:
        self._settings = run.settings
        self._given = run.sidecar
        self._opened: SidecarClient | None = None

    @property
    def client(self) -> SidecarClient:
        if self._given is not None:
            return self._given
        if self._opened is None:
            from quant.sidecar.client import SidecarClient

            self._opened = SidecarClient.from_settings(self._settings)
        return self._opened

    def close(self) -> None:
        if self._opened is not None:
            self._opened.close()
            self._opened = None

    def check(self, pending, *, cash_usd, positions, marks, universe, session, strategy):
        from quant.sidecar.client import CheckOrder

        # What a check leaves at the sidecar, for the rest of the session: the ids it
        # approved (a second check of one is denied DUPLICATE_CLIENT_ORDER_ID), the
        # approved quantities as in flight (until the next POST /v1/book, which every
        # check sends first, so a later run's exposures never count them), the day's
        # approval count (max_orders_per_day) and recent denials (rejection_burst).
        # A dry run's ids are its own (quant.execution._ids), never a real run's, so
        # a real run checked after it is not refused for them.
        self.client.load_book(
            cash_usd=cash_usd,
            positions=positions,
            marks=marks,
            universe=universe,
            session=session.isoformat(),
        )
        answer = self.client.check(
            [
                CheckOrder(
                    client_order_id=o["client_order_id"],
                    symbol=o["symbol"],
                    side=o["side"],
                    qty=float(o["qty_shares"]),
                    price=float(o["ref_price_usd"]),
                    strategy=strategy,
                )
                for o in pending
            ]
        )
        verdicts = [
            (v.client_order_id, v.approved, list(v.reasons), list(v.denials))
            for v in answer.results
        ]
        return verdicts, answer.trading_state

    def trading_state(self) -> str | None:
        return self.client.health().get("trading_state")

    def lock(self, diff: Mapping[str, Any], session: date) -> tuple[bool, str | None]:
        from quant.exceptions import SidecarError

        try:
            self.client.set_override(
                "symbol",
                diff["symbol"],
                reduce_only=True,
                reason=(
                    f"reconciliation {session}: ops.positions {diff['expected_qty_shares']:g} "
                    f"vs broker {diff['broker_qty_shares']:g}"
                ),
                actor="reconcile",
            )
        except SidecarError as exc:
            return False, str(exc)
        return True, None

    def unlock(self, symbol: str) -> None:
        self.client.set_override(
            "symbol",
            symbol,
            reason="reconciliation: positions match again",
            clear=True,
            actor="reconcile",
        )


class InProcessGate:
    """The risk engine in this process, against the run's simulated book, at the session's
    close; a fresh engine each check (nothing carries over, as no sidecar's state does)."""

    name = "in_process"

    def __init__(self, run: RunContext) -> None:
        self._settings = run.settings

    def close(self) -> None:
        pass

    def check(self, pending, *, cash_usd, positions, marks, universe, session, strategy):
        from quant.risk import RiskContext, RiskEngine, RiskLimits, RiskOrder

        now = calendar(self._settings).close_at(session).timestamp()
        ctx = RiskContext(RiskLimits.from_mapping(self._settings.risk.model_dump()))
        ctx.load_book(
            cash_usd=cash_usd,
            positions=positions,
            marks=marks,
            now=now,
            universe=universe,
            session=session.isoformat(),
        )
        results = RiskEngine(ctx).check_batch(
            [
                RiskOrder(
                    o["client_order_id"],
                    o["symbol"],
                    o["side"],
                    float(o["qty_shares"]),
                    float(o["ref_price_usd"]),
                    strategy,
                )
                for o in pending
            ],
            now=now,
        )
        verdicts = [
            (r.client_order_id, r.approved, list(r.reasons), [d.as_dict() for d in r.denials])
            for r in results
        ]
        return verdicts, str(ctx.state)

    def trading_state(self) -> str | None:
        return None

    def lock(self, diff: Mapping[str, Any], session: date) -> tuple[bool, str | None]:
        return False, "no sidecar for this run (simulator account)"

    def unlock(self, symbol: str) -> None:
        pass


@contextmanager
def risk_gate(record: Mapping[str, Any], run: RunContext) -> Iterator[RiskGate]:
    """The gate the run's recorded choice names (``record["risk_check"]``), closed after."""
    gate = SidecarGate(run) if record["risk_check"] == "sidecar" else InProcessGate(run)
    try:
        yield gate
    finally:
        gate.close()
