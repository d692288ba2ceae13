"""Position arithmetic shared by the simulator, the pipeline's book and rewinds."""

from __future__ import annotations

__all__ = ["QTY_TOLERANCE", "next_position"]

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
