"""The in-memory book the rules read: positions, marks, equity, exposures, counters.

Everything a rule needs is here, precomputed, so a check is a handful of
dictionary lookups and float operations. Quantities are signed shares,
money is USD, times are POSIX seconds (UTC).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from quant.risk._codes import TradingState
from quant.risk._limits import Override, RiskLimits
from quant.risk._types import RiskOrder

__all__ = ["RiskContext"]

_DAY_S = 86_400
_INF = math.inf


class RiskContext:
    """The state the rules check against.

    Parameters
    ----------
    limits : RiskLimits
        The configured limits; per-symbol and per-strategy overrides start
        from ``limits.symbol_overrides`` / ``limits.strategy_overrides`` and
        can be changed at run time with :meth:`set_override`.

    Notes
    -----
    ``projected`` is the position the book will have once every approved,
    not-yet-booked order fills (``positions + in_flight``); the exposure
    rules use it so that two orders approved in a row cannot together break a
    limit that each alone respects.
    """

    __slots__ = (
        "limits",
        "state",
        "now",
        "book_loaded",
        "universe",
        "positions",
        "in_flight",
        "projected",
        "marks",
        "mark_at",
        "ref_prices",
        "cash_usd",
        "sod_equity_usd",
        "equity_usd",
        "peak_equity_usd",
        "day_pnl_usd",
        "drawdown",
        "daily_loss_limit_usd",
        "gross_usd",
        "net_usd",
        "sector_gross_usd",
        "seen_ids",
        "second",
        "second_count",
        "day",
        "day_count",
        "symbol_overrides",
        "strategy_overrides",
        "session",
    )

    def __init__(self, limits: RiskLimits | None = None) -> None:
        self.limits = limits if limits is not None else RiskLimits()
        self.state = TradingState.ACTIVE
        self.now = 0.0
        self.book_loaded = False
        self.universe: dict[str, str] = {}
        self.positions: dict[str, float] = {}
        self.in_flight: dict[str, float] = {}
        self.projected: dict[str, float] = {}
        self.marks: dict[str, float] = {}
        self.mark_at: dict[str, float] = {}
        self.ref_prices: dict[str, float] = {}
        self.cash_usd = 0.0
        self.sod_equity_usd = 0.0
        self.equity_usd = 0.0
        self.peak_equity_usd = 0.0
        self.day_pnl_usd = 0.0
        self.drawdown = 0.0
        self.daily_loss_limit_usd: float | None = None
        self.gross_usd = 0.0
        self.net_usd = 0.0
        self.sector_gross_usd: dict[str, float] = {}
        self.seen_ids: set[str] = set()
        self.second = -1
        self.second_count = 0
        self.day = -1
        self.day_count = 0
        self.symbol_overrides: dict[str, Override] = dict(self.limits.symbol_overrides)
        self.strategy_overrides: dict[str, Override] = dict(self.limits.strategy_overrides)
        self.session: str | None = None

    # -- the hot path ------------------------------------------------------------------
    def prepare(self, order: RiskOrder) -> RiskOrder:
        """Fill the derived fields of ``order`` (see :class:`RiskOrder`); returns it."""
        qty = order.qty
        price = order.price
        symbol = order.symbol
        qty_valid = qty > 0.0 and qty != _INF and qty == int(qty)
        if qty_valid:
            lot = self.limits.lot_size
            if lot != 1 and int(qty) % lot:
                qty_valid = False
        price_valid = price > 0.0 and price != _INF
        order.qty_valid = qty_valid
        order.price_valid = price_valid
        signed = (qty if order.side == "buy" else -qty) if qty_valid else 0.0
        before = self.projected.get(symbol, 0.0)
        order.signed_qty = signed
        order.position_before = before
        order.position_after = before + signed
        order.is_reducing = (
            signed != 0.0
            and before != 0.0
            and (before > 0.0) != (signed > 0.0)
            and qty <= abs(before)
        )
        mark = self.marks.get(symbol)
        if mark is not None:
            order.value_price = mark
        elif price_valid:
            order.value_price = price
        else:
            order.value_price = self.ref_prices.get(symbol, 0.0)
        order.notional_usd = qty * price if (qty_valid and price_valid) else 0.0
        multiplier = 1.0
        if self.symbol_overrides:
            ov = self.symbol_overrides.get(symbol)
            if ov is not None:
                multiplier = ov.size_multiplier
        if order.strategy is not None and self.strategy_overrides:
            ov = self.strategy_overrides.get(order.strategy)
            if ov is not None and ov.size_multiplier < multiplier:
                multiplier = ov.size_multiplier
        order.size_multiplier = multiplier
        order.sector = self.universe.get(symbol)
        return order

    def record_approval(self, order: RiskOrder) -> None:
        """Book an approved order as in flight: exposures, counters and ids move now."""
        symbol = order.symbol
        signed = order.signed_qty
        self.seen_ids.add(order.client_order_id)
        second = int(self.now)
        if second == self.second:
            self.second_count += 1
        else:
            self._count(self.now)
            self.second_count = 1
        if second // _DAY_S == self.day:
            self.day_count += 1
        if signed == 0.0:
            return
        px = order.value_price
        before = order.position_before
        after = order.position_after
        self.in_flight[symbol] = self.in_flight.get(symbol, 0.0) + signed
        self.projected[symbol] = after
        if symbol not in self.ref_prices and px > 0.0:
            self.ref_prices[symbol] = px
        delta_gross = (abs(after) - abs(before)) * px
        self.gross_usd += delta_gross
        self.net_usd += signed * px
        sector = order.sector
        if sector is not None:
            self.sector_gross_usd[sector] = self.sector_gross_usd.get(sector, 0.0) + delta_gross

    def _count(self, now: float) -> None:
        """Roll the rate-limit windows forward to ``now`` (a new second, maybe a new day)."""
        second = int(now)
        self.second = second
        self.second_count = 0
        day = second // _DAY_S
        if day != self.day:
            self.day = day
            self.day_count = 0

    def orders_this_second(self, now: float) -> int:
        """Approved orders so far in the UTC second of ``now``."""
        return self.second_count if int(now) == self.second else 0

    def orders_today(self, now: float) -> int:
        """Approved orders so far in the UTC day of ``now``."""
        return self.day_count if int(now) // _DAY_S == self.day else 0

    # -- book and marks (not the hot path) ---------------------------------------------
    def load_book(
        self,
        *,
        cash_usd: float,
        positions: Mapping[str, float],
        marks: Mapping[str, float],
        now: float,
        universe: Mapping[str, str | None] | None = None,
        session: str | None = None,
        clear_in_flight: bool = True,
        peak_equity_usd: float | None = None,
    ) -> None:
        """Replace the book with a snapshot from the broker (start of day or after fills).

        Parameters
        ----------
        cash_usd : float
            Cash in USD.
        positions : mapping of str to float
            Signed shares per symbol.
        marks : mapping of str to float
            Prices in USD; every position should have one (a position without
            a mark is valued at its last known price, or 0).
        now : float
            POSIX seconds of the snapshot (the age of these marks).
        universe : mapping of str to str or None, optional
            Tradable symbols and their sectors; replaces the current universe
            when given. Symbols with a position are always known.
        session : str, optional
            The trading session (``YYYY-MM-DD``). A new session resets the
            start-of-day equity, the duplicate-id memory and the daily count.
        clear_in_flight : bool
            Forget approved orders not yet booked (they are now in ``positions``
            or were never sent).
        peak_equity_usd : float, optional
            Restored peak equity (for the drawdown); the peak never drops.
        """
        if universe is not None:
            self.universe = {s.upper(): (sec or "UNKNOWN") for s, sec in universe.items()}
        self.positions = {s.upper(): float(q) for s, q in positions.items() if q != 0}
        for symbol in self.positions:
            self.universe.setdefault(symbol, "UNKNOWN")
        self.cash_usd = float(cash_usd)
        for symbol, price in marks.items():
            self.marks[symbol.upper()] = float(price)
            self.mark_at[symbol.upper()] = now
            self.ref_prices[symbol.upper()] = float(price)
        if clear_in_flight:
            self.in_flight = {}
        self.projected = dict(self.positions)
        for symbol, q in self.in_flight.items():
            self.projected[symbol] = self.projected.get(symbol, 0.0) + q
        new_session = session is not None and session != self.session
        equity = self._equity()
        if new_session or not self.book_loaded:
            self.sod_equity_usd = equity
            self.session = session
        if new_session:
            self.seen_ids = set()
            self.day_count = 0
        if peak_equity_usd is not None:
            self.peak_equity_usd = max(self.peak_equity_usd, peak_equity_usd)
        self.book_loaded = True
        self.daily_loss_limit_usd = self.limits.daily_loss_limit_for(self.sod_equity_usd)
        self.revalue()

    def apply_marks(self, prices: Mapping[str, float], now: float) -> None:
        """Take a batch of marks and revalue the book (equity, P&L, drawdown, exposures).

        Prices that are not finite and positive are ignored.
        """
        marks = self.marks
        mark_at = self.mark_at
        ref = self.ref_prices
        for symbol, price in prices.items():
            if price > 0.0 and price != math.inf:
                marks[symbol] = price
                mark_at[symbol] = now
                ref[symbol] = price
        self.revalue()

    def revalue(self) -> None:
        """Recompute equity, day P&L, peak, drawdown and exposures from the book."""
        self.equity_usd = self._equity()
        if self.equity_usd > self.peak_equity_usd:
            self.peak_equity_usd = self.equity_usd
        self.day_pnl_usd = self.equity_usd - self.sod_equity_usd if self.book_loaded else 0.0
        if self.peak_equity_usd > 0.0:
            self.drawdown = max(0.0, 1.0 - self.equity_usd / self.peak_equity_usd)
        else:
            self.drawdown = 0.0
        gross = net = 0.0
        sectors: dict[str, float] = {}
        for symbol, q in self.projected.items():
            px = self.ref_prices.get(symbol, 0.0)
            value = q * px
            net += value
            gross += abs(value)
            sector = self.universe.get(symbol, "UNKNOWN")
            sectors[sector] = sectors.get(sector, 0.0) + abs(value)
        self.gross_usd = gross
        self.net_usd = net
        self.sector_gross_usd = sectors

    def _equity(self) -> float:
        ref = self.ref_prices
        return self.cash_usd + sum(q * ref.get(s, 0.0) for s, q in self.positions.items())

    def set_override(self, scope: str, key: str, override: Override | None) -> None:
        """Set (or with ``None`` clear) the override of a symbol (``scope="symbol"``)
        or a strategy (``scope="strategy"``)."""
        if scope == "symbol":
            table, key = self.symbol_overrides, key.upper()
        elif scope == "strategy":
            table = self.strategy_overrides
        else:
            raise ValueError(f"scope must be 'symbol' or 'strategy', got {scope!r}")
        if override is None or override.is_neutral:
            table.pop(key, None)
        else:
            table[key] = override

    def add_universe(self, symbols: Iterable[str], sector: str = "UNKNOWN") -> None:
        """Make symbols tradable (keeps the sector of those already known)."""
        for symbol in symbols:
            self.universe.setdefault(symbol.upper(), sector)

    def snapshot(self) -> dict[str, Any]:
        """JSON-ready view of the book (for ``GET /v1/state``)."""
        return {
            "session": self.session,
            "book_loaded": self.book_loaded,
            "cash_usd": self.cash_usd,
            "sod_equity_usd": self.sod_equity_usd,
            "equity_usd": self.equity_usd,
            "peak_equity_usd": self.peak_equity_usd,
            "day_pnl_usd": self.day_pnl_usd,
            "drawdown": self.drawdown,
            "daily_loss_limit_usd": self.daily_loss_limit_usd,
            "gross_exposure_usd": self.gross_usd,
            "net_exposure_usd": self.net_usd,
            "sector_gross_usd": dict(self.sector_gross_usd),
            "positions": dict(self.positions),
            "in_flight": {s: q for s, q in self.in_flight.items() if q != 0},
            "marks": dict(self.marks),
            "mark_at": dict(self.mark_at),
            "universe_size": len(self.universe),
            "orders_today": self.day_count,
            "symbol_overrides": {k: v.as_dict() for k, v in self.symbol_overrides.items()},
            "strategy_overrides": {k: v.as_dict() for k, v in self.strategy_overrides.items()},
        }
