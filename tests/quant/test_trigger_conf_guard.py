"""The API server's trigger guard: unknown conf keys refused, backfills one run at a time."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from quant.orchestration import BACKFILL_MAX_ACTIVE_RUNS, TriggerConfGuard, unknown_conf_keys

PARAMS = ["dry_run", "broker", "optimizer", "symbols", "force_retrain"]


class _App:
    """An ASGI app that records the body it was given and answers 200."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        message = await receive()
        self.bodies.append(message.get("body", b""))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def _call(path: str, body: dict, method: str = "POST") -> tuple[int, bytes, _App]:
    app = _App()
    guard = TriggerConfGuard(app, params_of=lambda dag_id: PARAMS if dag_id == "daily_trading" else None)
    sent: list[dict] = []
    raw = json.dumps(body).encode()

    async def receive() -> dict:
        return {"type": "http.request", "body": raw, "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    asyncio.run(guard({"type": "http", "method": method, "path": path}, receive, send))
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    payload = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, payload, app


def test_guard_when_trigger_conf_has_unknown_key_then_400_names_it_and_known_params() -> None:
    status, payload, app = _call("/api/v2/dags/daily_trading/dagRuns",
                                 {"logical_date": None, "conf": {"optimiser": "hrp"}})
    assert status == 400
    detail = json.loads(payload)["detail"]
    assert "'optimiser'" in detail
    assert all(name in detail for name in PARAMS)
    assert app.bodies == []  # never reached Airflow


def test_guard_when_trigger_conf_known_then_passed_through_unchanged() -> None:
    body = {"logical_date": None, "conf": {"optimizer": "hrp", "dry_run": True}}
    status, _, app = _call("/api/v2/dags/daily_trading/dagRuns", body)
    assert status == 200
    assert json.loads(app.bodies[0]) == body


def test_guard_when_backfill_without_max_active_runs_then_one_at_a_time() -> None:
    status, _, app = _call("/api/v2/backfills", {"dag_id": "daily_trading",
                                                  "from_date": "2026-01-05T00:00:00Z",
                                                  "to_date": "2026-01-09T00:00:00Z"})
    assert status == 200
    assert json.loads(app.bodies[0])["max_active_runs"] == BACKFILL_MAX_ACTIVE_RUNS == 1


def test_guard_when_backfill_sets_max_active_runs_then_kept() -> None:
    status, _, app = _call("/api/v2/backfills", {"dag_id": "daily_trading", "max_active_runs": 3,
                                                  "from_date": "2026-01-05T00:00:00Z",
                                                  "to_date": "2026-01-09T00:00:00Z"})
    assert status == 200 and json.loads(app.bodies[0])["max_active_runs"] == 3


def test_guard_when_backfill_conf_has_unknown_key_then_400() -> None:
    status, payload, _ = _call("/api/v2/backfills", {"dag_id": "daily_trading",
                                                      "from_date": "2026-01-05T00:00:00Z",
                                                      "to_date": "2026-01-09T00:00:00Z",
                                                      "dag_run_conf": {"dryrun": True}})
    assert status == 400 and "'dryrun'" in json.loads(payload)["detail"]


def test_guard_when_other_route_or_unknown_dag_then_untouched() -> None:
    assert _call("/api/v2/dags/other/dagRuns", {"conf": {"anything": 1}})[0] == 200
    assert _call("/api/v2/dags/daily_trading", {"is_paused": False}, method="PATCH")[0] == 200


def test_unknown_conf_keys_when_dag_has_no_params_then_any_conf_accepted() -> None:
    assert unknown_conf_keys({"anything": 1}, []) is None
    assert unknown_conf_keys({}, PARAMS) is None
    assert unknown_conf_keys(None, PARAMS) is None
