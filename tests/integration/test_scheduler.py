"""The daily DAG under the real scheduler: `quant up` (API server, scheduler with the
LocalExecutor, DAG processor, triggerer, sidecar) driven through the REST API exactly as
the operations guide says (docs/operations/triggers-and-backfills.md), its snippets run verbatim.

Slow by nature (each daily run takes one to two minutes here): the whole module shares one
stack and takes about eight to ten minutes on 2 cores.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path

import pytest

from quant.calendar import get_calendar
from quant.db import connect

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.scheduler]

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "operations" / "triggers-and-backfills.md"


def guide_snippet(name: str) -> str:
    """The bash block the triggers-and-backfills page marks with ``<!-- snippet: NAME -->``."""
    text = GUIDE.read_text()
    found = re.search(rf"<!-- snippet: {re.escape(name)} -->\s*```bash\n(.*?)```", text, re.S)
    assert found, f"{GUIDE.name} has no snippet {name!r}"
    return found.group(1)


def run_snippet(stack, name: str, **env: str) -> subprocess.CompletedProcess[str]:  # noqa: ANN001
    """Run a snippet of the guide with bash, as a user would after `quant up`."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    variables = stack.env | {"PATH": path, "AIRFLOW": stack.base_url,
                             "PASSWORD": stack.password} | env
    proc = subprocess.run(["bash", "-euo", "pipefail", "-c", guide_snippet(name)],
                          env=variables, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, f"{name}: {proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return proc


def _row(settings, sql: str, *args: object) -> tuple | None:  # noqa: ANN001
    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, args)
            return cur.fetchone()
    finally:
        conn.close()


def _recorded_run(stack, run_id: str, timeout_s: float = 90) -> tuple:  # noqa: ANN001
    """The run's ``ops.pipeline_runs`` row (status, logical_date, summary), waiting for it."""
    deadline = time.monotonic() + timeout_s
    while True:
        row = _row(stack.settings, "select status, logical_date, summary, run_type "
                   "from ops.pipeline_runs where run_id = %s", run_id)
        if row is not None or time.monotonic() > deadline:
            return row
        time.sleep(2)


def test_trigger_when_readme_rest_call_with_null_logical_date_then_latest_session_succeeds(
    airflow_stack,  # noqa: ANN001
) -> None:
    stack = airflow_stack
    proc = run_snippet(stack, "trigger")
    run_id = json.loads(proc.stdout.strip().splitlines()[-1])["dag_run_id"]
    assert stack.run(run_id)["logical_date"] is None

    assert stack.wait_for(run_id) == "success", stack.explain(run_id)

    latest = get_calendar(stack.settings.exchange).latest_closed_session()
    status, session, summary, run_type = _recorded_run(stack, run_id)
    assert (status, session, run_type) == ("success", latest, "manual")
    assert summary["optimize_portfolio"]["method"] == "hrp"  # the guide's conf reached the task
    states = stack.task_states(run_id)
    assert all(state == "success" for state in states.values()), states
    # the scheduled run the scheduler created on unpausing ran too
    scheduled = [r for r in stack.runs() if r["run_type"] == "scheduled"]
    assert scheduled
    for run in scheduled:
        assert stack.wait_for(run["dag_run_id"]) == "success", stack.explain(run["dag_run_id"])


def test_trigger_when_conf_has_unknown_key_then_refused_listing_known_keys(airflow_stack) -> None:  # noqa: ANN001
    stack = airflow_stack
    before = len(stack.runs())
    answer = stack.api("POST", "/api/v2/dags/daily_trading/dagRuns",
                       {"logical_date": None, "conf": {"optimiser": "hrp"}})
    assert answer.status == 400, answer.body
    detail = answer.json()["detail"]
    assert "'optimiser'" in detail and "optimizer" in detail and "dry_run" in detail
    answer = stack.api("POST", "/api/v2/backfills", {
        "dag_id": "daily_trading", "from_date": "2026-01-05T00:00:00Z",
        "to_date": "2026-01-06T00:00:00Z", "dag_run_conf": {"dryrun": True}})
    assert answer.status == 400 and "'dryrun'" in answer.json()["detail"], answer.body
    assert len(stack.runs()) == before  # nothing was created


def test_run_when_data_quality_fails_then_callback_writes_failed_report_and_dag_stays_active(
    airflow_stack, failed_run,  # noqa: ANN001
) -> None:
    stack = airflow_stack
    assert failed_run.state == "failed"
    states = stack.task_states(failed_run.run_id)
    assert states["data_quality"] == "failed"
    assert states["generate_orders"] == "upstream_failed"

    row = _recorded_run(stack, failed_run.run_id)
    assert row is not None, f"the failure callback recorded nothing\n{stack.log_tail()}"
    status, session, summary, _ = row
    assert (status, session) == ("failed", failed_run.session)
    failure = summary["run failed"]
    assert "data_quality" in failure["failed or not run"]
    assert "data_quality failed" in failure["reason"]
    assert "blocking check(s) failed" in failure["errors"]["data_quality"]
    assert failed_run.symbol in failure["errors"]["data_quality"]

    # the callback ran in the DAG processor without blocking it: no timeout, DAG never stale
    processor_log = (stack.home / "logs" / "dag-processor.log").read_text(errors="replace")
    assert "GetTaskBreadcrumbs" not in processor_log
    assert stack.dag_problems == []
    assert stack.api("GET", "/api/v2/dags/daily_trading").json()["is_stale"] is False


def test_backfill_when_readme_rest_call_with_api_defaults_then_three_sessions_succeed(
    airflow_stack, failed_run,  # noqa: ANN001 - after the failed run: one run at a time
) -> None:
    stack = airflow_stack
    cal = get_calendar(stack.settings.exchange)
    latest = cal.latest_closed_session()
    sessions = cal.sessions(latest - timedelta(days=20), latest)[-5:-2]
    dry = run_snippet(stack, "backfill-cli-dry-run",
                      FROM=sessions[0].isoformat(), TO=sessions[-1].isoformat())
    assert f"backfill of 3 session(s), {sessions[0]} to {sessions[-1]}" in dry.stdout

    proc = run_snippet(stack, "backfill", FROM=sessions[0].isoformat(), TO=sessions[-1].isoformat())
    backfill = json.loads(proc.stdout.strip().splitlines()[-1])
    assert backfill["max_active_runs"] == 1  # not the API's 10: runs share marts and an account

    deadline = time.monotonic() + 900
    while True:
        runs = [r for r in stack.runs(run_type="backfill")]
        if len(runs) == 3 and all(r["state"] in ("success", "failed") for r in runs):
            break
        assert time.monotonic() < deadline, f"backfill not done: {runs}\n{stack.log_tail()}"
        time.sleep(5)
    by_session = {
        get_calendar(stack.settings.exchange).session_for_logical_date(
            _parse(r["logical_date"])): r for r in runs}
    assert sorted(by_session) == sessions  # the last day included
    assert {r["state"] for r in runs} == {"success"}, "\n".join(
        stack.explain(r["dag_run_id"]) for r in runs if r["state"] != "success")
    assert stack.dag_problems == []


def _parse(text: str):  # noqa: ANN202
    from datetime import datetime

    return datetime.fromisoformat(text.replace("Z", "+00:00"))
