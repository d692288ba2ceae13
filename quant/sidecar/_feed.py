"""Mark feeds: a replay of daily bars as an intraday path, for the demo and tests."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import date
from typing import TYPE_CHECKING

from quant.sidecar._service import RiskService

if TYPE_CHECKING:
    from quant.config import Settings

__all__ = ["bar_paths", "load_session_bars", "replay_feed"]

log = logging.getLogger("quant.sidecar")


def bar_paths(
    bars: dict[str, tuple[float, float, float, float]], steps: int
) -> list[dict[str, float]]:
    """An intraday path per symbol through its bar: open, low, high, close
    (high first when the bar closed down), ``steps`` batches of marks.

    Parameters
    ----------
    bars : dict of str to (open, high, low, close)
        USD.
    steps : int
        Number of batches (>= 4).

    Returns
    -------
    list of dict of str to float
        One ``{symbol: price}`` batch per step; the last is the close.
    """
    if steps < 4:
        raise ValueError(f"steps must be >= 4, got {steps}")
    out: list[dict[str, float]] = [{} for _ in range(steps)]
    for symbol, (o, h, lo, c) in bars.items():
        anchors = [o, lo, h, c] if c >= o else [o, h, lo, c]
        for i in range(steps):
            x = i * 3 / (steps - 1)
            k = min(int(x), 2)
            frac = x - k
            out[i][symbol] = anchors[k] + (anchors[k + 1] - anchors[k]) * frac
    return out


def load_session_bars(
    settings: Settings, session: date
) -> dict[str, tuple[float, float, float, float]]:
    """Daily bars of ``session`` from ``raw.bars``, one per symbol, by provider chain order."""
    from quant.db import connect

    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                "select distinct on (symbol) symbol, open, high, low, close from raw.bars "
                "where date = %s and provider = any(%s) "
                "order by symbol, array_position(%s, provider)",
                (session, list(settings.providers), list(settings.providers)),
            )
            return {r[0]: (r[1], r[2], r[3], r[4]) for r in cur.fetchall()}
    finally:
        conn.close()


def replay_feed(
    batches: list[dict[str, float]], interval_s: float = 1.0
) -> Callable[[RiskService], Awaitable[None]]:
    """A feed for :func:`quant.sidecar.create_app`: one batch of marks every ``interval_s``."""

    async def run(service: RiskService) -> None:
        for i, prices in enumerate(batches):
            out = service.apply_marks(prices)
            log.info(
                "replayed marks",
                extra={
                    "batch": i + 1,
                    "of": len(batches),
                    "day_pnl_usd": out["day_pnl_usd"],
                    "trading_state": out["trading_state"],
                },
            )
            await asyncio.sleep(interval_s)

    return run
