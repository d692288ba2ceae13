"""The run report: every section from a real pipeline run, and an empty failed run.

The pipeline runs through its stage functions (ingest -> dbt -> data quality ->
retrain -> predict -> optimize -> generate / check / submit / reconcile with the
simulator) over three sessions on one backfill account, so the equity curve,
the turnover and the fills have history. Expected figures are read back from
the tables, never copied from the report code.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import date, datetime, timedelta, timezone
from typing import Any

import pytest

from quant.calendar import get_calendar
from quant.config import Settings, load_settings
from quant.pipeline import run_context
from quant.report import report_path, write_run_report
from quant.testing.db import execute, query
from quant.testing.marts import reset_pipeline, synthetic_marts

pytestmark = pytest.mark.integration

SYMBOLS = 40
END = date(2017, 3, 31)
HISTORY_SESSIONS = 320
DAG_ID = "daily_trading"
BACKFILL = "report-test"
SECTIONS = ("summary", "equity", "weights", "turnover", "model", "orders", "data-quality",
            "timings", "market", "stages")


def _timed(stages: dict[str, dict], name: str, call: Callable[..., Any], *args: Any,
           **kwargs: Any) -> Any:
    start = time.perf_counter()
    summary = call(*args, **kwargs)
    summary = summary.summary() if hasattr(summary, "summary") else summary
    summary = summary.to_dict() if hasattr(summary, "to_dict") else summary
    stages[name] = {**summary, "seconds": time.perf_counter() - start}
    return summary


def _section(page: str, section_id: str) -> str:
    match = re.search(rf'<section id="{section_id}">(.*?)</section>', page, re.S)
    assert match, f"section {section_id!r} missing"
    return match.group(1)


@pytest.fixture(scope="module")
def pipeline(pg_settings: Settings) -> Iterator[tuple[Settings, list[date], dict[str, dict], str]]:
    """Three sessions through every stage; the last one's restricted name is rejected."""
    from quant.execution import generate_orders, pretrade_check, reconcile, submit_orders
    from quant.model import predict, retrain_model
    from quant.portfolio import optimize_portfolio
    from quant.quality import run_data_quality

    settings = load_settings(synthetic={"symbols": SYMBOLS})
    cal = get_calendar(settings.exchange)
    sessions = [cal.shift(END, -2), cal.shift(END, -1), END]
    synthetic_marts(settings, END, start=cal.shift(END, -HISTORY_SESSIONS),
                    command=("run", "--quiet", "--full-refresh"))
    stages: dict[str, dict] = {}
    for i, day in enumerate(sessions):
        run_id = f"backfill__{day.isoformat()}"
        stages = {}
        args = {"run_id": run_id, "settings": settings, "dag_id": DAG_ID}
        run = run_context(day, **args)
        if day == END:
            _timed(stages, "data_quality", run_data_quality, day, run_id=run_id, dag_id=DAG_ID,
                   settings=settings)
        _timed(stages, "retrain_model", retrain_model, run, force=i == 0)
        _timed(stages, "predict", predict, run)
        _timed(stages, "optimize_portfolio", optimize_portfolio, run)
        run = run.but(run_type="backfill", backfill_id=BACKFILL)
        _timed(stages, "generate_orders", generate_orders, run)
        check_settings = settings
        if day == END:  # restrict the largest buy of the last session: its order is rejected
            largest = query(
                settings,
                "select symbol from ops.orders where logical_date = %s and side = 'buy' "
                "order by notional_usd desc limit 1",
                day,
            )[0][0]
            check_settings = load_settings(synthetic={"symbols": SYMBOLS},
                                           risk={"restricted_symbols": [largest]})
        _timed(stages, "pretrade_check", pretrade_check, run.but(settings=check_settings))
        _timed(stages, "submit_orders", submit_orders, run)
        _timed(stages, "reconcile", reconcile, run)
    yield settings, sessions, stages, f"backfill__{END.isoformat()}"
    reset_pipeline(settings)


def test_write_run_report_when_pipeline_ran_then_every_section_shows_the_run(
    pipeline: tuple[Settings, list[date], dict[str, dict], str], artifacts_dir: Any
) -> None:
    settings, sessions, stages, run_id = pipeline
    path = write_run_report(dag_id=DAG_ID, run_id=run_id, session=END, stages=stages,
                            settings=settings, run_type="backfill")
    assert path == report_path(DAG_ID, run_id, settings)
    page = path.read_text()
    (artifacts_dir / "run_report.html").write_text(page)
    for section_id in SECTIONS:
        _section(page, section_id)
    assert not re.search(r'(src|href)\s*=\s*"(https?:)?//|url\((?!#)|@import', page)  # self-contained

    # equity and drawdown of the backfill account, one point per session
    equity = query(settings, "select logical_date, equity_usd from ops.execution_runs "
                   "where account = %s order by logical_date", f"backfill-{BACKFILL}")
    assert [d for d, _ in equity] == sessions
    peak, worst = 0.0, 0.0
    for _, value in equity:
        peak = max(peak, value)
        worst = min(worst, value / peak - 1)
    section = _section(page, "equity")
    assert "<svg" in section
    assert f"backfill-{BACKFILL}" in section
    assert f"{worst:.4g}" in section
    assert f"{equity[-1][1]:,.2f}" in section

    # weights by sector: every sector holding a name of the session's target weights
    sectors = {r[0] for r in query(
        settings,
        "select distinct s.sector from ops.target_weights w join raw.symbols s using (symbol) "
        "where w.session_date = %s and w.weight <> 0", END)}
    assert sectors
    section = _section(page, "weights")
    assert "<svg" in section
    for sector in sectors:
        assert f"<td>{sector}</td>" in section

    # turnover and model history
    assert "<svg" in _section(page, "turnover")
    models = query(settings, "select model_id from ops.models")
    assert models and "<svg" in _section(page, "model")
    assert "Retrain decisions" in _section(page, "model")
    assert "window rank IC: new model" in _section(page, "model")
    assert "<td>no_champion</td>" in _section(page, "model")  # the first retrain's decision

    # orders, with the reason codes of the rejected ones
    orders = query(settings, "select client_order_id, status, reject_reasons from ops.orders "
                   "where logical_date = %s", END)
    section = _section(page, "orders")
    rejected = [o for o in orders if o[1] == "rejected"]
    assert rejected and all("RESTRICTED_SYMBOL" in o[2] for o in rejected)
    assert "RESTRICTED_SYMBOL" in section
    for cid, _, _ in orders:
        assert cid in section
    table = re.search(r'<table class="orders">(.*?)</table>', section, re.S).group(1)
    assert table.count("<tr>") == len(orders) + 1  # a header, then one row per order

    # data quality: the run's checks and a link to its Data Docs next to the report
    checks = query(settings, "select count(*), count(*) filter (where success) "
                   "from ops.dq_results where run_id = %s", run_id)[0]
    section = _section(page, "data-quality")
    assert f"<th>checks</th><td class=\"num\">{checks[0]}</td>" in section
    assert f"<th>passed</th><td class=\"num\">{checks[1]}</td>" in section
    assert 'href="data_quality/index.html"' in section
    assert (path.parent / "data_quality" / "index.html").exists()

    # timings: the seconds the stages measured
    section = _section(page, "timings")
    assert "<svg" in section
    for name in stages:
        assert f"<td>{name}</td>" in section

    # the summary: orders were sent, none of them rejected ones
    sent = [o for o in orders if o[1] not in ("generated", "approved", "rejected")]
    assert f"{len(sent)} order(s) submitted" in _section(page, "summary")
    recorded = query(settings, "select status, dag_id from ops.pipeline_runs where run_id = %s",
                     run_id)
    assert recorded == [("success", DAG_ID)]


def test_write_run_report_when_run_failed_with_empty_tables_then_says_what_failed(
    clean_db: Settings,
) -> None:
    session = get_calendar(clean_db.exchange).latest_closed_session()
    run_id = "manual__failed-early"
    path = write_run_report(
        dag_id=DAG_ID, run_id=run_id, session=session, settings=clean_db, status="failed",
        stages={"run failed": {"reason": "task_failure",
                               "failed or not run": ["ingest_bars", "data_quality"]}},
    )
    page = path.read_text()
    for section_id in SECTIONS:
        _section(page, section_id)
    summary = _section(page, "summary")
    assert "Run failed: task_failure." in summary
    assert "ingest_bars, data_quality" in summary
    assert "No order submitted" in summary
    assert "No account equity recorded yet" in _section(page, "equity")
    assert "No target weights" in _section(page, "weights")
    assert "No orders for this run" in _section(page, "orders")
    assert "No data-quality checks recorded" in _section(page, "data-quality")
    assert query(clean_db, "select status from ops.pipeline_runs where run_id = %s",
                 run_id) == [("failed",)]


def test_write_run_report_when_sidecar_halted_then_summary_says_no_order_submitted(
    clean_db: Settings,
) -> None:
    session = get_calendar(clean_db.exchange).latest_closed_session()
    execute(
        clean_db,
        "insert into ops.kill_switch_events (kind, from_state, to_state, mode, reason_code, "
        "reason, actor) values ('kill', 'ACTIVE', 'HALTED', 'halt', 'MANUAL', 'desk drill', 'ops')",
    )
    path = write_run_report(dag_id=DAG_ID, run_id="manual__halted", session=session,
                            stages={}, settings=clean_db, status="failed")
    summary = _section(path.read_text(), "summary")
    assert "No order submitted: the risk sidecar is HALTED (MANUAL: desk drill" in summary
    assert "<td>HALTED</td>" in summary


def test_write_run_report_when_tasks_ran_in_parallel_then_wall_time_not_summed(
    clean_db: Settings,
) -> None:
    session = get_calendar(clean_db.exchange).latest_closed_session()
    t0 = datetime(2026, 12, 2, 21, 0, tzinfo=timezone.utc)

    def at(seconds: float) -> datetime:
        return t0 + timedelta(seconds=seconds)

    timings = {  # dbt.a and dbt.b ran side by side; start and end as text or datetimes
        "ingest_bars": {"state": "success", "seconds": 10.0, "start": at(0).isoformat(),
                        "end": at(10).isoformat()},
        "dbt.a": {"state": "success", "seconds": 30.0, "start": at(10), "end": at(40)},
        "dbt.b": {"state": "success", "seconds": 30.0, "start": at(10), "end": at(40)},
        "dbt.c": {"state": "success", "seconds": 20.0, "start": at(40), "end": at(60)},
        "data_quality": {"state": "success", "seconds": 5.0,
                         "start": at(60).isoformat().replace("+00:00", "Z"),
                         "end": at(65).isoformat()},
        "retrain_model": {"state": "upstream_failed", "seconds": None, "start": None, "end": None},
        "report": {"state": "running", "seconds": None, "start": at(66), "end": None},
    }
    run_id = "manual__parallel"
    path = write_run_report(dag_id=DAG_ID, run_id=run_id, session=session, stages={},
                            settings=clean_db, task_timings=timings)
    section = _section(path.read_text(), "timings")
    assert '<th>wall time (seconds)</th><td class="num">65</td>' in section  # not 95
    stages = re.search(r'<table class="stages">(.*?)</table>', section, re.S).group(1)
    assert '<tr><td>dbt</td><td class="num">3</td><td class="num">50</td>' in stages  # not 80
    assert '<tr><td>ingest_bars</td><td class="num">1</td><td class="num">10</td>' in stages
    tasks = re.search(r'<table class="tasks">(.*?)</table>', section, re.S).group(1)
    assert tasks.count("<tr>") == len(timings) + 1
    assert "2026-12-02 21:00:10 UTC" in tasks
    summary = query(clean_db, "select summary from ops.pipeline_runs where run_id = %s",
                    run_id)[0][0]
    summary = summary if isinstance(summary, dict) else json.loads(summary)
    assert summary["report"]["seconds"] == 65.0


def test_write_run_report_when_another_run_generated_the_sessions_orders_then_not_shown(
    clean_db: Settings,
) -> None:
    session = get_calendar(clean_db.exchange).latest_closed_session()
    namespace = f"{DAG_ID}/sim-default"
    execute(
        clean_db,
        "insert into ops.execution_runs (namespace, logical_date, run_id, dag_id, run_type, "
        "broker, account, trading_mode, risk_check, choice_reason, dry_run, equity_usd, cash_usd) "
        "values (%s, %s, 'manual__trader', %s, 'manual', 'sim', 'sim-default', 'paper', "
        "'in_process', 'test', false, 1000000, 400000)",
        namespace, session, DAG_ID,
    )
    execute(
        clean_db,
        "insert into ops.orders (client_order_id, namespace, logical_date, run_id, dag_id, symbol, "
        "side, qty_shares, ref_price_usd, notional_usd, order_type, time_in_force, target_weight, "
        "target_qty_shares, current_qty_shares, sequence, broker, account, status) values "
        "('q-test-1', %s, %s, 'manual__trader', %s, 'SYN001', 'buy', 10, 50, 500, 'market', "
        "'day', 0.0005, 10, 0, 1, 'sim', 'sim-default', 'filled')",
        namespace, session, DAG_ID,
    )
    trader = write_run_report(dag_id=DAG_ID, run_id="manual__trader", session=session,
                              stages={}, settings=clean_db).read_text()
    assert "q-test-1" in _section(trader, "orders")
    other = write_run_report(dag_id=DAG_ID, run_id="manual__other", session=session, stages={},
                             settings=clean_db, status="failed").read_text()
    assert "No orders for this run" in _section(other, "orders")
    assert "q-test-1" not in other
    summary = _section(other, "summary")
    assert "No order submitted: this run generated no orders." in summary
    # the equity curve still shows the account the DAG trades, and says whose it is
    assert "the latest account this DAG traded up to the session" in _section(other, "equity")
