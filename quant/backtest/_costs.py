"""Trading costs of the backtest.

Two layers:

1. **In the fills** (the simulator, the same code a backfill uses): every fill
   is at the auction price moved against the order by ``slippage_bps`` and pays
   ``commission_per_share_usd``. The backtest runs the simulator with these
   values (``QUANT_EXECUTION__SIM_SLIPPAGE_BPS`` and
   ``QUANT_EXECUTION__SIM_COMMISSION_PER_SHARE_USD`` by default), so they are
   in the simulated account's cash and equity.
2. **In the backtest's accounting** (on top of the simulator's equity):
   a commission of ``commission_bps`` of each fill's notional, and the
   square-root market impact ``impact_coefficient x sigma x sqrt(qty / ADV)``
   of the notional, with sigma the name's daily volatility (standard
   deviation of daily total returns) and ADV its average daily volume in
   shares, both over the ``impact_sessions`` sessions up to the session the
   order was generated (known before it fills). A name without volume history
   counts as trading its whole ADV (participation 1). These costs are summed
   per fill session and subtracted, cumulatively, from the simulated equity;
   they do not shrink the simulated account's cash, so later orders are sized
   on the equity before them (a second-order difference at realistic costs).
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from quant.config import Settings

__all__ = ["CostModel", "TradeFill", "accounting_costs", "net_equity"]


@dataclass(frozen=True, slots=True, kw_only=True)
class CostModel:
    """Costs of a backtest (module docstring).

    Attributes
    ----------
    slippage_bps : float
        Simulator: fill price moved against the order, basis points.
    commission_per_share_usd : float
        Simulator: commission per filled share, USD.
    commission_bps : float
        Accounting: commission on each fill's notional, basis points.
    impact_coefficient : float
        Accounting: square-root impact coefficient (0 = no impact).
    impact_sessions : int
        Sessions of the volatility and ADV behind the impact.
    """

    slippage_bps: float = 5.0
    commission_per_share_usd: float = 0.005
    commission_bps: float = 0.0
    impact_coefficient: float = 0.0
    impact_sessions: int = 20

    def __post_init__(self) -> None:
        for name in ("slippage_bps", "commission_per_share_usd", "commission_bps",
                     "impact_coefficient"):
            value = getattr(self, name)
            if not (isinstance(value, int | float) and np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.impact_sessions < 2:
            raise ValueError(f"impact_sessions must be >= 2, got {self.impact_sessions}")

    @classmethod
    def from_settings(cls, settings: Settings) -> CostModel:
        """The simulator's costs (``execution``) and the accounting ones (``backtest``)."""
        return cls(
            slippage_bps=settings.execution.sim_slippage_bps,
            commission_per_share_usd=settings.execution.sim_commission_per_share_usd,
            commission_bps=settings.backtest.commission_bps,
            impact_coefficient=settings.backtest.impact_coefficient,
            impact_sessions=settings.backtest.impact_sessions,
        )

    def with_(self, **changes: float) -> CostModel:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def apply_to(self, settings: Settings) -> Settings:
        """``settings`` with the simulator's slippage and commission set to these."""
        execution = settings.execution.model_copy(
            update={
                "sim_slippage_bps": float(self.slippage_bps),
                "sim_commission_per_share_usd": float(self.commission_per_share_usd),
            }
        )
        return settings.model_copy(update={"execution": execution})

    @property
    def has_accounting_costs(self) -> bool:
        """Whether anything is charged on top of the simulator."""
        return self.commission_bps > 0 or self.impact_coefficient > 0


@dataclass(frozen=True, slots=True, kw_only=True)
class TradeFill:
    """One simulator fill, as the accounting sees it.

    Attributes
    ----------
    session : date
        Session of the auction that filled it.
    order_session : date
        Session whose close the order was generated after (volatility and ADV
        are measured up to it).
    symbol : str
    side : {"buy", "sell"}
    qty_shares : float
        Filled quantity, positive.
    price_usd : float
        Fill price, USD.
    """

    session: date
    order_session: date
    symbol: str
    side: str
    qty_shares: float
    price_usd: float

    @property
    def notional_usd(self) -> float:
        return abs(self.qty_shares) * self.price_usd


def accounting_costs(
    fills: Sequence[TradeFill],
    costs: CostModel,
    *,
    daily_vol: Mapping[tuple[date, str], float] | None = None,
    adv_shares: Mapping[tuple[date, str], float] | None = None,
) -> pd.Series:
    """Costs charged on top of the simulator, summed per fill session (USD).

    ``commission_bps / 1e4 x notional + impact_coefficient x sigma x sqrt(qty / ADV) x notional``
    per fill, with sigma and ADV looked up by ``(order_session, symbol)``.

    Parameters
    ----------
    fills : sequence of TradeFill
    costs : CostModel
    daily_vol : mapping of (date, str) to float, optional
        Daily volatility (fraction) per order session and symbol; needed when
        ``impact_coefficient > 0`` (a missing name has no impact).
    adv_shares : mapping of (date, str) to float, optional
        Average daily volume (shares) per order session and symbol; a missing
        or zero ADV counts as participation 1.

    Returns
    -------
    Series indexed by session (ascending), USD, non-negative
    """
    if not fills:
        return pd.Series(dtype=float)
    notional = np.array([f.notional_usd for f in fills], dtype=float)
    cost = notional * costs.commission_bps / 1e4
    if costs.impact_coefficient > 0:
        vol_map = daily_vol or {}
        adv_map = adv_shares or {}
        sigma = np.array(
            [vol_map.get((f.order_session, f.symbol), np.nan) for f in fills], dtype=float
        )
        adv = np.array([adv_map.get((f.order_session, f.symbol), 0.0) for f in fills], dtype=float)
        qty = np.array([abs(f.qty_shares) for f in fills], dtype=float)
        with np.errstate(divide="ignore", invalid="ignore"):
            participation = np.where(adv > 0, qty / adv, 1.0)
        sigma = np.where(np.isfinite(sigma), sigma, 0.0)
        cost = cost + costs.impact_coefficient * sigma * np.sqrt(participation) * notional
    frame = pd.DataFrame({"session": [f.session for f in fills], "cost": cost})
    return frame.groupby("session")["cost"].sum().sort_index()


def net_equity(gross: pd.Series, costs_by_session: pd.Series) -> pd.Series:
    """Equity after the accounting costs: gross minus the costs paid up to each session.

    Parameters
    ----------
    gross : Series indexed by session
        The simulated account's equity at each close, USD.
    costs_by_session : Series indexed by session
        Costs paid at each session's fills, USD (sessions outside ``gross``
        are charged at the next session in it, or dropped after its end).
    """
    if costs_by_session.empty:
        return gross.astype(float)
    sessions = list(gross.index)
    charged = pd.Series(0.0, index=gross.index)
    for day, value in costs_by_session.items():
        pos = bisect_left(sessions, day)
        if pos < len(sessions):
            charged.iloc[pos] += float(value)
    return gross.astype(float) - charged.cumsum()
