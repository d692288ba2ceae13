"""
### daily_trading

One run per trading session, after the close:

1. **ingest_bars** loads the session's daily bars (and any missing history in
   the trailing window) from the configured market-data provider into
   `raw.bars`; idempotent, so reruns and backfills change nothing twice.
2. **dbt_build** builds and tests the dbt models in PostgreSQL.
3. **report** writes the run's HTML report under `QUANT_HOME/reports`.

Every task calls one function of the `quant` package with the run's session
date; the same functions back the CLI and the tests.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, get_current_context, task

DEFAULT_ARGS = {
    "owner": "quant",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
}


def _session() -> str:
    """ISO date of the trading session this run is for (skips non-sessions)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from quant.calendar import NotASessionError, get_calendar
    from quant.config import get_settings

    logical_date = get_current_context()["logical_date"]
    try:
        day = get_calendar(get_settings().exchange).session_for_logical_date(logical_date)
    except NotASessionError as exc:
        raise AirflowSkipException(str(exc)) from exc
    return day.isoformat()


@dag(
    dag_id="daily_trading",
    schedule="0 22 * * 1-5",
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["trading", "daily"],
    doc_md=__doc__,
)
def daily_trading() -> None:
    @task
    def ingest_bars() -> dict:
        from datetime import date

        from quant.data import ingest_bars as ingest

        return ingest(date.fromisoformat(_session())).to_dict()

    @task(retries=0)
    def dbt_build(ingested: dict) -> dict:
        from quant.transform import run_dbt

        result = run_dbt(["build", "--select", "staging"])
        return {"models built": result.models_built, "tests passed": result.tests_passed}

    @task(retries=0)
    def report(ingested: dict, transformed: dict) -> str:
        from datetime import date

        from quant.report import write_run_report

        context = get_current_context()
        path = write_run_report(
            dag_id=context["dag"].dag_id,
            run_id=context["run_id"],
            session=date.fromisoformat(ingested["logical_date"]),
            stages={"ingest_bars": ingested, "dbt_build": transformed},
        )
        return str(path)

    ingested = ingest_bars()
    transformed = dbt_build(ingested)
    report(ingested, transformed)


daily_trading()
