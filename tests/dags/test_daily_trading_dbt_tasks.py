"""daily_trading shows the dbt project as one task per model, its tests after it."""

from __future__ import annotations

import json

import pytest

from quant.orchestration import project_root
from quant.transform import ensure_manifest


@pytest.fixture(scope="module")
def dag(airflow_db):  # noqa: ANN001, ANN201
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(project_root() / "dags"))
    assert bag.import_errors == {}
    return bag.get_dag("daily_trading")


@pytest.fixture(scope="module")
def manifest_models() -> set[str]:
    manifest = json.loads(ensure_manifest().read_text())
    return {
        node["name"]
        for node in manifest["nodes"].values()
        if node["resource_type"] == "model" and node["package_name"] == "quant"
    }


def test_dbt_group_when_rendered_then_one_run_task_per_manifest_model(dag, manifest_models) -> None:  # noqa: ANN001
    run_tasks = {t.split(".")[1] for t in dag.task_ids if t.startswith("dbt.") and t.endswith(".run")}
    assert run_tasks == manifest_models
    assert {"universe", "features", "labels"} <= run_tasks


def test_dbt_group_when_rendered_then_each_model_tested_right_after_its_run(dag, manifest_models) -> None:  # noqa: ANN001
    for model in manifest_models:
        run = dag.get_task(f"dbt.{model}.run")
        assert f"dbt.{model}.test" in run.downstream_task_ids


def test_dbt_group_when_rendered_then_follows_model_dependencies(dag) -> None:  # noqa: ANN001
    # features reads universe and the adjusted prices: its run waits for their tests
    upstream = dag.get_task("dbt.features.run").upstream_task_ids
    assert {"dbt.universe.test", "dbt.int_prices_adjusted.test"} <= upstream
    assert "dbt.labels.test" not in upstream


def test_dbt_group_when_rendered_then_between_ingestion_and_report(dag) -> None:  # noqa: ANN001
    roots = [t for t in dag.task_ids if t.startswith("dbt.") and not dag.get_task(t).upstream_task_ids - {"ingest_bars"}]
    assert roots and all("ingest_bars" in dag.get_task(t).upstream_task_ids for t in roots)
    before_report = dag.get_task("report").get_flat_relative_ids(upstream=True)
    assert {f"dbt.{m}.test" for m in ("features", "labels", "universe")} <= before_report


def test_dbt_tasks_when_rendered_then_connection_and_vars_are_templates(dag) -> None:  # noqa: ANN001
    task = dag.get_task("dbt.features.run")
    assert all("{{" in value for value in task.env.values())  # resolved at run time
    assert "password" not in json.dumps(task.env).lower().replace("dbt_pg_password", "")
    assert set(task.vars) == {"run_date", "provider_priority"}
    assert task.install_deps is False
