"""The data-quality checks: what is checked, on which rows, and how severe a failure is.

Each check is one Great Expectations expectation on one query asset (SQL for the
session being validated). Checks are grouped into suites by the asset they read;
the suite names are what the Data Docs show.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from quant.config import QualitySettings

__all__ = ["Asset", "Check", "RangeForm", "Severity", "assets", "checks", "range_forms", "session_assets"]

Severity = Literal["blocking", "warning"]


@dataclass(frozen=True, slots=True)
class Asset:
    """A query whose rows a suite validates."""

    name: str
    suite: str
    sql: str
    index_columns: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Check:
    """One expectation with its severity.

    ``build`` returns the Great Expectations expectation; it is called with the
    thresholds in force for the run.
    """

    name: str
    asset: str
    severity: Severity
    description: str
    build: Callable[[QualitySettings, date], Any]


def _held_values(held: Sequence[str]) -> str:
    """``held`` as an inline relation ``h (symbol)`` (no row when empty)."""
    if not held:
        return "(select null::text as symbol where false) as h"
    rows = ", ".join("('" + s.replace("'", "''") + "')" for s in sorted(set(held)))
    return f"(values {rows}) as h (symbol)"


def assets(
    session: date, quality: QualitySettings, held: Sequence[str] = ()
) -> dict[str, Asset]:
    """The query assets for ``session`` (dates are inlined as ISO literals).

    ``held``: the symbols the trading account holds (the books' positions), whose
    bars on the session are checked (a held symbol without one is marked at a
    stale price and may be closed as a dead symbol).
    """
    return session_assets(f"date '{session.isoformat()}'", quality, held)


def _bar_lookback(quality: QualitySettings) -> int:
    """Calendar days before a session the bar checks are asked for (``raw.bar_checks`` reads
    as many again before that, for the previous closes and the volatility)."""
    return quality.volatility_sessions * 2 + 15


def session_assets(
    day: str, quality: QualitySettings, held: Sequence[str] = ()
) -> dict[str, Asset]:
    """The query assets for the session an SQL expression of type ``date`` names: a
    literal (:func:`assets`), or a column of an outer query, so that a range of
    sessions runs the very same SQL (:mod:`quant.quality._screen`)."""
    lookback = _bar_lookback(quality)
    found = [
        Asset(
            "raw_bars_session",
            "raw_bars",
            f"""
            select * from raw.bar_checks(
                {day} - {lookback}, {day},
                {quality.volatility_sessions}, {quality.min_volatility}
            ) where date = {day}
            """,
            ("symbol", "provider", "open", "high", "low", "close", "volume"),
        ),
        Asset(
            "raw_bars_coverage",
            "raw_bars_coverage",
            f"""
            select s.symbol, bool_or(b.symbol is not null) as has_bar
            from raw.symbols as s
            left join (select distinct symbol from raw.bars where date = {day}) as b
                on b.symbol = s.symbol
            where (s.listed_at is null or s.listed_at <= {day})
              and (s.delisted_at is null or s.delisted_at >= {day})
            group by s.symbol
            """,
            ("symbol",),
        ),
        Asset(
            "held_bars_coverage",
            "held_positions",
            f"""
            select h.symbol, exists (
                select 1 from raw.bars as b where b.symbol = h.symbol and b.date = {day}
            ) as has_bar
            from {_held_values(held)}
            """,
            ("symbol",),
        ),
        Asset(
            "raw_bars_history",
            "raw_bars_history",
            f"""
            select p.symbol, p.n_bars, round(p.flat_share::numeric, 3)::double precision
                       as flat_share,
                   p.distinct_volumes, coalesce(s.splits_recorded, 0) as splits_recorded,
                   p.n_bars >= {ADJUSTED_MIN_BARS}
                       and (p.flat_share >= 0.5 or p.distinct_volumes = 1) as looks_adjusted
            from (
                select symbol, count(*) as n_bars,
                       avg(case when open = high and high = low and low = close
                           then 1.0 else 0.0 end) as flat_share,
                       count(distinct volume) as distinct_volumes
                from raw.bars
                where date > {day} - {ADJUSTED_LOOKBACK_DAYS} and date <= {day}
                  and symbol in (select symbol from raw.bars where date = {day})
                group by symbol
            ) as p
            left join (
                select symbol, count(*) as splits_recorded from raw.corporate_actions
                where action_type = 'split' and ex_date <= {day}
                group by symbol
            ) as s on s.symbol = p.symbol
            """,
            ("symbol", "n_bars", "flat_share", "distinct_volumes", "splits_recorded"),
        ),
        Asset(
            "raw_bars_freshness",
            "raw_bars_freshness",
            f"""
            select (select max(date) from raw.bars where date <= {day}) as newest_date,
                   (select count(*) from raw.bars where date = {day}) as bars_on_session
            """,
            (),
        ),
        Asset(
            "features_session",
            "features",
            f"select * from marts.features where session_date = {day} and is_in_universe",
            ("symbol",),
        ),
        Asset(
            "universe_features_coverage",
            "universe",
            f"""
            select u.symbol, f.symbol is not null as has_features
            from marts.universe as u
            left join marts.features as f
                on f.symbol = u.symbol and f.session_date = u.session_date
            where u.session_date = {day} and u.is_tradable
            """,
            ("symbol",),
        ),
    ]
    return {a.name: a for a in found}


@dataclass(frozen=True, slots=True)
class RangeForm:
    """An asset's rows for a whole range of sessions in one query, where running its
    session query once per session costs too much (the bar checks' window functions).

    ``sql`` and ``guard`` are templates with ``{first}``, ``{last}`` (date expressions),
    ``{sessions}`` (a ``date[]`` expression) and ``{session}`` (the name of the column
    that carries each row's session). ``guard`` selects the sessions on which the range's
    rows may differ from the session query's (a window reaching back past the session
    query's own); those must be checked the session's way.
    """

    sql: str
    guard: str

    def bind(self, days: Sequence[date], session: str) -> tuple[str, str, dict[str, Any]]:
        """``sql`` and ``guard`` for the sessions ``days`` (in order), each row's session in
        the column ``session``, with the values of their ``%(name)s`` parameters."""
        fields = {"first": "%(first)s::date", "last": "%(last)s::date",
                  "sessions": "%(sessions)s::date[]", "session": session}
        values = {"first": days[0], "last": days[-1], "sessions": list(days)}
        return self.sql.format(**fields), self.guard.format(**fields), values


def range_forms(quality: QualitySettings) -> dict[str, RangeForm]:
    """The assets that have a :class:`RangeForm`, by name."""
    lookback = _bar_lookback(quality)
    # bar_checks reads bars back to p_start - lookback: a session's query reads
    # [day - 2 x lookback, day]. A row's checks use its previous bar and the log returns
    # of the volatility_sessions bars before it, so volatility_sessions + 1 bars back: when
    # the earliest of those lies before day - 2 x lookback the range's rows may differ.
    return {
        "raw_bars_session": RangeForm(
            sql=f"""
            select b.date as {{session}}, b.*
            from raw.bar_checks(
                {{first}} - {lookback}, {{last}},
                {quality.volatility_sessions}, {quality.min_volatility}
            ) as b
            where b.date = any({{sessions}})
            """,
            guard=f"""
            select distinct w.date from (
                select date, min(date) over (
                    partition by symbol, provider order by date
                    rows between {quality.volatility_sessions + 1} preceding and 1 preceding
                ) as earliest
                from raw.bars where date between {{first}} - {2 * lookback} and {{last}}
            ) as w
            where w.date = any({{sessions}}) and w.earliest < w.date - {2 * lookback}
            """,
        ),
        # the session query's aggregates over the last ADJUSTED_LOOKBACK_DAYS calendar days
        # as window frames over the range; "one volume figure" as min = max (the same test
        # as count(distinct) = 1), the exact distinct count computed for offending rows only
        # (the only rows a report shows)
        "raw_bars_history": RangeForm(
            sql=f"""
            with framed as (
                select distinct on (b.symbol, b.date) b.symbol, b.date,
                       count(*) over w as n_bars,
                       avg(case when b.open = b.high and b.high = b.low and b.low = b.close
                           then 1.0 else 0.0 end) over w as flat_share,
                       min(b.volume) over w = max(b.volume) over w as one_volume
                from raw.bars as b
                where b.date > {{first}} - {ADJUSTED_LOOKBACK_DAYS} and b.date <= {{last}}
                window w as (partition by b.symbol order by b.date
                             range between interval '{ADJUSTED_LOOKBACK_DAYS - 1} days' preceding
                             and current row)
            ),
            flagged as (
                select f.*, f.n_bars >= {ADJUSTED_MIN_BARS}
                           and (f.flat_share >= 0.5 or f.one_volume) as looks_adjusted
                from framed as f where f.date = any({{sessions}})
            )
            select f.date as {{session}}, f.symbol, f.n_bars,
                   round(f.flat_share::numeric, 3)::double precision as flat_share,
                   case when f.looks_adjusted then (
                       select count(distinct v.volume) from raw.bars as v
                       where v.symbol = f.symbol and v.date <= f.date
                         and v.date > f.date - {ADJUSTED_LOOKBACK_DAYS}
                   ) end as distinct_volumes,
                   (select count(*) from raw.corporate_actions as ca
                    where ca.symbol = f.symbol and ca.action_type = 'split'
                      and ca.ex_date <= f.date) as splits_recorded,
                   f.looks_adjusted
            from flagged as f
            """,
            guard="select null::date where false",
        ),
    }


# Bars that look like a file of adjusted closes rather than raw bars: over the last
# ADJUSTED_LOOKBACK_DAYS calendar days (at least ADJUSTED_MIN_BARS bars), open = high = low =
# close on half the days or more, or one volume figure throughout.
ADJUSTED_LOOKBACK_DAYS = 90
ADJUSTED_MIN_BARS = 20


def _gxe() -> Any:
    import great_expectations.expectations as gxe

    return gxe


# Features whose values must exist for every name in the universe, and features that must
# vary across names on a session (a constant column means a broken upstream join).
REQUIRED_FEATURES = ("reversal_1d", "momentum_21d", "volatility_20d", "volume_zscore_20d")
VARYING_FEATURES = ("momentum_21d", "volatility_20d", "reversal_5d", "rsi_14d")
RANK_FEATURES = (
    "momentum_12_1_rank",
    "momentum_63d_rank",
    "reversal_5d_rank",
    "volatility_60d_rank",
    "rsi_14d_rank",
)
FINITE_LIMIT = 1e9


def _bool_true(column: str) -> Callable[[QualitySettings, date], Any]:
    return lambda q, d: _gxe().ExpectColumnValuesToBeInSet(column=column, value_set=[True])


def checks(feature_columns: tuple[str, ...] = ()) -> list[Check]:
    """Every check, in the order reports list them.

    Parameters
    ----------
    feature_columns : tuple of str
        Numeric columns of ``marts.features``; each gets a finiteness check.
    """
    found = [
        Check(
            "raw_bars.schema",
            "raw_bars_session",
            "blocking",
            "raw bars have exactly the expected columns",
            lambda q, d: _gxe().ExpectTableColumnsToMatchSet(
                column_set=[
                    "symbol", "date", "provider", "open", "high", "low", "close", "volume",
                    "prices_finite", "prices_positive", "ohlc_consistent",
                    "volume_non_negative", "duplicate_count", "previous_close", "log_return",
                    "recent_volatility", "jump_sigmas", "explained_by_action",
                ],
                exact_match=True,
            ),
        ),
        Check(
            "raw_bars.one_row_per_symbol_and_date",
            "raw_bars_session",
            "blocking",
            "one bar per (symbol, date) across providers",
            lambda q, d: _gxe().ExpectColumnValuesToBeBetween(
                column="duplicate_count", min_value=1, max_value=1
            ),
        ),
        Check(
            "raw_bars.prices_finite",
            "raw_bars_session",
            "blocking",
            "open, high, low and close are finite numbers (no NaN or infinity)",
            _bool_true("prices_finite"),
        ),
        Check(
            "raw_bars.prices_positive",
            "raw_bars_session",
            "blocking",
            "open, high, low and close are above zero",
            _bool_true("prices_positive"),
        ),
        Check(
            "raw_bars.ohlc_consistent",
            "raw_bars_session",
            "blocking",
            "low <= open, close <= high",
            _bool_true("ohlc_consistent"),
        ),
        Check(
            "raw_bars.volume_non_negative",
            "raw_bars_session",
            "blocking",
            "volume >= 0",
            _bool_true("volume_non_negative"),
        ),
        Check(
            "raw_bars.no_unexplained_jump",
            "raw_bars_session",
            "blocking",
            "close-to-close move within max_jump_sigmas x recent volatility, "
            "after adding back the day's split and dividend",
            lambda q, d: _gxe().ExpectColumnValuesToBeBetween(
                column="jump_sigmas", max_value=q.max_jump_sigmas
            ),
        ),
        Check(
            "raw_bars.universe_coverage",
            "raw_bars_coverage",
            "blocking",
            "at least min_coverage of the names listed on the date have a bar",
            lambda q, d: _gxe().ExpectColumnValuesToBeInSet(
                column="has_bar", value_set=[True], mostly=q.min_coverage
            ),
        ),
        Check(
            "raw_bars.every_listed_name_present",
            "raw_bars_coverage",
            "warning",
            "every name listed on the date has a bar",
            _bool_true("has_bar"),
        ),
        Check(
            "positions.held_symbol_has_bar",
            "held_bars_coverage",
            "warning",
            "every symbol held in the books has a bar on the date (else it is marked at a stale "
            "price, and closed after close_after_missing_sessions sessions without one)",
            _bool_true("has_bar"),
        ),
        Check(
            "raw_bars.look_unadjusted",
            "raw_bars_history",
            "warning",
            "bars look raw: not open = high = low = close on half the recent days, and not one "
            "constant volume (the marks of adjusted closes filled into every column; the "
            "pipeline expects unadjusted prices and volumes with splits in corporate actions)",
            lambda q, d: _gxe().ExpectColumnValuesToBeInSet(
                column="looks_adjusted", value_set=[False]
            ),
        ),
        Check(
            "raw_bars.feed_not_stale",
            "raw_bars_freshness",
            "blocking",
            "the newest bar is on the session being run",
            lambda q, d: _gxe().ExpectColumnMaxToBeBetween(
                column="newest_date", min_value=d, max_value=d
            ),
        ),
        Check(
            "universe.not_empty",
            "universe_features_coverage",
            "blocking",
            "the universe has tradable names on the date",
            lambda q, d: _gxe().ExpectTableRowCountToBeBetween(min_value=1),
        ),
        Check(
            "universe.features_present",
            "universe_features_coverage",
            "blocking",
            "at least min_feature_coverage of the tradable names have a features row",
            lambda q, d: _gxe().ExpectColumnValuesToBeInSet(
                column="has_features", value_set=[True], mostly=q.min_feature_coverage
            ),
        ),
    ]
    for column in REQUIRED_FEATURES:
        found.append(
            Check(
                f"features.{column}.not_null",
                "features_session",
                "blocking",
                f"{column} is present for every name in the universe",
                lambda q, d, c=column: _gxe().ExpectColumnValuesToNotBeNull(column=c),
            )
        )
    for column in VARYING_FEATURES:
        found.append(
            Check(
                f"features.{column}.varies",
                "features_session",
                "blocking",
                f"{column} is not the same for every name",
                lambda q, d, c=column: _gxe().ExpectColumnStdevToBeBetween(
                    column=c, min_value=1e-12, strict_min=True
                ),
            )
        )
    for column in RANK_FEATURES:
        found.append(
            Check(
                f"features.{column}.in_unit_interval",
                "features_session",
                "blocking",
                f"{column} is a percentile rank in [0, 1]",
                lambda q, d, c=column: _gxe().ExpectColumnValuesToBeBetween(
                    column=c, min_value=0, max_value=1
                ),
            )
        )
    found.append(
        Check(
            "features.rsi_14d.in_range",
            "features_session",
            "blocking",
            "RSI is in [0, 100]",
            lambda q, d: _gxe().ExpectColumnValuesToBeBetween(
                column="rsi_14d", min_value=0, max_value=100
            ),
        )
    )
    for column in feature_columns:
        found.append(
            Check(
                f"features.{column}.finite",
                "features_session",
                "blocking",
                f"{column} has no infinite or NaN values",
                lambda q, d, c=column: _gxe().ExpectColumnValuesToBeBetween(
                    column=c, min_value=-FINITE_LIMIT, max_value=FINITE_LIMIT
                ),
            )
        )
    return found
