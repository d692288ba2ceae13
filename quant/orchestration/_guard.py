"""Checking the conf of triggers and backfills: unknown keys refused, backfills one run at a time."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "BACKFILL_MAX_ACTIVE_RUNS",
    "TriggerConfGuard",
    "unknown_conf_keys",
]


BACKFILL_MAX_ACTIVE_RUNS = 1
"""Runs of a backfill at once when its creator does not say (the REST API would take 10)."""


def unknown_conf_keys(conf: Mapping[str, Any] | None, params: Iterable[str]) -> str | None:
    """The one-line refusal of a run conf with keys outside ``params``, or None when it has none.

    A DAG without params takes any conf (nothing to check it against).
    """
    known = sorted(params)
    unknown = sorted(set(conf or {}) - set(known))
    if not known or not unknown:
        return None
    return (
        f"unknown conf key(s) {', '.join(map(repr, unknown))}: "
        f"this DAG's params are {', '.join(known)}"
    )


class TriggerConfGuard:
    """ASGI middleware for the API server: checks the conf of triggers and backfills.

    Airflow validates each declared param's value at trigger time but keeps keys it
    does not know, so ``{"optimiser": "hrp"}`` would start a run that silently uses
    the default optimizer. This guard reads ``POST /api/v2/dags/{dag_id}/dagRuns``
    (the REST API and the UI's trigger form) and ``POST /api/v2/backfills``
    (``dag_run_conf``) and answers 400 naming the unknown keys and the known ones.
    The DAG's params come from its serialized version in the metadata database.
    A backfill created without ``max_active_runs`` gets
    :data:`BACKFILL_MAX_ACTIVE_RUNS` instead of the API's default of 10. Registered by the ``quant_risk`` plugin as a root middleware.
    """

    _TRIGGER = re.compile(r"^/api/v2/dags/(?P<dag_id>[^/]+)/dagRuns/?$")
    _BACKFILL = re.compile(r"^/api/v2/backfills/?$")

    def __init__(self, app: Any, params_of: Any = None) -> None:
        self.app = app
        self.params_of = params_of or _serialized_dag_params

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope.get("type") != "http" or scope.get("method") != "POST":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        trigger, backfill = self._TRIGGER.match(path), self._BACKFILL.match(path)
        if trigger is None and backfill is None:
            await self.app(scope, receive, send)
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        refusal, body = await self._check(body, trigger.group("dag_id") if trigger else None)
        if refusal is not None:
            payload = json.dumps({"detail": refusal}).encode()
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", b"application/json"),
                                    (b"content-length", str(len(payload)).encode())]})
            await send({"type": "http.response.body", "body": payload})
            return
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if sent:
                return await receive()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)

    async def _check(self, body: bytes, dag_id: str | None) -> tuple[str | None, bytes]:
        """The refusal (or None) and the body to pass on."""
        import anyio

        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return None, body  # the API answers malformed JSON itself
        if not isinstance(payload, dict):
            return None, body
        if dag_id is None and "max_active_runs" not in payload:
            # Airflow applies a backfill's own max_active_runs, not the DAG's, and the REST
            # API defaults it to 10: runs of one pipeline sharing its marts and its
            # simulator account must not run side by side unless the caller says so.
            payload["max_active_runs"] = BACKFILL_MAX_ACTIVE_RUNS
            body = json.dumps(payload).encode()
        conf = payload.get("conf") if dag_id else payload.get("dag_run_conf")
        dag_id = dag_id or payload.get("dag_id")
        if not isinstance(conf, dict) or not conf or not isinstance(dag_id, str):
            return None, body
        params = await anyio.to_thread.run_sync(self.params_of, dag_id)
        if params is None:
            return None, body  # unknown DAG: the API says so
        return unknown_conf_keys(conf, params), body


def _serialized_dag_params(dag_id: str) -> list[str] | None:
    """Param names of ``dag_id``'s latest serialized version (None when it has none)."""
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.utils.session import create_session

    with create_session() as session:
        found = SerializedDagModel.get_dag(dag_id, session=session)
    return None if found is None else list(found.params)
