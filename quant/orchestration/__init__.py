"""The project's one integration with Airflow.

- the Airflow environment (:func:`airflow_environment`): ``AIRFLOW_HOME`` under
  ``QUANT_HOME``, the metadata database ``airflow`` on the pipeline's PostgreSQL
  server, LocalExecutor, this repository's ``dags/`` and ``plugins/``, examples
  off, low parallelism for small machines; building it imports nothing of Airflow;
- an in-process DAG runner (:func:`run_dag`, ``dag.test``);
- what the DAG files' tasks call (:func:`current_run`, :func:`dbt_task_group`, ...);
- the failure callbacks (:func:`on_task_failure`, :func:`on_run_failure`) and the
  metadata reads they need (:func:`task_timings`);
- the API server's trigger guard (:class:`TriggerConfGuard`).
"""

from quant.orchestration._callbacks import (
    FAILED_STAGE,
    on_run_failure,
    on_task_failure,
    record_task_failure,
    task_errors,
)
from quant.orchestration._environment import (
    ADMIN_USER,
    DAG_ID,
    admin_password_file,
    airflow_cli,
    airflow_environment,
    apply_airflow_environment,
    ensure_airflow_db,
    logical_datetime,
    run_after_datetime,
)
from quant.orchestration._guard import BACKFILL_MAX_ACTIVE_RUNS, TriggerConfGuard, unknown_conf_keys
from quant.orchestration._metadata import dag_run_record, task_timings
from quant.orchestration._runner import RunResult, require_runnable, run_dag
from quant.orchestration._tasks import (
    BROKER_CONNECTIONS,
    DBT_ENV_KEYS,
    broker_credentials,
    current_run,
    dbt_env,
    dbt_task_group,
    dbt_var,
    fail_without_retry,
)
from quant.paths import project_root

__all__ = [
    "ADMIN_USER",
    "BACKFILL_MAX_ACTIVE_RUNS",
    "BROKER_CONNECTIONS",
    "DAG_ID",
    "DBT_ENV_KEYS",
    "FAILED_STAGE",
    "RunResult",
    "TriggerConfGuard",
    "admin_password_file",
    "airflow_cli",
    "airflow_environment",
    "apply_airflow_environment",
    "broker_credentials",
    "current_run",
    "dag_run_record",
    "dbt_env",
    "dbt_task_group",
    "dbt_var",
    "ensure_airflow_db",
    "fail_without_retry",
    "logical_datetime",
    "on_run_failure",
    "on_task_failure",
    "project_root",
    "record_task_failure",
    "require_runnable",
    "run_after_datetime",
    "run_dag",
    "task_errors",
    "task_timings",
    "unknown_conf_keys",
]
