"""The marts of a synthetic market, for tests: built by the real dbt project, or as frames.

:func:`synthetic_marts` is the set-up of the tests that read the dbt models:
the synthetic market the settings describe (``settings.synthetic``) ingested
into ``raw`` over a range of sessions, then one dbt command run as of the
last one. :func:`market_frames` computes the features and labels of a
synthetic market in memory, as the marts would hold them, for the model tests
that need no database.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

from quant.config import Settings
from quant.testing.db import execute, truncate_pipeline_tables

if TYPE_CHECKING:
    import pandas as pd

    from quant.data import IngestResult
    from quant.transform import DbtResult

__all__ = [
    "DBT_SCHEMAS",
    "MARKET_AS_OF",
    "MARKET_END",
    "MARKET_START",
    "Market",
    "RETURNS_AND_UNIVERSE",
    "dbt_as_of",
    "drop_marts",
    "ingest_synthetic",
    "market_frames",
    "recent_synthetic_sessions",
    "register_placeholder_model",
    "reset_pipeline",
    "returns_and_universe",
    "synthetic_marts",
]

DBT_SCHEMAS = ("staging", "intermediate", "marts")
"""The schemas the dbt project builds."""


def drop_marts(settings: Settings) -> None:
    """Drop the schemas dbt builds (``DBT_SCHEMAS``), so the next build starts from nothing."""
    execute(settings, f"drop schema if exists {', '.join(DBT_SCHEMAS)} cascade")


def reset_pipeline(settings: Settings) -> None:
    """Empty the ``raw`` and ``ops`` tables and drop the dbt schemas: the database as migrated."""
    truncate_pipeline_tables(settings)
    drop_marts(settings)


def ingest_synthetic(settings: Settings, end: date, *, start: date) -> IngestResult:
    """Ingest the synthetic market of ``settings.synthetic`` from ``start`` through ``end``.

    Parameters
    ----------
    settings : Settings
        Its ``synthetic`` section gives the number of names, the seed and the
        planted signal's strength; its ``exchange`` the calendar.
    end, start : date
        The logical date of the ingestion and the first session of the range.
    """
    from quant.data import SyntheticProvider, ingest_bars

    provider = SyntheticProvider(
        symbols=settings.synthetic.symbols,
        seed=settings.synthetic.seed,
        signal_strength=settings.synthetic.signal_strength,
        exchange=settings.exchange,
    )
    return ingest_bars(end, start=start, settings=settings, provider=provider)


def dbt_as_of(
    settings: Settings, as_of: date, command: Sequence[str] = ("build",)
) -> DbtResult:
    """Run one dbt ``command`` (``("run", "--select", "+marts")``) as of the session ``as_of``."""
    from quant.transform import dbt_vars, run_dbt

    return run_dbt(list(command), settings=settings, vars=dbt_vars(as_of, settings))


def synthetic_marts(
    settings: Settings,
    end: date,
    *,
    start: date,
    command: Sequence[str] = ("build",),
    fresh: bool = True,
) -> DbtResult:
    """The dbt models built as of ``end`` from the synthetic market ingested over ``start..end``.

    Parameters
    ----------
    settings : Settings
        The database, and the synthetic market (``settings.synthetic``).
    end : date
        The last session ingested and the session the models are built as of.
    start : date
        The first session ingested.
    command : sequence of str, default ("build",)
        The dbt command and its flags.
    fresh : bool, default True
        First empty the ``raw`` and ``ops`` tables and drop the dbt schemas,
        so nothing of an earlier test is read or kept. ``False`` ingests into
        and builds over whatever is there.

    Returns
    -------
    DbtResult
        What the dbt command did.
    """
    if fresh:
        reset_pipeline(settings)
    ingest_synthetic(settings, end, start=start)
    return dbt_as_of(settings, end, command)


RETURNS_AND_UNIVERSE = (
    "run", "--quiet", "--full-refresh", "--select", "+universe", "+int_prices_adjusted",
)
"""The dbt command that builds what the portfolio stage reads: the returns and the universe."""


def returns_and_universe(symbols: int, end: date, history_sessions: int) -> Settings:
    """Settings of a synthetic market of ``symbols`` names, ingested over the
    ``history_sessions`` sessions before ``end`` into an emptied database, with the returns
    and universe models built as of ``end`` (:data:`RETURNS_AND_UNIVERSE`)."""
    from quant.calendar import get_calendar
    from quant.config import load_settings

    settings = load_settings(synthetic={"symbols": symbols})
    start = get_calendar(settings.exchange).shift(end, -history_sessions)
    synthetic_marts(settings, end, start=start, command=RETURNS_AND_UNIVERSE)
    return settings


def recent_synthetic_sessions(settings: Settings, first_back: int, last_back: int = 2) -> list[date]:
    """The sessions from ``first_back`` to ``last_back`` closed sessions ago, the synthetic
    market ingested through them (with ``settings.history_sessions`` before the first) into
    emptied ``raw`` and ``ops`` tables; the dbt models are left to the caller."""
    from quant.calendar import get_calendar

    truncate_pipeline_tables(settings)
    cal = get_calendar(settings.exchange)
    latest = cal.latest_closed_session()
    days = cal.sessions(cal.shift(latest, -first_back), cal.shift(latest, -last_back))
    ingest_synthetic(settings, days[-1], start=cal.shift(days[0], -(settings.history_sessions - 1)))
    return days


def register_placeholder_model(settings: Settings, trained_through: date) -> int:
    """A row in ``ops.models`` (no artefact) for scores a test stores itself; its id."""
    from quant.testing.db import query

    return query(
        settings,
        """
        insert into ops.models (trained_through, horizon_sessions, objective, target, params,
            num_boost_round, features, feature_hash, metrics, train_rows, train_sessions,
            artifact_path, artifact_checksum)
        values (%s, 5, 'regression', 'rank', '{}', 10, '{f}', 'h', '{}', 1, 1, 'm', 'c')
        returning model_id
        """,
        trained_through,
    )[0][0]


# -- the marts' frames in memory ---------------------------------------------------------------

MARKET_START = date(2015, 1, 2)
MARKET_END = date(2016, 10, 31)
MARKET_AS_OF = date(2016, 8, 31)
"""A Wednesday session with two months of later data after it in the frames."""


@dataclass(frozen=True)
class Market:
    """Feature and label frames of one synthetic market, as the marts would hold them."""

    features: pd.DataFrame
    labels: pd.DataFrame
    symbols: tuple[str, ...]


def market_frames(signal_strength: float, symbols: int = 80, seed: int = 7) -> Market:
    """Features and labels of a synthetic market from MARKET_START to MARKET_END.

    Small, so a model fits on them in about a second.

    Parameters
    ----------
    signal_strength : float
        Strength of the planted short-term reversal, 0 (none) to 1.
    symbols : int, default 80
        Number of names.
    seed : int, default 7
    """
    from quant.data import SyntheticProvider
    from quant.model import forward_labels, price_features

    provider = SyntheticProvider(symbols=symbols, seed=seed, signal_strength=signal_strength)
    bars = provider.bars(MARKET_START, MARKET_END)
    actions = provider.corporate_actions(MARKET_START, MARKET_END)
    return Market(
        features=price_features(bars, actions),
        labels=forward_labels(bars, actions),
        symbols=tuple(sorted(bars["symbol"].unique())),
    )
