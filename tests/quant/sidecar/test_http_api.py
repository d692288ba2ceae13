"""The HTTP API in process (Starlette test client): contract, auth, bad requests, metrics."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from starlette.testclient import TestClient

from quant.config import RiskSettings
from quant.risk import TradingState
from quant.sidecar import RiskService, create_app

TOKEN = "s3cret-token"
AUTH = {"authorization": f"Bearer {TOKEN}"}


@pytest.fixture()
def service() -> RiskService:
    svc = RiskService(RiskSettings())
    svc.start()
    svc.load_book(
        cash_usd=1_000_000.0,
        positions={"AAPL": 100},
        marks={"AAPL": 100.0, "MSFT": 400.0},
        universe={"AAPL": "Technology", "MSFT": "Technology"},
    )
    return svc


@pytest.fixture()
def client(service: RiskService) -> Iterator[TestClient]:
    with TestClient(create_app(service, token=TOKEN, max_body_bytes=10_000, max_orders=50)) as c:
        yield c


def one(coid: str = "o-1", **kw: object) -> dict[str, object]:
    return {
        "client_order_id": coid,
        "symbol": "MSFT",
        "side": "buy",
        "qty": 10,
        "price": 401.0,
    } | kw


def test_health_when_started_then_ok_and_state() -> None:
    svc = RiskService(RiskSettings())
    with TestClient(create_app(svc, token=TOKEN)) as c:
        assert c.get("/health").json() == {"status": "ok", "trading_state": "ACTIVE"}


def test_check_when_batch_then_one_result_per_order_in_order(client: TestClient) -> None:
    r = client.post("/v1/check", json={"orders": [one("a"), one("b", symbol="ZZZ"), one("c")]})
    assert r.status_code == 200
    body = r.json()
    assert body["trading_state"] == "ACTIVE"
    assert [x["client_order_id"] for x in body["results"]] == ["a", "b", "c"]
    assert [x["approved"] for x in body["results"]] == [True, False, True]
    assert body["results"][1]["reasons"] == ["UNKNOWN_SYMBOL"]
    assert body["results"][1]["denials"][0]["context"]["symbol"] == "ZZZ"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "malformed JSON"),
        (b'{"orders": [{"symbol": "MSFT"}]}', "invalid request"),
        (b'{"orders": [], "extra": 1}', "invalid request"),
        (b'{"orders": [{"client_order_id": "a", "symbol": "A", "side": "hold", "qty": 1, "price": 1}]}', "invalid request"),
        (b"", "empty body"),
    ],
)  # fmt: skip
def test_check_when_body_malformed_then_400_with_message(
    client: TestClient, body: bytes, fragment: str
) -> None:
    r = client.post("/v1/check", content=body)
    assert r.status_code == 400
    assert fragment in r.json()["error"]


def test_check_when_body_oversized_then_413(client: TestClient) -> None:
    r = client.post("/v1/check", content=b"{" + b" " * 20_000 + b"}")
    assert r.status_code == 413
    assert "exceeds" in r.json()["error"]


def test_check_when_too_many_orders_then_413(client: TestClient) -> None:
    r = client.post("/v1/check", json={"orders": [one(f"o-{i}", qty=1) for i in range(51)]})
    assert r.status_code == 413


@pytest.mark.parametrize(
    "headers", [{}, {"authorization": "Bearer wrong"}, {"authorization": TOKEN}]
)
def test_kill_when_token_missing_or_wrong_then_refused_and_state_unchanged(
    client: TestClient, service: RiskService, headers: dict[str, str]
) -> None:
    r = client.post("/v1/kill", json={"reason": "x"}, headers=headers)
    assert r.status_code == 401
    assert "token" in r.json()["error"]
    assert service.state is TradingState.ACTIVE


def test_resume_when_token_wrong_then_refused(client: TestClient, service: RiskService) -> None:
    client.post("/v1/kill", json={"reason": "x"}, headers=AUTH)
    r = client.post("/v1/resume", headers={"authorization": "Bearer nope"})
    assert r.status_code == 401
    assert service.state is TradingState.HALTED


def test_kill_then_check_denied_then_resume_then_approved(client: TestClient) -> None:
    r = client.post("/v1/kill", json={"reason": "drill", "mode": "halt"}, headers=AUTH)
    assert r.status_code == 200 and r.json()["trading_state"] == "HALTED"
    denied = client.post("/v1/check", json={"orders": [one("a")]}).json()
    assert denied["trading_state"] == "HALTED"
    assert denied["results"][0]["reasons"] == ["TRADING_HALTED"]
    assert client.post("/v1/resume", json={"reason": "drill over"}, headers=AUTH).status_code == 200
    assert client.post("/v1/check", json={"orders": [one("b")]}).json()["results"][0]["approved"]


def test_kill_when_reduce_mode_then_reducing_lets_sells_of_longs_through(
    client: TestClient,
) -> None:
    client.post("/v1/kill", json={"reason": "de-risk", "mode": "reduce"}, headers=AUTH)
    body = client.post(
        "/v1/check",
        json={"orders": [one("a"), one("b", symbol="AAPL", side="sell", qty=50, price=100.0)]},
    ).json()
    assert body["trading_state"] == "REDUCING"
    assert [x["reasons"] for x in body["results"]] == [["TRADING_REDUCING"], []]


def test_overrides_when_symbol_set_reduce_only_then_buys_denied(client: TestClient) -> None:
    r = client.post(
        "/v1/overrides",
        json={"scope": "symbol", "key": "msft", "reduce_only": True, "reason": "position mismatch"},
        headers=AUTH,
    )
    assert r.status_code == 200 and r.json()["override"]["reduce_only"]
    body = client.post("/v1/check", json={"orders": [one("a")]}).json()
    assert body["results"][0]["reasons"] == ["SYMBOL_REDUCE_ONLY"]
    assert (
        client.post(
            "/v1/overrides", json={"scope": "symbol", "key": "MSFT"}, headers=AUTH
        ).status_code
        == 400
    )
    client.post(
        "/v1/overrides",
        json={"scope": "symbol", "key": "MSFT", "clear": True, "reason": "reconciled"},
        headers=AUTH,
    )
    assert client.post("/v1/check", json={"orders": [one("b")]}).json()["results"][0]["approved"]


def test_marks_when_token_missing_then_refused(client: TestClient) -> None:
    assert client.post("/v1/marks", json={"prices": {"AAPL": 1.0}}).status_code == 401
    assert (
        client.post("/v1/marks", json={"prices": {"AAPL": -1.0}}, headers=AUTH).status_code == 400
    )


def test_state_when_asked_then_limits_book_and_rules(client: TestClient) -> None:
    body = client.get("/v1/state").json()
    assert body["trading_state"] == "ACTIVE"
    assert body["limits"]["max_position_weight"] == 0.10
    assert body["book"]["positions"] == {"AAPL": 100}
    assert {r["name"] for r in body["rules"]} >= {"max_notional_per_order", "daily_loss"}


def test_metrics_when_checks_done_then_counts_denials_latency_and_state(client: TestClient) -> None:
    client.post("/v1/check", json={"orders": [one("a"), one("b", symbol="ZZZ")]})
    text = client.get("/metrics").text
    assert 'quant_sidecar_checks_total{result="approved"} 1.0' in text
    assert 'quant_sidecar_denials_total{enforced="true",reason="UNKNOWN_SYMBOL"} 1.0' in text
    assert "quant_sidecar_check_latency_seconds_bucket" in text
    assert 'quant_sidecar_trading_state{state="ACTIVE"} 1.0' in text


def test_unknown_path_when_requested_then_json_404(client: TestClient) -> None:
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and "error" in r.json()
