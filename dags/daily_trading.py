"""
### daily_trading

One run per trading session of `QUANT_EXCHANGE` (XNYS by default), `QUANT_RUN_AFTER_CLOSE`
after its close (timetable `plugins/trading_calendar.py`: no runs on weekends or holidays,
early closes respected). Stages, each a task calling one `quant` function with the session:

`ingest_bars` -> `dbt` (one `dbt build` task per model: the model, then its tests) -> `data_quality` (blocking
gates) -> `retrain_model` (when due) -> `predict` -> `optimize_portfolio` -> `generate_orders`
-> `pretrade_check` (risk sidecar) -> `submit_orders` -> `reconcile` -> `report`.

A failed data-quality gate stops the run before any model, weight or order. Backfills and
runs of past sessions fill with the built-in simulator on an account of their own and never
reach a broker. **Params** (trigger with config): `dry_run` (generate and check, submit
nothing), `broker`, `optimizer`, `symbols` (restrict the portfolio; empty = universe),
`force_retrain`; any other conf key is refused. Links on each run: *Run report* and *Data quality*.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, Param, dag, task
from trading_calendar import TradingSessionTimetable

from quant.config import PORTFOLIO_METHODS, get_settings
from quant.orchestration import (
    current_run,
    dbt_env,
    dbt_task_group,
    dbt_var,
    on_run_failure,
    on_task_failure,
)

FEATURES = Asset("quant_marts_features")
TARGET_WEIGHTS = Asset("quant_target_weights")
_SETTINGS = get_settings()  # the environment only: no database at parse time
NETWORK = {"retries": 3, "retry_delay": timedelta(seconds=30), "retry_exponential_backoff": True}
ONCE = {"retries": 0}  # deterministic failures (a failed gate, a refused order) are not retried

PARAMS = {
    "dry_run": Param(False, type="boolean", description="generate and check orders, submit none"),
    "broker": Param(None, type=["null", "string"], enum=[None, "sim", "alpaca", "ibkr"],
                    description="broker for this run (default QUANT_BROKER); backfills use sim"),
    "optimizer": Param(None, type=["null", "string"], enum=[None, *PORTFOLIO_METHODS],
                       description="portfolio method (default QUANT_PORTFOLIO__OPTIMIZER)"),
    "symbols": Param([], type="array", items={"type": "string", "pattern": "^[A-Z0-9.\\-]{1,12}$"},
                     description="restrict the portfolio to these symbols; empty = universe"),
    "force_retrain": Param(False, type="boolean", description="retrain the model now"),
}


@dag(
    dag_id="daily_trading",
    schedule=TradingSessionTimetable(_SETTINGS.exchange, _SETTINGS.run_after_close),
    start_date=pendulum.datetime(_SETTINGS.start_date.year, _SETTINGS.start_date.month,
                                 _SETTINGS.start_date.day, tz="UTC"),  # QUANT_START_DATE
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "quant", "retries": 1, "retry_delay": timedelta(minutes=1),
                  "on_failure_callback": on_task_failure},
    params=PARAMS,
    user_defined_macros={"dbt_env": dbt_env, "dbt_var": dbt_var},
    on_failure_callback=on_run_failure,
    tags=["trading", "daily"],
    doc_md=__doc__,
)
def daily_trading() -> None:
    @task(**NETWORK)
    def ingest_bars() -> dict:
        from quant.data import ingest_bars as ingest

        return ingest(current_run().session).to_dict()

    @task(outlets=[FEATURES], **ONCE)
    def data_quality() -> dict:
        from quant.quality import run_data_quality

        run = current_run()
        return run_data_quality(run.session, run_id=run.run_id, dag_id=run.dag_id).summary()

    @task(**ONCE)
    def retrain_model() -> dict:
        from quant.model import retrain_model as retrain

        run = current_run()
        return retrain(run, force=bool(run.params.get("force_retrain")))

    @task(**ONCE)
    def predict() -> dict:
        from quant.model import predict as score

        return score(current_run())

    @task(outlets=[TARGET_WEIGHTS], **ONCE)
    def optimize_portfolio() -> dict:
        from quant.portfolio import optimize_portfolio as optimize

        run = current_run()
        return optimize(run, optimizer=run.params.get("optimizer"),
                        symbols=run.params.get("symbols") or None)

    @task(**ONCE)
    def generate_orders() -> dict:
        from quant.execution import generate_orders as generate

        return generate(current_run(credentials=True))

    @task(**ONCE)
    def pretrade_check() -> dict:
        from quant.execution import pretrade_check as check

        return check(current_run(credentials=True))

    @task(**NETWORK)
    def submit_orders() -> dict:
        from quant.exceptions import TradingHaltedError
        from quant.execution import submit_orders as submit
        from quant.orchestration import fail_without_retry

        with fail_without_retry(TradingHaltedError):
            return submit(current_run(credentials=True))

    @task(**NETWORK)
    def reconcile() -> dict:
        from quant.exceptions import ReconciliationError
        from quant.execution import reconcile as reconcile_book
        from quant.orchestration import fail_without_retry

        with fail_without_retry(ReconciliationError):
            return reconcile_book(current_run(credentials=True))

    @task(**ONCE)
    def report(stages: dict) -> str:
        from quant.orchestration import task_timings
        from quant.report import write_run_report

        run = current_run()
        return str(write_run_report(dag_id=run.dag_id, run_id=run.run_id, session=run.session,
                                    stages=stages, run_type=run.run_type,
                                    task_timings=task_timings(run.dag_id, run.run_id),
                                    dry_run=bool(run.params.get("dry_run"))))

    ingested = ingest_bars()
    dbt = dbt_task_group()
    quality = data_quality()
    ingested >> dbt >> quality
    retrained = retrain_model()
    quality >> retrained
    scored = predict()
    retrained >> scored
    weights = optimize_portfolio()
    scored >> weights
    orders = generate_orders()
    weights >> orders
    checked = pretrade_check()
    orders >> checked
    submitted = submit_orders()
    checked >> submitted
    reconciled = reconcile()
    submitted >> reconciled
    report({"ingest_bars": ingested, "data_quality": quality, "retrain_model": retrained,
            "predict": scored, "optimize_portfolio": weights, "generate_orders": orders,
            "pretrade_check": checked, "submit_orders": submitted, "reconcile": reconciled})


daily_trading()
