"""The backtest's data-quality gate: the DAG's ``data_quality`` task for each session.

A ``daily_trading`` run stops at its ``data_quality`` task when a blocking check
fails; the backtest runs the same function (:func:`quant.quality.run_data_quality`)
on each session first and stops there too, or, when asked to continue, records the
failures and trades the session anyway.

Run for every session of years, the gate alone would take hours (Great Expectations'
per-run work is seconds). So before the first session the whole range is screened
with the same checks in a few statements (:func:`quant.quality.screen_sessions`); the
full gate runs on the sessions the screen flags, and decides there. A session the
screen does not flag passes every blocking check; its failed warnings (the screen's,
without the check on the books' held symbols) are logged and stored in
``ops.dq_results`` under the session's run, its passed checks are not.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import date
from typing import TYPE_CHECKING

import pandas as pd

from quant.backtest._session import Clock
from quant.exceptions import BacktestError
from quant.pipeline import RunContext

if TYPE_CHECKING:
    from quant.config import Settings
    from quant.quality import CheckResult, QualityReport, QualityScreen

__all__ = ["QUALITY_COLUMNS", "QualityGate"]

log = logging.getLogger(__name__)

QUALITY_COLUMNS = ["session", "check", "detail"]
"""Columns of :attr:`quant.backtest.BacktestResult.quality_failures`."""


class QualityGate:
    """Run each session's data-quality checks; stop at a blocking failure or record it.

    Parameters
    ----------
    stop : bool
        True (the DAG's behaviour): a blocking failure raises :class:`BacktestError`
        naming the session and the failed checks. False: the failures are kept
        (:meth:`frame`) and the session goes on.
    """

    def __init__(self, *, stop: bool = True) -> None:
        self.stop = stop
        self.failures: list[tuple[date, str, str]] = []
        self.screen: QualityScreen | None = None
        self.warned: list[tuple[date, str]] = []
        self.gated: list[date] = []
        """The sessions that ran the full gate."""

    def screen_range(self, sessions: list[date], settings: Settings, clock: Clock) -> None:
        """Screen ``sessions`` (their marts built): only flagged ones run the full gate."""
        from quant.quality import screen_sessions

        self.screen = clock.run("data_quality", sessions[0], screen_sessions, sessions, settings)

    def check(self, run: RunContext, clock: Clock) -> None:
        """The gate for ``run.session``, results recorded under ``run.run_id``."""
        from quant.quality import DataQualityError

        day = run.session
        if self.screen is not None and not self.screen.needs_gate(day):
            self._warn(run, self.screen.warnings.get(day, ()))
            return
        self.gated.append(day)
        try:
            report = clock.run("data_quality", day, _gate, run)
        except BacktestError as exc:
            cause = exc.__cause__
            if self.stop or not isinstance(cause, DataQualityError) or cause.report is None:
                raise
            report = cause.report
            self.failures += [(day, r.name, r.describe()) for r in report.blocking_failures]
        self.warned += [(day, w.name) for w in report.warnings]

    def _warn(self, run: RunContext, warnings: tuple[CheckResult, ...]) -> None:
        """A screened session's failed warnings: logged and stored as its run's results,
        as the DAG's gate does."""
        from quant.quality import record_results

        for warning in warnings:
            log.warning("data-quality warning: %s", warning.describe())
        if warnings:
            record_results(str(run.run_id), run.session, warnings, run.settings)
        self.warned += [(run.session, w.name) for w in warnings]

    def warning_counts(self) -> dict[str, int]:
        """Per failed warning, the sessions it failed on."""
        return dict(sorted(Counter(name for _day, name in self.warned).items()))

    def frame(self) -> pd.DataFrame:
        """One row per failed blocking check: ``session``, ``check``, ``detail``."""
        return pd.DataFrame(self.failures, columns=QUALITY_COLUMNS)


def _gate(run: RunContext) -> QualityReport:
    from quant.quality import run_data_quality

    # the same checks as the DAG's; no Data Docs for every session of a range (rendering
    # them is half the gate's time): the results are in ops.dq_results and the output
    return run_data_quality(run.session, run_id=str(run.run_id), dag_id=str(run.dag_id),
                            settings=run.settings, data_docs=False)
