"""
### daily_trading

One run per trading session of the exchange (`QUANT_EXCHANGE`, XNYS by default),
`QUANT_RUN_AFTER_CLOSE` after its close (the trading-session timetable of
`plugins/trading_calendar.py`: no run on weekends or holidays, early closes
respected). The run's logical date is the session's close.

1. **ingest_bars** loads the session's daily bars (and any missing history in
   the trailing window) from the configured market-data provider into
   `raw.bars`; idempotent, so reruns and backfills change nothing twice.
2. **dbt** (a Cosmos task group) builds the dbt project as of the session: one
   task per model (`<model>.run`) with its data and unit tests after it
   (`<model>.test`), rendered from `dbt/target/manifest.json`.
3. **report** writes the run's HTML report under `QUANT_HOME/reports`.

Every task calls the `quant` package with the run's session date; the same
functions back the CLI and the tests. A manual run whose logical date is not a
session is skipped; one triggered without a logical date is for the latest
closed session.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache

import pendulum
from airflow.sdk import dag, get_current_context, task
from cosmos import DbtTaskGroup, ExecutionConfig, ProfileConfig, ProjectConfig, RenderConfig
from cosmos.constants import InvocationMode, LoadMode, TestBehavior
from trading_calendar import TradingSessionTimetable

from quant.config import get_settings
from quant.transform import MANIFEST_COMMAND, dbt_project_dir, manifest_path

DEFAULT_ARGS = {
    "owner": "quant",
    "retries": 2,
    "retry_delay": timedelta(minutes=1),
    "retry_exponential_backoff": True,
}

DBT_DIR = dbt_project_dir()
MANIFEST = manifest_path()
if not MANIFEST.exists():
    raise FileNotFoundError(
        f"the dbt manifest {MANIFEST} is missing; build it with `{MANIFEST_COMMAND}`"
    )
DBT_ENV_KEYS = ("DBT_PG_HOST", "DBT_PG_PORT", "DBT_PG_USER", "DBT_PG_PASSWORD", "DBT_PG_DBNAME")
_SETTINGS = get_settings()  # reads the environment only: no database at parse time


def _session() -> str:
    """ISO date of the trading session this run is for (skips non-sessions)."""
    from airflow.sdk.exceptions import AirflowSkipException

    from quant.calendar import NotASessionError, get_calendar

    context = get_current_context()
    cal = get_calendar(get_settings().exchange)
    try:
        day = cal.session_for_run(context["logical_date"], context["dag_run"].run_after)
    except NotASessionError as exc:
        raise AirflowSkipException(str(exc)) from exc
    return day.isoformat()


@cache
def _dbt_environment() -> dict[str, str]:
    from quant.transform import dbt_environment

    return dbt_environment()


def dbt_env(key: str) -> str:
    """Template macro: one ``DBT_PG_*`` variable, resolved when the task runs."""
    return _dbt_environment()[key]


def dbt_var(key: str, logical_date: pendulum.DateTime | None, dag_run: object) -> str:
    """Template macro: one dbt variable of the run's session (``run_date``, ...)."""
    from quant.calendar import get_calendar
    from quant.transform import dbt_vars

    settings = get_settings()
    cal = get_calendar(settings.exchange)
    session = cal.session_for_run(logical_date, dag_run.run_after)
    return dbt_vars(session, settings)[key]


@dag(
    dag_id="daily_trading",
    schedule=TradingSessionTimetable(_SETTINGS.exchange, _SETTINGS.run_after_close),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    user_defined_macros={"dbt_env": dbt_env, "dbt_var": dbt_var},
    tags=["trading", "daily"],
    doc_md=__doc__,
)
def daily_trading() -> None:
    @task
    def ingest_bars() -> dict:
        from datetime import date

        from quant.data import ingest_bars as ingest

        return ingest(date.fromisoformat(_session())).to_dict()

    dbt = DbtTaskGroup(
        group_id="dbt",
        project_config=ProjectConfig(
            dbt_project_path=DBT_DIR, manifest_path=MANIFEST, install_dbt_deps=False
        ),
        profile_config=ProfileConfig(
            profile_name="quant",
            target_name="default",
            profiles_yml_filepath=DBT_DIR / "profiles.yml",
        ),
        render_config=RenderConfig(
            load_method=LoadMode.DBT_MANIFEST,
            test_behavior=TestBehavior.AFTER_EACH,
            emit_datasets=False,  # a Unix-socket host makes no valid asset URI
        ),
        execution_config=ExecutionConfig(invocation_mode=InvocationMode.DBT_RUNNER),
        operator_args={
            "install_deps": False,
            "retries": 0,
            "env": {key: "{{ dbt_env('" + key + "') }}" for key in DBT_ENV_KEYS},
            "vars": {
                key: "{{ dbt_var('" + key + "', logical_date, dag_run) }}"
                for key in ("run_date", "provider_priority")
            },
        },
    )

    @task(retries=0)
    def report(ingested: dict) -> str:
        from datetime import date

        from quant.report import write_run_report
        from quant.transform import mart_summary

        context = get_current_context()
        session = date.fromisoformat(ingested["logical_date"])
        path = write_run_report(
            dag_id=context["dag"].dag_id,
            run_id=context["run_id"],
            session=session,
            stages={"ingest_bars": ingested, "dbt": mart_summary(session)},
        )
        return str(path)

    ingested = ingest_bars()
    ingested >> dbt
    dbt >> report(ingested)


daily_trading()
