"""daily_trading shows the dbt project as one ``dbt build`` task per model (the model, then its tests)."""

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


def _build_tasks(dag) -> set[str]:  # noqa: ANN001
    return {t for t in dag.task_ids if t.startswith("dbt.")}


def test_dbt_group_when_rendered_then_one_build_task_per_manifest_model(dag, manifest_models) -> None:  # noqa: ANN001
    tasks = _build_tasks(dag)
    assert tasks == {f"dbt.{model}_model_build" for model in manifest_models}
    assert {"dbt.universe_model_build", "dbt.features_model_build", "dbt.labels_model_build"} <= tasks


def test_dbt_group_when_rendered_then_each_task_builds_its_model_with_its_tests(dag, manifest_models) -> None:  # noqa: ANN001
    for model in manifest_models:
        task = dag.get_task(f"dbt.{model}_model_build")
        assert type(task).__name__ == "DbtBuildLocalOperator"
        assert str(task.select).endswith(f".{model}")  # selects its model (and so its tests)


def test_dbt_group_when_rendered_then_follows_model_dependencies(dag) -> None:  # noqa: ANN001
    # features reads universe and the adjusted prices: it waits for their builds (tests included)
    upstream = dag.get_task("dbt.features_model_build").upstream_task_ids
    assert {"dbt.universe_model_build", "dbt.int_prices_adjusted_model_build"} <= upstream
    assert "dbt.labels_model_build" not in upstream


def test_dbt_group_when_rendered_then_between_ingestion_and_report(dag) -> None:  # noqa: ANN001
    roots = [t for t in _build_tasks(dag) if not dag.get_task(t).upstream_task_ids - {"ingest_bars"}]
    assert roots and all("ingest_bars" in dag.get_task(t).upstream_task_ids for t in roots)
    before_report = dag.get_task("report").get_flat_relative_ids(upstream=True)
    assert {f"dbt.{m}_model_build" for m in ("features", "labels", "universe")} <= before_report


def test_dbt_tasks_when_rendered_then_connection_and_vars_are_templates(dag) -> None:  # noqa: ANN001
    task = dag.get_task("dbt.features_model_build")
    assert all("{{" in value for value in task.env.values())  # resolved at run time
    assert "password" not in json.dumps(task.env).lower().replace("dbt_pg_password", "")
    assert set(task.vars) == {"run_date", "provider_priority"}
    assert task.install_deps is False
