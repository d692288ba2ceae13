"""The backtest's data-quality gate: the DAG's ``data_quality`` task for each session.

A ``daily_trading`` run stops at its ``data_quality`` task when a blocking check
fails; the backtest runs the same function (:func:`quant.quality.run_data_quality`)
on each session first and stops there too, or, when asked to continue, records the
failures and trades the session anyway.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from quant.backtest._session import Clock
from quant.exceptions import BacktestError
from quant.pipeline import RunContext

__all__ = ["QUALITY_COLUMNS", "QualityGate"]

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

    def check(self, run: RunContext, clock: Clock) -> None:
        """The gate for ``run.session``, results recorded under ``run.run_id``."""
        from quant.quality import DataQualityError

        day = run.session
        try:
            clock.run("data_quality", day, _gate, run)
        except BacktestError as exc:
            cause = exc.__cause__
            if self.stop or not isinstance(cause, DataQualityError) or cause.report is None:
                raise
            self.failures += [(day, r.name, r.describe()) for r in cause.report.blocking_failures]

    def frame(self) -> pd.DataFrame:
        """One row per failed blocking check: ``session``, ``check``, ``detail``."""
        return pd.DataFrame(self.failures, columns=QUALITY_COLUMNS)


def _gate(run: RunContext) -> None:
    from quant.quality import run_data_quality

    # the same checks as the DAG's; no Data Docs for every session of a range (rendering
    # them is half the gate's time): the results are in ops.dq_results and the output
    run_data_quality(run.session, run_id=str(run.run_id), dag_id=str(run.dag_id),
                     settings=run.settings, data_docs=False)
