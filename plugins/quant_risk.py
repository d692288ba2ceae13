"""Airflow plugin ``quant_risk``: the Risk page and per-run report links in the Airflow UI.

- "Risk" in the navigation: the sidecar's state, limits, day P&L and recent
  kill-switch events, with kill and resume controls for users with the right to
  operate (Airflow role Op or Admin).
- On every DAG run: "Run report" and "Data quality" tabs with the run's own HTML
  report and its data-quality checks (with its Great Expectations Data Docs,
  served offline).

The pages are a FastAPI app (``quant.report.create_app``) served by the API
server under ``/quant``. Airflow does not authenticate a plugin's FastAPI app:
:class:`AirflowAuth` checks every request with Airflow's own auth manager, so
the pages know the same users and roles as the UI.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from quant.orchestration import TriggerConfGuard
from quant.report import create_app


class AirflowAuth:
    """The UI's login for the plugin's pages (the ``WebAuth`` of ``quant.report.create_app``).

    The user comes from the JWT the UI keeps in its ``_token`` cookie, or an
    ``Authorization: Bearer`` header, resolved by the configured auth manager
    (as Airflow's own ``resolve_user_from_token`` does). The user is resolved
    once per request.
    """

    async def _airflow_user(self, request: Any) -> Any:
        cached = getattr(request.state, "quant_airflow_user", False)
        if cached is not False:
            return cached
        from airflow.api_fastapi.app import get_auth_manager
        from airflow.api_fastapi.auth.managers.base_auth_manager import COOKIE_NAME_JWT_TOKEN
        from jwt import InvalidTokenError

        scheme, _, credentials = (request.headers.get("authorization") or "").partition(" ")
        if scheme.lower() == "bearer":
            token = credentials.strip()  # an explicit credential wins over the cookie
        else:
            token = request.cookies.get(COOKIE_NAME_JWT_TOKEN)
        user = None
        if token:
            try:
                user = await get_auth_manager().get_user_from_token(token)
            except InvalidTokenError:  # expired, revoked or forged: not logged in
                user = None
        request.state.quant_airflow_user = user
        return user

    async def user(self, request: Any) -> str | None:
        found = await self._airflow_user(request)
        return None if found is None else found.get_name()

    async def may_operate(self, request: Any) -> bool:
        found = await self._airflow_user(request)
        if found is None:
            return False
        from airflow.api_fastapi.app import get_auth_manager

        manager = get_auth_manager()
        # SimpleAuthManager grants every custom view to every viewer, so the view right alone
        # would let any viewer stop trading. Tripping the kill switch also needs the right to
        # change connections (PUT; role Op or Admin): the right to change the broker
        # connections is the right to stop what trades through them.
        return bool(
            manager.is_authorized_custom_view(method="POST", resource_name="Risk", user=found)
            and manager.is_authorized_connection(method="PUT", user=found)
        )


def dag_run_state(dag_id: str, run_id: str) -> str | None:
    """State of a DAG run in Airflow's metadata database, None when there is no such run."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        state = session.scalar(
            select(DagRun.state).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)
        )
    return None if state is None else str(getattr(state, "value", state))


class QuantRiskPlugin(AirflowPlugin):
    """Risk page and run-report links."""

    name = "quant_risk"
    fastapi_apps = [
        {
            "app": create_app(auth=AirflowAuth(), run_state=dag_run_state),
            "url_prefix": "/quant",
            "name": "quant",
        }
    ]
    # refuses a trigger or backfill whose conf has keys the DAG does not declare as params
    fastapi_root_middlewares = [{"middleware": TriggerConfGuard, "name": "quant_trigger_conf_guard"}]
    external_views = [
        {"name": "Risk", "href": "/quant/risk", "destination": "nav", "url_route": "risk"},
        {
            "name": "Run report",
            "href": "/quant/runs/{DAG_ID}/{RUN_ID}/report",
            "destination": "dag_run",
            "url_route": "run-report",
        },
        {
            "name": "Data quality",
            "href": "/quant/runs/{DAG_ID}/{RUN_ID}/data-quality",
            "destination": "dag_run",
            "url_route": "data-quality",
        },
    ]
