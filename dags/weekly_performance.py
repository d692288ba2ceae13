"""
### weekly_performance

The trailing trading week of `daily_trading` on one page: returns (the account's and the
target portfolio's), turnover, hit rate of the predictions against the realised returns,
and orders with rejections by reason code.

Scheduled on the assets `daily_trading` updates: it runs once both the features mart
(`quant_marts_features`, after `data_quality`) and the target weights
(`quant_target_weights`, after `optimize_portfolio`) have been updated since its last run.
The page is written to `QUANT_HOME/reports/weekly_performance/<session>/index.html`
(`quant.report.write_performance_report`), for the latest session with target weights.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Asset, dag, task

FEATURES = Asset("quant_marts_features")
TARGET_WEIGHTS = Asset("quant_target_weights")


@dag(
    dag_id="weekly_performance",
    schedule=(FEATURES & TARGET_WEIGHTS),
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=1,
    default_args={"owner": "quant", "retries": 1, "retry_delay": timedelta(minutes=1)},
    tags=["reports", "weekly"],
    doc_md=__doc__,
)
def weekly_performance() -> None:
    @task
    def performance_report() -> str:
        from quant.report import write_performance_report

        return str(write_performance_report())

    performance_report()


weekly_performance()
