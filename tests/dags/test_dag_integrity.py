"""Every DAG file imports cleanly and follows the house rules."""

from __future__ import annotations

from datetime import timedelta

import pytest

from quant.orchestration import project_root

APPROVED_TAGS = {"trading", "daily", "weekly", "reports", "research"}


@pytest.fixture(scope="module")
def dagbag(airflow_db):  # noqa: ANN001, ANN201
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(project_root() / "dags"))


def test_dagbag_when_loaded_then_no_import_errors(dagbag) -> None:  # noqa: ANN001
    assert dagbag.import_errors == {}
    assert "daily_trading" in dagbag.dag_ids


def test_dags_when_loaded_then_tags_approved_schedule_and_catchup_explicit(dagbag) -> None:  # noqa: ANN001
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags, f"{dag_id} has no tags"
        assert set(dag.tags) <= APPROVED_TAGS, f"{dag_id} has unapproved tags {dag.tags}"
        assert dag.schedule is not None, f"{dag_id} has no explicit schedule"
        assert dag.catchup is False, f"{dag_id}: catchup must be set explicitly to False"
        assert dag.doc_md, f"{dag_id} has no doc_md"


def test_dags_when_loaded_then_every_task_has_retry_policy(dagbag) -> None:  # noqa: ANN001
    for dag_id, dag in dagbag.dags.items():
        for task in dag.tasks:
            assert task.retries is not None, f"{dag_id}.{task.task_id} has no retries setting"
            if task.retries:
                assert task.retry_delay >= timedelta(seconds=10), f"{dag_id}.{task.task_id}"


def test_daily_trading_when_loaded_then_stages_in_order(dagbag) -> None:  # noqa: ANN001
    dag = dagbag.get_dag("daily_trading")
    ingest = dag.get_task("ingest_bars")
    assert ingest.downstream_task_ids, "ingest_bars has nothing after it"
    assert "report" in dag.task_ids
    assert dag.max_active_runs == 1


def test_daily_trading_when_start_date_setting_moved_earlier_then_dag_start_date_follows(
    airflow_db, monkeypatch  # noqa: ANN001
) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from quant.config import get_settings

    monkeypatch.setenv("QUANT_START_DATE", "2019-03-04")
    get_settings.cache_clear()
    try:
        dag = DagBag(dag_folder=str(project_root() / "dags")).get_dag("daily_trading")
    finally:
        monkeypatch.delenv("QUANT_START_DATE")
        get_settings.cache_clear()
    assert dag.start_date.date().isoformat() == "2019-03-04"
    assert dag.catchup is False
