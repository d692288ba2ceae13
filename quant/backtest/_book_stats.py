"""Statistics of a book's positions and fills: exposure, slippage and costs in dollars.

Pure functions of the frames a :class:`~quant.backtest.StrategyResult` holds
(positions per session, orders, fills, accounting costs); the tear sheet plots
and tabulates them.

Conventions:

- Exposure is pyfolio's: gross = sum of ``|position value|`` / equity, net =
  sum of position values / equity, per session (1.0 = fully invested long).
- Slippage and shortfall are signed so that a positive figure is a cost:
  ``(fill price - reference price) x shares`` for a buy, the opposite for a sell.
"""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd

__all__ = ["POSITION_COLUMNS", "cost_breakdown", "exposure", "fill_slippage"]

POSITION_COLUMNS = ("session", "symbol", "qty_shares", "price_usd")
"""Columns of :attr:`StrategyResult.positions`: the shares held after a session's auction,
marked at its close (USD per share)."""


def exposure(positions: pd.DataFrame, equity: pd.Series) -> pd.DataFrame:
    """Gross and net exposure per session (fractions of equity).

    Parameters
    ----------
    positions : DataFrame
        Columns ``session``, ``symbol``, ``qty_shares`` (signed), ``price_usd``:
        the holdings at each session's close; a session without rows held none.
    equity : Series indexed by session
        The equity the positions are part of (cash + positions), USD.

    Returns
    -------
    DataFrame indexed like ``equity``
        ``gross`` = sum |qty x price| / equity, ``net`` = sum qty x price / equity
        (NaN where the equity is not positive).
    """
    value = positions["qty_shares"].astype(float) * positions["price_usd"].astype(float)
    by_session = pd.DataFrame({"session": positions["session"], "value": value,
                               "abs": value.abs()}).groupby("session")[["value", "abs"]].sum()
    held = by_session.reindex(equity.index, fill_value=0.0)
    base = equity.astype(float).where(equity > 0)
    return pd.DataFrame({"gross": held["abs"] / base, "net": held["value"] / base},
                        index=equity.index)


def fill_slippage(
    fills: pd.DataFrame, orders: pd.DataFrame, sessions: list[date], slippage_bps: float
) -> pd.DataFrame:
    """Each fill's slippage against the auction price and shortfall against the decision price.

    An order generated after session D's close (reference price: D's close) fills
    at the next session's auction, at the auction price moved ``slippage_bps``
    against it: the auction price is ``fill / (1 + bps)`` for a buy and
    ``fill / (1 - bps)`` for a sell.

    Parameters
    ----------
    fills : DataFrame
        Columns ``session`` (the auction's), ``symbol``, ``side``, ``qty_shares``
        (> 0), ``price_usd``.
    orders : DataFrame
        Columns ``session`` (D), ``symbol``, ``side``, ``ref_price_usd``.
    sessions : list of date
        The backtest's sessions, ascending (a fill's order session is the one before it).
    slippage_bps : float
        The simulator's slippage, basis points.

    Returns
    -------
    DataFrame
        The fills' columns plus ``ref_price_usd`` (NaN for a fill without an
        order in ``orders``), ``notional_usd``, ``slippage_usd`` (fill vs
        auction price, the modelled slippage) and ``shortfall_usd`` (fill vs the
        decision price: the slippage plus the move from D's close to the auction;
        NaN without a reference price), positive = cost.
    """
    previous = dict(zip(sessions[1:], sessions[:-1], strict=False))
    out = fills.copy()
    out["order_session"] = out["session"].map(previous)
    ref = orders[["session", "symbol", "side", "ref_price_usd"]].rename(
        columns={"session": "order_session"}
    ).drop_duplicates(["order_session", "symbol", "side"])
    out = out.merge(ref, on=["order_session", "symbol", "side"], how="left")
    sign = np.where(out["side"] == "buy", 1.0, -1.0)
    qty = out["qty_shares"].astype(float).abs()
    price = out["price_usd"].astype(float)
    auction = price / (1.0 + sign * slippage_bps / 1e4)
    out["notional_usd"] = qty * price
    out["slippage_usd"] = sign * (price - auction) * qty
    out["shortfall_usd"] = sign * (price - out["ref_price_usd"].astype(float)) * qty
    return out.drop(columns=["order_session"])


COST_COLUMNS = ("commission_usd", "accounting_usd", "slippage_usd", "shortfall_usd")


def cost_breakdown(slipped: pd.DataFrame, accounting_usd: pd.Series,
                   index: pd.Index) -> pd.DataFrame:
    """Trading costs per session, USD: ``commission_usd`` (the simulator's per share),
    ``accounting_usd`` (commission bps and impact, :func:`~quant.backtest.accounting_costs`),
    ``slippage_usd`` and ``shortfall_usd`` (:func:`fill_slippage`'s, summed over the
    session's fills); 0 where nothing was paid.

    Parameters
    ----------
    slipped : DataFrame
        :func:`fill_slippage`'s output (with ``commission_usd``).
    accounting_usd : Series indexed by session
    index : Index of sessions
    """
    columns = ["commission_usd", "slippage_usd", "shortfall_usd"]
    per = slipped.groupby("session")[columns].sum(min_count=1) if not slipped.empty else None
    frame = (pd.DataFrame(0.0, index=index, columns=columns) if per is None
             else per.reindex(index).fillna(0.0))
    frame["accounting_usd"] = accounting_usd.reindex(index, fill_value=0.0).astype(float)
    return frame[list(COST_COLUMNS)]
