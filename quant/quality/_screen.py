"""Screen a range of sessions for the data-quality gate in a few statements.

The backtest runs the DAG's gate (:func:`quant.quality.run_data_quality`) before
each session. Run as it is for every session, Great Expectations' per-run work
(building suites, resolving metrics, one query per metric on an asset that
recomputes the bar checks each time) costs seconds a session: hours over years of
sessions. The screen evaluates the same blocking checks on the same SQL for a whole
range at once:

* each asset's query (:func:`quant.quality._checks.session_assets`) runs once per
  session inside one statement, a lateral join on the list of sessions, into a
  scratch table with the session as its first column; the bar checks, whose window
  functions cost a third of a second a call, run once over the range
  (:class:`quant.quality._checks.RangeForm`), and the sessions on which that could
  differ from the session's own query (a symbol's recent bars reaching back past its
  window) are flagged;
* the row-wise checks (values in a set, between bounds, not null) run through Great
  Expectations on those tables with the session among the index columns, so that
  each offending row names its session: the same expectations, evaluated by the
  same SQL engine on the same rows;
* the checks on a session's aggregate (its row count, a column's maximum or
  standard deviation, a share with ``mostly``, the set of columns) are evaluated on
  per-session aggregates in SQL, erring on the side of flagging (a close call is
  flagged).

A flagged session runs the full gate, which alone decides whether it stops; a
session the screen does not flag would pass every blocking check
(``tests/integration/test_quality_screen.py`` compares the two on planted
failures of every kind). Warnings are screened too: the screen keeps each session's
failed warnings (with their offending rows) for the backtest to record and report;
the check on the books' held positions is left out, as the positions are known only
session by session.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

from quant.config import Settings
from quant.db import connect
from quant.quality._checks import Asset, Check, RangeForm, checks, range_forms, session_assets
from quant.quality._run import (
    CheckResult,
    _context,
    _datasource,
    _feature_columns,
    _jsonable,
    _severity,
    _validate,
)

__all__ = ["QualityScreen", "screen_sessions"]

log = logging.getLogger(__name__)

SESSION = "dq_session"
_SCHEMA = "dq_screen"
_RANGE = "dq_range"  # the list of sessions in the outer query (no asset uses the name)
_ROW_WISE = {
    "ExpectColumnValuesToBeInSet",
    "ExpectColumnValuesToBeBetween",
    "ExpectColumnValuesToNotBeNull",
}
_CLOSE = 1e-9  # relative margin within which an aggregate counts as a close call


@dataclass(frozen=True)
class QualityScreen:
    """What the screen found over a range of sessions."""

    sessions: tuple[date, ...]
    flagged: dict[date, tuple[str, ...]]
    """The sessions on which a blocking check may fail, with those checks."""
    warnings: dict[date, tuple[CheckResult, ...]]
    """The failed warnings of each session (checks on the books' positions excepted)."""

    def needs_gate(self, session: date) -> bool:
        """Whether ``session`` must run the full gate (flagged, or outside the range)."""
        return session in self.flagged or session not in self.sessions


def screen_sessions(sessions: Sequence[date], settings: Settings) -> QualityScreen:
    """Screen ``sessions`` (the marts built over them) with the data-quality checks.

    Parameters
    ----------
    sessions : sequence of date
        The sessions of the range, in order.
    settings : Settings
        Database and quality thresholds (``quality.warn_only`` demotes a check to a
        warning).
    """
    days = tuple(sessions)
    by_asset: dict[str, list[Check]] = {}
    for check in checks(_feature_columns(settings)):
        by_asset.setdefault(check.asset, []).append(check)
    by_asset.pop("held_bars_coverage", None)  # the books' positions: known session by session
    flagged: dict[date, set[str]] = {}
    warned: dict[date, list[CheckResult]] = {}
    token = uuid.uuid4().hex[:8]
    tables: list[str] = []
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(f"create schema if not exists {_SCHEMA}")
        ctx = _context(None)
        datasource = _datasource(ctx, settings)
        forms = range_forms(settings.quality)
        for name, asset in session_assets(f"{_RANGE}.{SESSION}", settings.quality).items():
            if name not in by_asset:
                continue
            table = f"{_SCHEMA}.{name}_{token}"
            tables.append(table)
            for day in _materialise(conn, table, asset, forms.get(name), days):
                flagged.setdefault(day, set()).add(f"{name} (history gap)")
            row_wise, aggregate = _split(by_asset[name], settings, days)
            if row_wise:
                screened = Asset(name, asset.suite, f"select * from {table}",
                                 (SESSION, *asset.index_columns))
                for result in _validate(ctx, datasource, screened, row_wise, settings,
                                        days[-1], data_docs=False):
                    for day, found in _by_session(result, days).items():
                        _note(flagged, warned, day, found)
            for check in aggregate:
                for day, found in _screen_aggregate(conn, table, check, settings, days).items():
                    _note(flagged, warned, day, found)
            log.debug("data-quality screen: %s done", name)
    finally:
        try:
            with conn, conn.cursor() as cur:
                for table in tables:
                    cur.execute(f"drop table if exists {table}")
        finally:
            conn.close()
    return QualityScreen(
        days,
        {d: tuple(sorted(flagged[d])) for d in sorted(flagged)},
        {d: tuple(warned[d]) for d in sorted(warned)},
    )


def _note(flagged: dict[date, set[str]], warned: dict[date, list[CheckResult]], day: date,
          found: CheckResult) -> None:
    if found.severity == "blocking":
        flagged.setdefault(day, set()).add(found.name)
    else:
        warned.setdefault(day, []).append(found)


def _materialise(conn: Any, table: str, asset: Asset, form: RangeForm | None,
                 days: Sequence[date]) -> list[date]:
    """The asset's rows of every session into ``table``; the sessions its range form
    may get wrong (none without one)."""
    with conn, conn.cursor() as cur:
        if form is None:
            cur.execute(
                f"create unlogged table {table} as select {_RANGE}.{SESSION}, a.* "
                f"from unnest(%s::date[]) as {_RANGE} ({SESSION}) "
                f"cross join lateral ({asset.sql}) as a",
                (list(days),),
            )
            return []
        sql, guard, values = form.bind(days, SESSION)
        cur.execute(f"create unlogged table {table} as " + sql, values)
        cur.execute(guard, values)
        return [day for (day,) in cur.fetchall()]


def _split(
    found: list[Check], settings: Settings, days: Sequence[date]
) -> tuple[list[Check], list[Check]]:
    """Row-wise checks (one expectation for every session, no ``mostly``) and the rest."""
    row_wise, aggregate = [], []
    for check in found:
        first = check.build(settings.quality, days[0])
        same = first.configuration == check.build(settings.quality, days[-1]).configuration
        mostly = getattr(first, "mostly", None)
        if type(first).__name__ in _ROW_WISE and same and (mostly is None or mostly >= 1):
            row_wise.append(check)
        else:
            aggregate.append(check)
    return row_wise, aggregate


def _by_session(result: CheckResult, days: Sequence[date]) -> dict[date, CheckResult]:
    """A failed row-wise result over the range as each session's own: its offending
    rows; every session when the result cannot say which."""
    if result.success:
        return {}
    rows: dict[date, list[dict[str, Any]]] = {}
    for row in result.unexpected:
        day = row.get(SESSION)
        if day is None:
            rows = {}
            break
        day = day if isinstance(day, date) else date.fromisoformat(str(day)[:10])
        rows.setdefault(day, []).append({k: v for k, v in row.items() if k != SESSION})
    if result.error or not rows:
        return {d: result for d in days}
    return {d: replace(result, observed_value=None, unexpected=found) for d, found in rows.items()}


def _per_session(conn: Any, table: str, aggregate: str, days: Sequence[date],
                 args: tuple = ()) -> dict[date, Any]:
    """``aggregate`` (an SQL expression over the table's rows) for every session of
    ``days``, sessions without a row included."""
    with conn, conn.cursor() as cur:
        cur.execute(
            f"select s.{SESSION}, {aggregate} from unnest(%s::date[]) as s ({SESSION}) "
            f"left join {table} as t on t.{SESSION} = s.{SESSION} group by s.{SESSION}",
            (*args, list(days)),
        )
        return dict(cur.fetchall())


def _outside(value: Any, low: Any, high: Any, *, strict_low: bool = False,
             strict_high: bool = False) -> bool:
    """Whether ``value`` fails ``[low, high]`` or is a close call (for numbers)."""
    if value is None:
        return True
    if isinstance(value, float) and isinstance(low, (int, float)):
        low = low + abs(low) * _CLOSE + (_CLOSE if strict_low else 0.0)
    if isinstance(value, float) and isinstance(high, (int, float)):
        high = high - abs(high) * _CLOSE - (_CLOSE if strict_high else 0.0)
    below = low is not None and (value <= low if strict_low else value < low)
    above = high is not None and (value >= high if strict_high else value > high)
    return below or above


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _column(expectation: Any) -> str:
    return '"' + str(expectation.column).replace('"', '""') + '"'


def _screen_aggregate(conn: Any, table: str, check: Check, settings: Settings,
                      days: Sequence[date]) -> dict[date, CheckResult]:
    """The sessions on which ``check``, an expectation on a session's aggregate, may fail,
    with the aggregate seen."""
    first = check.build(settings.quality, days[0])
    kind = type(first).__name__

    def failed(value: Any) -> CheckResult:
        return CheckResult(check.name, "", kind, _severity(check, settings), False, value)

    if kind == "ExpectTableColumnsToMatchSet":  # the asset query's columns, every session's
        with conn, conn.cursor() as cur:
            cur.execute(f"select * from {table} limit 0")
            columns = {c.name for c in cur.description} - {SESSION}
        wanted = set(first.column_set or ())
        wrong = columns != wanted if first.exact_match else not wanted <= columns
        return {d: failed(sorted(columns)) for d in days} if wrong else {}
    handler = _AGGREGATES.get(kind)
    if handler is None:
        log.warning("data-quality screen: %s (%s) is not screened; every session runs the "
                    "full gate for it", check.name, kind)
        return {d: failed(None) for d in days}
    sql, args, fails = handler(first)
    values = _per_session(conn, table, sql, days, args)
    return {d: failed(_jsonable(values.get(d))) for d in days
            if fails(values.get(d), check.build(settings.quality, d))}


def _share_below(share: Any, expectation: Any) -> bool:
    # no row with a value: Great Expectations counts a map expectation on no rows a success
    return share is not None and _outside(float(share), expectation.mostly, None)


def _in_set_share(e: Any) -> tuple[str, tuple, Callable[[Any, Any], bool]]:
    col = _column(e)
    sql = (f"avg(case when t.{col} = any(%s) then 1.0 else 0.0 end) "
           f"filter (where t.{col} is not null)")
    return sql, (list(e.value_set),), _share_below


def _between_share(e: Any) -> tuple[str, tuple, Callable[[Any, Any], bool]]:
    # the share of non-null values inside the bounds; any bound ignored stays wide
    col = _column(e)
    low = "true" if e.min_value is None else f"t.{col} >= %s"
    high = "true" if e.max_value is None else f"t.{col} <= %s"
    args = tuple(v for v in (e.min_value, e.max_value) if v is not None)
    sql = (f"avg(case when {low} and {high} then 1.0 else 0.0 end) "
           f"filter (where t.{col} is not null)")
    return sql, args, _share_below


def _not_null_share(e: Any) -> tuple[str, tuple, Callable[[Any, Any], bool]]:
    col = _column(e)
    sql = f"avg(case when t.{col} is not null then 1.0 else 0.0 end) filter (where t.{SESSION} is not null)"
    return sql, (), _share_below


def _row_count(e: Any) -> tuple[str, tuple, Callable[[Any, Any], bool]]:
    return f"count(t.{SESSION})", (), lambda n, x: _outside(n, x.min_value, x.max_value)


def _column_max(e: Any) -> tuple[str, tuple, Callable[[Any, Any], bool]]:
    return f"max(t.{_column(e)})", (), lambda v, x: _outside(
        v, x.min_value, x.max_value, strict_low=bool(x.strict_min),
        strict_high=bool(x.strict_max))


def _column_stdev(e: Any) -> tuple[str, tuple, Callable[[Any, Any], bool]]:
    return f"stddev_samp(t.{_column(e)})", (), lambda v, x: _outside(
        _float(v), x.min_value, x.max_value,
        strict_low=bool(x.strict_min), strict_high=bool(x.strict_max))


_AGGREGATES: dict[str, Callable[[Any], tuple[str, tuple, Callable[[Any, Any], bool]]]] = {
    "ExpectColumnValuesToBeInSet": _in_set_share,
    "ExpectColumnValuesToBeBetween": _between_share,
    "ExpectColumnValuesToNotBeNull": _not_null_share,
    "ExpectTableRowCountToBeBetween": _row_count,
    "ExpectColumnMaxToBeBetween": _column_max,
    "ExpectColumnStdevToBeBetween": _column_stdev,
}
