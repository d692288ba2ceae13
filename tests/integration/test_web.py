"""The UI pages of the quant_risk plugin: login, the right to operate, per-run reports, offline Data Docs.

The app runs with a fake ``WebAuth`` (the plugin's real one asks Airflow's auth
manager; tests/e2e covers it in a browser), the real embedded PostgreSQL and,
for kill and resume, the session's real sidecar process.
"""

from __future__ import annotations

import os
import re
from datetime import date
from typing import Any
from urllib.parse import quote

import pytest
from starlette.testclient import TestClient

from quant.calendar import get_calendar
from quant.config import Settings, load_settings
from quant.report import (
    create_app,
    report_path,
    run_key,
    session_page_path,
    write_run_report,
)
from quant.testing.db import execute, query, scalar
from quant.testing.sidecar_process import free_port

pytestmark = pytest.mark.integration

DAG_ID = "daily_trading"
ORIGIN = {"origin": "http://testserver"}
SESSIONS = {"viewer-token": "vera", "operator-token": "otto"}
OPERATORS = {"otto"}
# an absolute or protocol-relative URL in an attribute, a CSS url() or an @import
EXTERNAL = re.compile(
    r"""(?:\b(?:src|href|srcset|data|action|poster)\s*=\s*["']?\s*(?:https?:)?//)"""
    r"""|url\(\s*["']?\s*(?:https?:)?//|@import""",
    re.I,
)


class FakeAuth:
    """Logged in by the ``_token`` cookie: ``viewer-token`` (vera) or ``operator-token`` (otto)."""

    async def user(self, request: Any) -> str | None:
        return SESSIONS.get(request.cookies.get("_token", ""))

    def may_operate(self, request: Any) -> bool:  # a plain method works as well
        return SESSIONS.get(request.cookies.get("_token", "")) in OPERATORS


def _client(settings: Settings, token: str | None = None, **kwargs: Any) -> TestClient:
    client = TestClient(create_app(settings, auth=FakeAuth(), **kwargs), follow_redirects=False)
    if token is not None:
        client.cookies.set("_token", token)
    return client


def _session(settings: Settings) -> date:
    return get_calendar(settings.exchange).latest_closed_session()


# -- login -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/risk"),
        ("POST", "/risk/kill"),
        ("POST", "/risk/resume"),
        ("GET", "/runs/daily_trading/manual__2026-12-02T21:00:00+00:00/report"),
        ("GET", "/runs/daily_trading/manual__2026-12-02T21:00:00+00:00/data-quality"),
        ("GET", "/files/daily_trading/2026-12-02/index.html"),
        ("GET", "/files/"),
        ("GET", "/no-such-page"),
    ],
)
def test_every_route_when_not_logged_in_then_401_page_links_to_login(
    clean_db: Settings, method: str, path: str
) -> None:
    for client in (_client(clean_db), _client(clean_db, "forged-token")):
        answer = client.request(method, path, headers=ORIGIN, data={"reason": "x"})
        assert answer.status_code == 401
        assert answer.headers["content-type"].startswith("text/html")
        assert f'href="/auth/login/?next={quote(path, safe="/")}"' in answer.text


def test_risk_page_when_sidecar_unreachable_then_says_so(clean_db: Settings) -> None:
    settings = load_settings(sidecar_url=f"http://127.0.0.1:{free_port()}")
    page = _client(settings, "viewer-token").get("/risk")
    assert page.status_code == 200
    assert "SIDECAR UNREACHABLE" in page.text
    assert "signed in as vera" in page.text


# -- kill and resume ---------------------------------------------------------------------------
def test_kill_and_resume_when_operator_then_state_follows_actor_recorded_token_never_shown(
    clean_db: Settings, sidecar: Any
) -> None:
    token = os.environ["QUANT_SIDECAR_TOKEN"]
    assert clean_db.sidecar_token is not None and clean_db.sidecar_url == sidecar.url
    pages = []
    viewer, operator = _client(clean_db, "viewer-token"), _client(clean_db, "operator-token")
    try:
        page = operator.get("/risk")
        pages.append(page)
        assert page.status_code == 200 and 'class="state ACTIVE"' in page.text
        assert 'name="token"' not in page.text and 'type="password"' not in page.text

        refused = viewer.post("/risk/kill", data={"reason": "not mine", "mode": "halt"},
                              headers=ORIGIN)
        pages.append(refused)
        assert refused.status_code == 403 and "may not operate" in refused.text
        assert viewer.post("/risk/resume", data={"reason": "no"}, headers=ORIGIN).status_code == 403
        assert 'class="state ACTIVE"' in viewer.get("/risk").text

        # a token in the form is ignored: the server's own token is used
        killed = operator.post("/risk/kill", headers=ORIGIN,
                               data={"reason": "ui drill", "mode": "halt", "token": "wrong"})
        pages.append(killed)
        assert killed.status_code == 200, killed.text
        assert 'class="state HALTED"' in killed.text
        assert "ui drill" in killed.text
        assert query(clean_db, "select actor, reason from ops.kill_switch_events "
                     "where kind = 'kill'") == [("otto", "ui drill")]

        resumed = operator.post("/risk/resume", data={"reason": "drill over"}, headers=ORIGIN)
        pages.append(resumed)
        assert resumed.status_code == 200
        assert 'class="state ACTIVE"' in resumed.text
        assert query(clean_db, "select actor, reason from ops.kill_switch_events "
                     "where kind = 'resume'") == [("otto", "drill over")]
    finally:
        from quant.sidecar import SidecarClient

        with SidecarClient(sidecar.url, token=token) as client:
            if client.state()["trading_state"] != "ACTIVE":
                client.resume("test cleanup", actor="test")
    for answer in pages:
        assert token not in answer.text


def test_kill_when_cross_origin_or_no_origin_then_refused_and_state_unchanged(
    clean_db: Settings, sidecar: Any
) -> None:
    operator = _client(clean_db, "operator-token")
    form = {"reason": "forged", "mode": "halt"}
    for headers in ({"origin": "http://evil.example"},
                    {"referer": "http://evil.example/page"},
                    {"origin": "null"},
                    {}):
        answer = operator.post("/risk/kill", data=form, headers=headers)
        assert answer.status_code == 403, headers
        assert "this server" in answer.text
    assert operator.post("/risk/resume", data={"reason": "x"},
                         headers={"origin": "http://evil.example"}).status_code == 403
    assert 'class="state ACTIVE"' in operator.get("/risk").text
    assert query(clean_db, "select count(*) from ops.kill_switch_events where reason = 'forged'") \
        == [(0,)]
    # the same form from this host's page (Referer only) goes through the other checks
    bad_mode = operator.post("/risk/kill", data={"reason": "r", "mode": "bogus"},
                             headers={"referer": "http://testserver/quant/risk"})
    assert bad_mode.status_code == 400 and "unknown mode" in bad_mode.text


# -- run reports -------------------------------------------------------------------------------
FIRST = "scheduled__2026-12-02T21:00:00+00:00"
SECOND = "manual__2026-12-03T08:15:00+00:00"


def _dry_run_record(settings: Settings, run_id: str, session: date) -> None:
    execute(
        settings,
        "insert into ops.execution_runs (namespace, logical_date, run_id, dag_id, run_type, "
        "broker, account, trading_mode, risk_check, choice_reason, dry_run, equity_usd, cash_usd) "
        "values (%s, %s, %s, %s, 'manual', 'sim', 'sim-default', 'paper', 'in_process', "
        "'test', true, 1000000, 1000000)",
        f"{DAG_ID}/sim-default/dry-run/{run_id}", session, run_id, DAG_ID,
    )


def test_run_reports_when_two_runs_of_a_session_then_each_keeps_its_own_and_session_page_lists_both(
    clean_db: Settings,
) -> None:
    session = _session(clean_db)
    failed = write_run_report(
        dag_id=DAG_ID, run_id=FIRST, session=session, settings=clean_db, status="failed",
        run_type="scheduled",
        stages={"run failed": {"reason": "data_quality failed: DataQualityError",
                               "failed or not run": ["data_quality", "report"],
                               "errors": {"data_quality": "DataQualityError: 1 blocking"}}},
    )
    _dry_run_record(clean_db, SECOND, session)
    dry = write_run_report(dag_id=DAG_ID, run_id=SECOND, session=session, settings=clean_db,
                           stages={"generate_orders": {"dry_run": True, "orders": 0}})

    assert failed == report_path(DAG_ID, FIRST, clean_db) != dry == report_path(DAG_ID, SECOND,
                                                                                 clean_db)
    assert failed.parent.name == run_key(FIRST) and re.fullmatch(r"[A-Za-z0-9_.~-]+",
                                                                 failed.parent.name)
    first_page, second_page = failed.read_text(), dry.read_text()
    assert "Run failed: data_quality failed" in first_page
    assert "badge dry" not in first_page and "Dry run:" not in first_page
    assert "DataQualityError: 1 blocking" in first_page
    assert 'class="badge success"' in second_page
    assert '<span class="badge dry">dry run</span>' in second_page  # header
    assert "Dry run: orders are generated and checked" in second_page  # banner
    assert query(clean_db, "select run_id, summary -> 'report' ->> 'dry_run' from ops.pipeline_runs "
                 "order by run_id") == [(SECOND, "true"), (FIRST, "false")]

    listing = session_page_path(DAG_ID, session, clean_db).read_text()
    assert listing.index(SECOND) < listing.index(FIRST)  # latest first
    assert f'href="../runs/{run_key(FIRST)}/index.html"' in listing
    assert f'href="../runs/{run_key(SECOND)}/index.html"' in listing
    assert "dry run" in listing and ">failed<" in listing

    client = _client(clean_db, "viewer-token")
    for run_id, text in ((FIRST, first_page), (SECOND, second_page)):
        tab = client.get(f"/runs/{DAG_ID}/{run_id}/report")
        assert tab.status_code in (302, 307)
        served = client.get(tab.headers["location"])
        assert served.status_code == 200 and served.text == text
    assert client.get(f"/files/{DAG_ID}/{session.isoformat()}/index.html").text == listing


def test_run_report_tab_when_run_has_no_report_then_html_page_says_why(clean_db: Settings) -> None:
    states = {"failed-run": "failed", "running-run": "running"}
    client = _client(clean_db, "viewer-token", run_state=lambda dag, run: states.get(run))
    failed = client.get(f"/runs/{DAG_ID}/failed-run/report")
    assert failed.status_code == 404 and failed.headers["content-type"].startswith("text/html")
    assert "The run failed" in failed.text and "failure callback" in failed.text
    assert "has not written it yet" in failed.text
    running = client.get(f"/runs/{DAG_ID}/running-run/report")
    assert "The run is running" in running.text
    unknown = client.get(f"/runs/{DAG_ID}/no-such-run/report")
    assert unknown.status_code == 404 and "<code>no-such-run</code>" in unknown.text
    assert '"detail"' not in unknown.text


def test_run_report_when_written_by_a_dry_run_then_other_runs_reports_untouched(
    clean_db: Settings,
) -> None:
    session = _session(clean_db)
    real = write_run_report(dag_id=DAG_ID, run_id=FIRST, session=session, settings=clean_db,
                            stages={"stage": {"figure": 1}})
    before = real.read_text()
    _dry_run_record(clean_db, SECOND, session)
    write_run_report(dag_id=DAG_ID, run_id=SECOND, session=session, settings=clean_db, stages={})
    assert real.read_text() == before


# -- files -------------------------------------------------------------------------------------
def test_files_when_path_leaves_the_report_folder_then_refused(clean_db: Settings) -> None:
    secret = clean_db.home / "outside.txt"
    secret.write_text("outside the reports")
    link = clean_db.reports_dir / "daily_trading" / "escape"
    link.parent.mkdir(parents=True, exist_ok=True)
    if not link.is_symlink():
        link.symlink_to(clean_db.home)
    client = _client(clean_db, "viewer-token")
    for path in ("/files/../outside.txt", "/files/%2E%2E/outside.txt",
                 "/files/daily_trading/..%2F..%2Foutside.txt", "/files/daily_trading/escape/outside.txt",
                 "/runs/..%2F../x/report", "/runs/../x/data-quality"):
        answer = client.get(path)
        assert answer.status_code in (400, 404), path
        assert "outside the reports" not in answer.text, path
    (clean_db.reports_dir / "daily_trading" / "ok.txt").write_text("inside")
    assert client.get("/files/daily_trading/ok.txt").text == "inside"


# -- data quality ------------------------------------------------------------------------------
QUALITY_RUN = "manual__2026-12-02T22:00:00+00:00"


@pytest.fixture()
def failed_quality(clean_db: Settings) -> tuple[Settings, str]:
    """A data-quality run whose blocking price check fails on one symbol; its symbol."""
    from quant.data import ingest_bars
    from quant.quality import DataQualityError, run_data_quality

    settings = load_settings(synthetic={"symbols": 30}, history_sessions=80)
    day = _session(settings)
    ingest_bars(day, settings=settings)
    symbol = scalar(settings, "select min(symbol) from raw.bars where date = %s", day)
    execute(settings, "update raw.bars set close = -5, low = -5 where symbol = %s and date = %s",
            symbol, day)
    with pytest.raises(DataQualityError):
        run_data_quality(day, run_id=QUALITY_RUN, dag_id=DAG_ID, settings=settings,
                         include_marts=False)
    return settings, symbol


def test_data_quality_tab_when_checks_failed_then_failures_first_and_nothing_external(
    failed_quality: tuple[Settings, str],
) -> None:
    settings, symbol = failed_quality
    client = _client(settings, "viewer-token")
    page = client.get(f"/runs/{DAG_ID}/{QUALITY_RUN}/data-quality")
    assert page.status_code == 200
    rows = re.findall(r"<tr><td class=\"(failed|passed)\">", page.text)
    assert rows and rows[0] == "failed" and "failed" not in rows[rows.index("passed"):]
    assert "raw_bars.prices_positive" in page.text and symbol in page.text
    assert not EXTERNAL.search(page.text)
    assert "http://" not in page.text and "https://" not in page.text
    links = re.findall(r'href="([^"]+)"', page.text)
    validation = [u for u in links if "/validations/raw_bars/" in u]
    assert validation and f"/files/{DAG_ID}/runs/{run_key(QUALITY_RUN)}/data_quality/" in validation[0]
    assert client.get(validation[0]).status_code == 200


def test_data_docs_when_served_then_no_external_asset_and_index_lists_validations(
    failed_quality: tuple[Settings, str],
) -> None:
    settings, symbol = failed_quality
    docs = report_path(DAG_ID, QUALITY_RUN, settings).parent / "data_quality"
    raw_pages = sorted(docs.rglob("*.html"))
    assert raw_pages and any("https://" in p.read_text() for p in raw_pages)  # GX's own pages do
    client = _client(settings, "viewer-token")
    base = f"/files/{DAG_ID}/runs/{run_key(QUALITY_RUN)}/data_quality/"
    for file in raw_pages:
        served = client.get(base + file.relative_to(docs).as_posix())
        assert served.status_code == 200, file
        assert not EXTERNAL.search(served.text), (file, EXTERNAL.search(served.text))
        assert "<script" not in served.text.lower()
        assert 'id="quant-offline"' in served.text
        assert "default-src 'self'" in served.headers["content-security-policy"]
    index = client.get(base + "index.html").text
    listed = re.findall(r'<li><a href="(validations/[^"]+)">([^<]+)</a> <span class="failed">', index)
    assert [suite for _, suite in listed] == ["raw_bars"]
    failing = client.get(base + listed[0][0])
    assert failing.status_code == 200 and symbol in failing.text


def test_data_quality_tab_when_nothing_recorded_then_html_page_names_run(clean_db: Settings) -> None:
    run_id = "manual__2026-12-02T23:00:00+00:00"
    answer = _client(clean_db, "viewer-token").get(f"/runs/{DAG_ID}/{run_id}/data-quality")
    assert answer.status_code == 404
    assert answer.headers["content-type"].startswith("text/html")
    assert f"no data-quality results recorded for run {run_id} of DAG {DAG_ID}" in answer.text
