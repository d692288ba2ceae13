"""The client fails closed: every non-success raises, nothing is retried."""

from __future__ import annotations

import socket

import httpx
import pytest

from quant.exceptions import SidecarAuthError, SidecarError
from quant.sidecar import CheckOrder, SidecarClient

ORDER = CheckOrder(client_order_id="a", symbol="AAPL", side="buy", qty=1, price=100.0)


def mock(handler) -> SidecarClient:  # noqa: ANN001
    return SidecarClient("http://sidecar", token="t", transport=httpx.MockTransport(handler))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_check_when_sidecar_unreachable_then_raises() -> None:
    client = SidecarClient(f"http://127.0.0.1:{free_port()}", timeout_s=0.5)
    with pytest.raises(SidecarError, match="unreachable"):
        client.check([ORDER])


def test_check_when_server_error_then_raises_once_without_retry() -> None:
    calls = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(503, json={"error": "busy"})

    with pytest.raises(SidecarError, match="HTTP 503: busy"):
        mock(handler).check([ORDER])
    assert len(calls) == 1


def test_check_when_answer_malformed_then_raises() -> None:
    with pytest.raises(SidecarError, match="malformed"):
        mock(lambda r: httpx.Response(200, content=b"<html>")).check([ORDER])
    with pytest.raises(SidecarError, match="malformed"):
        mock(lambda r: httpx.Response(200, json={"results": []})).check([ORDER])


def test_check_when_answer_ids_do_not_match_then_raises() -> None:
    body = {
        "trading_state": "ACTIVE",
        "results": [{"client_order_id": "other", "approved": True, "reasons": []}],
    }
    with pytest.raises(SidecarError, match="does not match"):
        mock(lambda r: httpx.Response(200, json=body)).check([ORDER])


def test_check_when_timeout_then_raises() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=request)

    with pytest.raises(SidecarError, match="timed out"):
        mock(handler).check([ORDER])


def test_kill_when_refused_then_auth_error() -> None:
    with pytest.raises(SidecarAuthError, match="invalid bearer token"):
        mock(lambda r: httpx.Response(401, json={"error": "invalid bearer token"})).kill("x")
    with pytest.raises(SidecarAuthError, match="needs the sidecar token"):
        SidecarClient("http://sidecar").kill("x")


def test_check_when_approved_then_typed_verdicts() -> None:
    body = {
        "trading_state": "ACTIVE",
        "results": [{"client_order_id": "a", "approved": True, "reasons": []}],
    }
    answer = mock(lambda r: httpx.Response(200, json=body)).check(
        [{"client_order_id": "a", "symbol": "AAPL", "side": "buy", "qty": 1, "price": 100.0}]
    )
    assert answer.trading_state == "ACTIVE"
    assert [v.client_order_id for v in answer.approved] == ["a"]
