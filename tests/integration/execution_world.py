"""Small, honest market data for the execution tests: a few symbols in raw.bars and
raw.symbols over real XNYS sessions, with prices that move a little every day; and the
stages that turn target weights into orders at the broker, called as the DAG calls them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

from quant.calendar import get_calendar
from quant.config import Settings
from quant.execution import generate_orders, pretrade_check, submit_orders
from quant.pipeline import run_context

PROVIDER = "synthetic"
SYMBOLS: dict[str, tuple[float, str, float]] = {
    # symbol: (first close USD, sector, daily volume shares)
    "AAA": (50.0, "Technology", 2_000_000),
    "BBB": (120.0, "Technology", 1_000_000),
    "CCC": (30.0, "Health Care", 3_000_000),
    "DDD": (80.0, "Energy", 1_500_000),
    "EEE": (200.0, "Energy", 500_000),
    "FFF": (15.0, "Health Care", 10_000),  # thin: orders hit the volume cap
}
LAST = date(2026, 11, 20)


@dataclass(frozen=True)
class World:
    sessions: list[date]

    def close(self, symbol: str, day: date) -> float:
        i = self.sessions.index(day)
        base = SYMBOLS[symbol][0]
        return round(base * (1 + 0.002 * i + (0.01 if i % 3 == 0 else -0.004)), 4)

    def open(self, symbol: str, day: date) -> float:
        return round(self.close(symbol, day) * 0.997, 4)

    def closes(self, day: date) -> dict[str, float]:
        return {s: self.close(s, day) for s in SYMBOLS}

    def opens(self, day: date) -> dict[str, float]:
        return {s: self.open(s, day) for s in SYMBOLS}


def sessions(n: int = 30, last: date = LAST) -> list[date]:
    cal = get_calendar("XNYS")
    out = [last]
    while len(out) < n:
        out.append(cal.previous_session(out[-1]))
    return sorted(out)


def load_world(conn: Any, n: int = 30, last: date = LAST, extra_sessions: int = 2) -> World:
    """Bars for ``n`` sessions up to ``last`` plus ``extra_sessions`` after it."""
    cal = get_calendar("XNYS")
    days = sessions(n, last)
    for _ in range(extra_sessions):
        days.append(cal.next_session(days[-1]))
    world = World(days)
    with conn, conn.cursor() as cur:
        for symbol, (_, sector, volume) in SYMBOLS.items():
            cur.execute(
                "insert into raw.symbols (symbol, provider, sector) values (%s, %s, %s) "
                "on conflict do nothing",
                (symbol, PROVIDER, sector),
            )
            for day in days:
                c, o = world.close(symbol, day), world.open(symbol, day)
                cur.execute(
                    "insert into raw.bars (symbol, date, provider, open, high, low, close, volume)"
                    " values (%s, %s, %s, %s, %s, %s, %s, %s) on conflict do nothing",
                    (symbol, day, PROVIDER, o, max(o, c) * 1.01, min(o, c) * 0.99, c, volume),
                )
    return world


WEIGHTS = {"AAA": 0.08, "BBB": 0.06, "CCC": 0.09, "DDD": 0.05, "EEE": 0.07, "FFF": 0.02}
"""Within the sidecar's default limits (10% per name, 35% per sector)."""


def run_stages(
    settings: Settings,
    day: date,
    run_id: str,
    dag_id: str,
    *,
    weights: Mapping[str, float] = WEIGHTS,
    dry_run: bool = False,
    **choice: object,
) -> dict[str, dict]:
    """generate, check and submit, as the DAG calls them (``choice``: the broker choice's
    inputs; default the latest session, so the paper account and the sidecar)."""
    out = {
        "generate": generate_orders(run_context(day, run_id=run_id, settings=settings,
                                                dag_id=dag_id, targets=weights, dry_run=dry_run,
                                                **{"latest_session": day} | choice))
    }
    out["check"] = pretrade_check(run_context(day, run_id=run_id, settings=settings, dag_id=dag_id))
    out["submit"] = submit_orders(
        run_context(day, run_id=run_id, settings=settings, dag_id=dag_id, dry_run=dry_run),
    )
    return out
