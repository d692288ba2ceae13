"""Position arithmetic shared by the simulator, the pipeline's book and rewinds."""

from __future__ import annotations

import math

__all__ = ["EVENT_RANK", "QTY_TOLERANCE", "event_outcome", "next_position", "split_shares"]

QTY_TOLERANCE = 1e-6
"""Quantities closer to zero than this (shares) are flat."""


def next_position(
    old_qty: float, old_avg: float, signed_qty: float, price: float
) -> tuple[float, float]:
    """Quantity and average price after a fill.

    Parameters
    ----------
    old_qty, old_avg : float
        Position before the fill: shares (signed) and average price, USD.
    signed_qty : float
        Shares filled, positive for a buy, negative for a sell.
    price : float
        Fill price, USD.

    Returns
    -------
    tuple of float
        ``(qty, avg_price)``: opening or flipping takes the fill price, adding
        averages in, reducing keeps the average, flat is ``(0.0, 0.0)``.
    """
    new_qty = old_qty + signed_qty
    if abs(new_qty) < QTY_TOLERANCE:
        return 0.0, 0.0
    if old_qty == 0 or (old_qty > 0) != (new_qty > 0):
        return new_qty, price
    if abs(new_qty) > abs(old_qty):
        return new_qty, (old_avg * abs(old_qty) + price * abs(signed_qty)) / abs(new_qty)
    return new_qty, old_avg


_WHOLE_TOLERANCE = 1e-9
"""A split's new quantity this close to a whole number of shares is that number."""

# order of events that share a timestamp: splits and dividends (at the open) before the
# opening auction's fills, closings (at the close) after the closing auction's
EVENT_RANK = {"split": 0, "dividend": 0, "fill": 1, "delisting": 2, "dead_symbol": 2}


def split_shares(qty: float, ratio: float) -> tuple[float, float]:
    """Whole shares after a split and the fractional remainder paid in cash.

    Parameters
    ----------
    qty : float
        Shares before the split (signed: a short's are negative).
    ratio : float
        New shares per old share.

    Returns
    -------
    tuple of float
        ``(whole, fraction)``, both signed like ``qty``: the whole shares held
        after the split and the fraction of a share settled as cash in lieu.
    """
    scaled = qty * ratio
    nearest = float(round(scaled))
    if abs(scaled - nearest) < _WHOLE_TOLERANCE:
        return nearest, 0.0
    whole = float(math.floor(abs(scaled))) * (1.0 if scaled > 0 else -1.0)
    return whole, scaled - whole


def event_outcome(
    qty: float,
    avg: float,
    event_type: str,
    *,
    split_ratio: float | None = None,
    dividend_usd: float | None = None,
    price_usd: float | None = None,
) -> tuple[float, float, float]:
    """A position after a corporate event, and the cash the event moves.

    Parameters
    ----------
    qty, avg : float
        The position before: shares (signed) and average price, USD.
    event_type : {"split", "dividend", "delisting", "dead_symbol"}
    split_ratio, dividend_usd, price_usd : float, optional
        As in :class:`quant.typing.CorporateAction`.

    Returns
    -------
    tuple of float
        ``(qty, avg_price, cash_usd)``: a split scales the shares (whole ones) and
        divides the average cost, paying the fraction at ``price_usd`` (a short pays
        it); a dividend pays ``qty x dividend_usd`` (a short pays it); a closing
        sells (or buys back) the position at ``price_usd``.
    """
    if event_type == "split":
        if split_ratio is None:
            raise ValueError("a split needs its ratio")
        whole, fraction = split_shares(qty, split_ratio)
        cash = fraction * (price_usd or 0.0)
        if abs(whole) < QTY_TOLERANCE:
            return 0.0, 0.0, cash
        return whole, avg / split_ratio, cash
    if event_type == "dividend":
        return qty, avg, qty * (dividend_usd or 0.0)
    if event_type in ("delisting", "dead_symbol"):
        return 0.0, 0.0, qty * (price_usd or 0.0)
    raise ValueError(f"unknown corporate event type {event_type!r}")
