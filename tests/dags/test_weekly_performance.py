"""weekly_performance: scheduled on the daily DAG's assets; its report shows the trailing week."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import date

import pytest

from quant.calendar import get_calendar
from quant.config import Settings, load_settings

pytestmark = pytest.mark.integration

AS_OF = date(2025, 6, 13)
SCHEMA = "perf_test_marts"
NAMES = ["AAA", "BBB", "CCC", "DDD", "EEE", "FFF"]
SCORES = [6.0, 5.0, 4.0, 3.0, 2.0, 1.0]
UP = [0.03, 0.02, 0.01, -0.01, -0.02, -0.03]  # same order as the scores: every name a hit
# the hit rate is judged on the return the book trades (next open to the open after it), which
# here runs against the close-to-close one


def test_weekly_performance_when_loaded_then_scheduled_on_both_assets(airflow_db: Settings) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from quant.orchestration import project_root

    bag = DagBag(dag_folder=str(project_root() / "dags"))
    assert bag.import_errors == {}
    dag = bag.get_dag("weekly_performance")
    assert dag is not None
    assert "reports" in dag.tags and dag.catchup is False
    condition = dag.timetable.asset_condition
    names = {asset.name for asset in condition.objects}
    assert names == {"quant_marts_features", "quant_target_weights"}
    assert type(condition).__name__ == "AssetAll"  # both must be updated, not either
    daily = bag.get_dag("daily_trading")
    outlets = {o.name for t in daily.tasks for o in getattr(t, "outlets", [])}
    assert names <= outlets  # the daily DAG produces what this one waits for


def _exec(settings: Settings, sql: str, params: tuple = ()) -> None:
    from quant.db import connect

    conn = connect(settings)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(sql, params)
    finally:
        conn.close()


@pytest.fixture()
def week(clean_db: Settings) -> Iterator[tuple[Settings, list[date]]]:
    """Two traded sessions at the end of the window: a perfect day, then a reversed one."""
    settings = load_settings(model={"marts_schema": SCHEMA})
    cal = get_calendar(settings.exchange)
    before, d1, d2 = (cal.shift(AS_OF, -k) for k in (2, 1, 0))
    _exec(settings, f"drop schema if exists {SCHEMA} cascade; create schema {SCHEMA}; "
          f"create table {SCHEMA}.labels (session_date date, symbol text, forward_return_1d float8, "
          "open_return_1d float8)")
    _exec(settings, "insert into ops.models (trained_through, horizon_sessions, objective, target, "
          "params, num_boost_round, features, feature_hash, metrics, train_rows, train_sessions, "
          "artifact_path, artifact_checksum) values (%s, 5, 'regression', 'rank', '{}', 10, "
          "'{f}', 'h', '{}', 1, 1, '/dev/null', 'c')", (before,))
    weights = {d1: {"AAA": 0.5, "BBB": 0.3}, d2: {"AAA": 0.4, "FFF": 0.2}}
    returns = {d1: UP, d2: [-r for r in UP]}
    for day in (d1, d2):
        for name, score, ret in zip(NAMES, SCORES, returns[day], strict=True):
            _exec(settings, "insert into ops.predictions (session_date, symbol, score, model_id) "
                  "values (%s, %s, %s, 1)", (day, name, score))
            _exec(settings, f"insert into {SCHEMA}.labels values (%s, %s, %s, %s)",
                  (day, name, ret, -ret))
        for name, weight in weights[day].items():
            _exec(settings, "insert into ops.target_weights (run_id, session_date, symbol, weight, "
                  "method) values ('r', %s, %s, %s, 'top_k')", (day, name, weight))
        _exec(settings, "insert into ops.portfolio_diagnostics (session_date, run_id, method, "
              "method_used, stage, fallback_used, ex_ante_vol, expected_return, turnover, n_names, "
              "gross_exposure, net_exposure, vol_scale, n_candidates, attempts, settings) values "
              "(%s, 'r', 'top_k', 'top_k', 'primary', false, 0.1, 0, %s, 2, 0.8, 0.8, 1, 6, "
              "'[]', '{}')", (day, 0.8 if day == d1 else 0.5))
    for day, equity in ((before, 1_000_000.0), (d1, 1_010_000.0), (d2, 999_900.0)):
        _exec(settings, "insert into ops.execution_runs (namespace, logical_date, run_id, dag_id, "
              "run_type, broker, account, trading_mode, risk_check, choice_reason, equity_usd, "
              "cash_usd) values ('daily_trading', %s, 'r', 'daily_trading', 'scheduled', 'sim', "
              "'paper', 'paper', 'sidecar', 'test', %s, 0)", (day, equity))
    for i, (status, reasons) in enumerate([("filled", []),
                                           ("rejected", ["POSITION_EXCEEDS_MAX_WEIGHT"]),
                                           ("rejected", ["RESTRICTED_SYMBOL",
                                                         "POSITION_EXCEEDS_MAX_WEIGHT"])]):
        _exec(settings, "insert into ops.orders (client_order_id, namespace, logical_date, run_id, "
              "dag_id, symbol, side, qty_shares, ref_price_usd, notional_usd, order_type, "
              "time_in_force, target_weight, target_qty_shares, current_qty_shares, sequence, "
              "broker, account, status, reject_reasons, reject_details) values (%s, "
              "'daily_trading', %s, 'r', 'daily_trading', %s, 'buy', 10, 10, 100, 'market', 'opg', "
              "0.1, 10, 0, %s, 'sim', 'paper', %s, %s, %s)",
              (f"o{i}", d2, NAMES[i], i, status, reasons, json.dumps({})))
    yield settings, [d1, d2]
    _exec(settings, f"drop schema if exists {SCHEMA} cascade")


def _cells(page: str, day: date) -> list[str]:
    row = re.search(rf"<tr><td>{day.isoformat()}</td>(.*?)</tr>", page, re.S)
    assert row, f"no row for {day}"
    return [re.sub("<.*?>", "", c) for c in re.findall(r"<td[^>]*>(.*?)</td>", row.group(1))]


def test_write_performance_report_when_week_traded_then_returns_hit_rate_and_rejections(
    week: tuple[Settings, list[date]],
) -> None:
    from quant.report import performance_report_path, write_performance_report

    settings, (d1, d2) = week
    path = write_performance_report(settings=settings)  # as of the latest session with weights
    assert path == performance_report_path(AS_OF, settings)
    assert path.parent.parent.name == "weekly_performance"
    page = path.read_text()
    for section_id in ("summary", "returns", "turnover", "hit-rate", "orders", "sessions"):
        assert f'<section id="{section_id}">' in page
    assert page.count("<svg") == 3

    account, portfolio, turnover, hit, _, orders, submitted, rejected = _cells(page, d1)
    assert float(account) == pytest.approx(0.01)
    assert float(portfolio) == pytest.approx(0.5 * UP[0] + 0.3 * UP[1])
    assert float(turnover) == pytest.approx(0.8)
    assert float(hit) == pytest.approx(0.0)  # close to close every name a hit, tradeable none
    assert (orders, submitted, rejected) == ("0", "0", "0")

    account, portfolio, turnover, hit, _, orders, submitted, rejected = _cells(page, d2)
    assert float(account) == pytest.approx(999_900 / 1_010_000 - 1, rel=1e-3)
    assert float(portfolio) == pytest.approx(0.4 * -UP[0] + 0.2 * -UP[5])
    assert float(hit) == pytest.approx(1.0)
    assert (orders, submitted, rejected) == ("3", "1", "2")

    reasons = re.search(r'<section id="orders">(.*?)</section>', page, re.S).group(1)
    assert "<td>POSITION_EXCEEDS_MAX_WEIGHT</td><td class=\"num\">2</td>" in reasons
    assert "<td>RESTRICTED_SYMBOL</td><td class=\"num\">1</td>" in reasons
    earlier = get_calendar(settings.exchange).shift(AS_OF, -4)
    assert _cells(page, earlier)[:4] == ["", "", "", ""]  # nothing traded then: empty, not zero
