"""Run the data-quality gates for a session with Great Expectations.

Every check of :mod:`quant.quality._checks` is evaluated against PostgreSQL;
all results go to ``ops.dq_results`` and into Data Docs (the data-quality
report) under ``QUANT_HOME/reports/<dag_id>/runs/<run_key>/data_quality``, one
folder per run (see :mod:`quant.report`). When a blocking check fails,
:class:`DataQualityError` is raised after everything is recorded, naming each
failed check with the offending symbols and values, so the task fails and
nothing downstream runs for that session.
"""

from __future__ import annotations

import json
import logging
import math
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from quant.config import Settings, get_settings
from quant.db import connect, database_url
from quant.exceptions import QuantError
from quant.quality._checks import Asset, Check, assets, checks

__all__ = [
    "CheckResult",
    "DataQualityError",
    "QualityReport",
    "data_docs_dir",
    "record_results",
    "run_data_quality",
]

log = logging.getLogger(__name__)

_NUMERIC = ("double precision", "numeric", "real", "integer", "bigint", "smallint")
_KEYS = {"symbol", "session_date", "sector", "is_in_universe"}
_SHOWN = 10


class DataQualityError(QuantError):
    """Raised when a blocking data-quality check fails; the message names each failure."""

    def __init__(self, message: str, report: QualityReport | None = None) -> None:
        super().__init__(message)
        self.report = report
        """The run's results (every check), when the error comes from :func:`run_data_quality`."""


@dataclass(frozen=True, slots=True)
class CheckResult:
    """Outcome of one check."""

    name: str
    suite: str
    expectation: str
    severity: str
    success: bool
    observed_value: Any
    unexpected: list[dict[str, Any]] = field(default_factory=list)
    error: str | None = None

    def describe(self) -> str:
        """One line: the check, what was seen, and the offending rows."""
        parts = [f"{self.name} ({self.severity})"]
        if self.error:
            parts.append(f"could not be evaluated: {self.error}")
        if self.observed_value is not None:
            parts.append(f"observed {_short(self.observed_value)}")
        if self.unexpected:
            shown = ", ".join(_row(r) for r in self.unexpected[:_SHOWN])
            more = len(self.unexpected) - _SHOWN
            parts.append(f"{len(self.unexpected)} offending: {shown}" + (f" (+{more} more)" if more > 0 else ""))
        return ": ".join(parts[:1]) + ": " + "; ".join(parts[1:]) if len(parts) > 1 else parts[0]


@dataclass(frozen=True, slots=True)
class QualityReport:
    """Outcome of a data-quality run."""

    session: date
    run_id: str
    results: tuple[CheckResult, ...]
    data_docs: Path | None
    """The Data Docs index; None when run without them (the backtest's gate)."""

    @property
    def blocking_failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "blocking"]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "warning"]

    def summary(self) -> dict[str, Any]:
        """JSON-serialisable figures for XCom and the run report."""
        return {
            "session": self.session.isoformat(),
            "checks": len(self.results),
            "passed": sum(r.success for r in self.results),
            "blocking failures": [r.describe() for r in self.blocking_failures],
            "warnings": [r.describe() for r in self.warnings],
            "data docs": None if self.data_docs is None else str(self.data_docs),
        }


def _short(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, str) else value
    return text if len(text) <= 120 else text[:117] + "..."


def _row(row: dict[str, Any]) -> str:
    symbol = row.get("symbol")
    rest = ", ".join(f"{k}={_fmt(v)}" for k, v in row.items() if k != "symbol")
    return f"{symbol} ({rest})" if symbol is not None else rest


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "NaN" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def data_docs_dir(dag_id: str, run_id: str, settings: Settings | None = None) -> Path:
    """Folder of the Data Docs site of ``dag_id``'s run ``run_id``."""
    from quant.run_folders import data_docs_path

    return data_docs_path(dag_id, run_id, settings)


def _feature_columns(settings: Settings) -> tuple[str, ...]:
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(
                """
                select column_name, data_type from information_schema.columns
                where table_schema = 'marts' and table_name = 'features'
                order by ordinal_position
                """
            )
            rows = cur.fetchall()
    finally:
        conn.close()
    return tuple(name for name, dtype in rows if dtype in _NUMERIC and name not in _KEYS)


def _held(session: date, dag_id: str, settings: Settings) -> list[str]:
    """Symbols the DAG's trading account holds in the books (its latest run up to ``session``)."""
    from quant import ledger

    conn = connect(settings)
    try:
        with conn:
            return ledger.held_symbols(conn, dag_id, session)
    finally:
        conn.close()


def _jsonable(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def _context(docs: Path | None) -> Any:
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    try:
        ctx.variables.progress_bars = {"globally": False}
    except Exception:  # noqa: BLE001 - older layouts of the variables object; cosmetic only
        log.debug("could not switch off GX progress bars")
    if docs is None:
        return ctx
    docs.mkdir(parents=True, exist_ok=True)
    ctx.add_data_docs_site(
        site_name="run",
        site_config={
            "class_name": "SiteBuilder",
            "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
            "store_backend": {
                "class_name": "TupleFilesystemStoreBackend",
                "base_directory": str(docs),
            },
        },
    )
    return ctx


def _datasource(ctx: Any, settings: Settings) -> Any:
    """The pipeline's database as a Great Expectations SQL data source of ``ctx``."""
    url = database_url(settings).replace("postgresql://", "postgresql+psycopg2://", 1)
    return ctx.data_sources.add_sql("quant", connection_string=url)


def _validate(
    ctx: Any,
    datasource: Any,
    asset: Asset,
    suite_checks: list[Check],
    settings: Settings,
    session: date,
    data_docs: bool = True,
) -> list[CheckResult]:
    import great_expectations as gx
    from great_expectations.checkpoint import UpdateDataDocsAction

    severity = {c.name: _severity(c, settings) for c in suite_checks}
    suite = gx.ExpectationSuite(name=asset.suite)
    for check in suite_checks:
        expectation = check.build(settings.quality, session)
        expectation.meta = {"check": check.name, "severity": severity[check.name], "description": check.description}
        suite.add_expectation(expectation)
    suite = ctx.suites.add(suite)
    query_asset = datasource.add_query_asset(asset.name, query=asset.sql)
    batch = query_asset.add_batch_definition_whole_table("session")
    definition = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=f"{asset.suite}-{session.isoformat()}", data=batch, suite=suite)
    )
    result_format: dict[str, Any] = {"result_format": "COMPLETE"}
    if asset.index_columns:
        result_format["unexpected_index_column_names"] = list(asset.index_columns)
    checkpoint = ctx.checkpoints.add(
        gx.Checkpoint(
            name=f"checkpoint-{asset.name}",
            validation_definitions=[definition],
            actions=[UpdateDataDocsAction(name="data_docs", site_names=["run"])] if data_docs else [],
            result_format=result_format,
        )
    )
    outcome = checkpoint.run()
    found: list[CheckResult] = []
    for validation in outcome.run_results.values():
        for result in validation.results:
            meta = result.expectation_config.meta or {}
            name = meta.get("check", result.expectation_config.type)
            raw = result.result or {}
            error = None
            info = getattr(result, "exception_info", None) or {}
            if info.get("raised_exception"):
                error = str(info.get("exception_message") or "error").splitlines()[0][:300]
            unexpected = raw.get("unexpected_index_list") or []
            if unexpected and not isinstance(unexpected[0], dict):
                unexpected = [{"value": v} for v in unexpected]
            found.append(
                CheckResult(
                    name=name,
                    suite=asset.suite,
                    expectation=result.expectation_config.type,
                    severity=meta.get("severity", severity.get(name, "blocking")),
                    success=bool(result.success),
                    observed_value=_jsonable(raw.get("observed_value")),
                    unexpected=_jsonable(unexpected),
                    error=error,
                )
            )
    return found


def _severity(check: Check, settings: Settings) -> str:
    return "warning" if check.name in settings.quality.warn_only else check.severity


def record_results(
    run_id: str, session: date, results: Sequence[CheckResult], settings: Settings
) -> None:
    """Store ``results`` as the run's data-quality results (``ops.dq_results``), in place
    of any the run stored before."""
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("delete from ops.dq_results where run_id = %s", (run_id,))
            for r in results:
                cur.execute(
                    """
                    insert into ops.dq_results (run_id, session_date, suite, check_name, expectation,
                                                severity, success, observed_value, unexpected)
                    values (%s, %s, %s, %s, %s, %s, %s, %s, %s)
                    """,
                    (
                        run_id, session, r.suite, r.name, r.expectation, r.severity, r.success,
                        json.dumps({"value": r.observed_value, "error": r.error}),
                        json.dumps(r.unexpected),
                    ),
                )
    finally:
        conn.close()


def run_data_quality(
    session: date,
    *,
    run_id: str,
    dag_id: str = "daily_trading",
    settings: Settings | None = None,
    include_marts: bool = True,
    data_docs: bool = True,
) -> QualityReport:
    """Evaluate every check for ``session``, record and report them.

    Parameters
    ----------
    session : date
        The trading session whose data is checked.
    run_id : str
        The pipeline run (Airflow run id); results are keyed by it.
    dag_id : str
        Where the Data Docs go: ``reports/<dag_id>/runs/<run_key>/data_quality``
        (:func:`data_docs_dir`).
    include_marts : bool
        Also check the features and universe marts (they exist once dbt ran).
    data_docs : bool
        Build the run's Data Docs (rendering them is half the gate's time). The
        backtest's gate runs without them: its results are in ``ops.dq_results``
        and the backtest's output.

    Raises
    ------
    DataQualityError
        At least one blocking check failed; the message names each.
    """
    settings = settings or get_settings()
    docs = data_docs_dir(dag_id, run_id, settings) if data_docs else None
    if docs is not None and docs.exists():  # a retry replaces its Data Docs, as its results
        shutil.rmtree(docs)
    ctx = _context(docs)
    datasource = _datasource(ctx, settings)
    feature_columns = _feature_columns(settings) if include_marts else ()
    all_checks = checks(feature_columns)
    by_asset: dict[str, list[Check]] = {}
    for check in all_checks:
        by_asset.setdefault(check.asset, []).append(check)
    results: list[CheckResult] = []
    for name, asset in assets(session, settings.quality, _held(session, dag_id, settings)).items():
        if name not in by_asset:
            continue
        if not include_marts and asset.suite in ("features", "universe"):
            continue
        results.extend(
            _validate(ctx, datasource, asset, by_asset[name], settings, session, data_docs)
        )
    record_results(run_id, session, results, settings)
    report = QualityReport(
        session, run_id, tuple(results), None if docs is None else docs / "index.html"
    )
    failures = report.blocking_failures
    for warning in report.warnings:
        log.warning("data-quality warning: %s", warning.describe())
    if failures:
        lines = "\n".join(f"  - {r.describe()}" for r in failures)
        raise DataQualityError(
            f"data quality failed for session {session.isoformat()}: "
            f"{len(failures)} blocking check(s) failed\n{lines}\nreport: {report.data_docs or 'ops.dq_results (no Data Docs)'}",
            report,
        )
    return report
