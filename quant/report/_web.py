"""Pages the Airflow plugin ``quant_risk`` adds to the Airflow UI.

A FastAPI app (mounted by the plugin under ``/quant``) with:

- ``GET /quant/risk``: the sidecar's trading state, limits, book, day P&L and
  recent kill-switch events, with kill and resume forms;
- ``POST /quant/risk/kill`` and ``/quant/risk/resume``: trip and reset the kill
  switch. The sidecar's token is read on the server from the settings (never
  asked for, shown or logged); the acting user is recorded as the event's actor;
- ``GET /quant/runs/{dag_id}/{run_id}/report``: the run's own report (a page
  saying why when it has none yet);
- ``GET /quant/runs/{dag_id}/{run_id}/data-quality``: the run's checks from
  ``ops.dq_results``, failures first, with links to its Data Docs;
- ``GET /quant/files/...``: the report folder; Great Expectations pages are
  served with every reference to another host removed.

Every route needs a logged-in user (401 with a link to the login page
otherwise); kill and resume also need the right to operate (403 otherwise) and a
POST from this host (Origin or Referer; 403 otherwise). Who is logged in and what
they may do is asked from a :class:`WebAuth` passed in (the plugin's uses
Airflow's auth manager). Every page is self-contained: no request leaves the
machine, and a Content-Security-Policy says so to the browser too. It imports
nothing from Airflow, so it is tested on its own.

This module holds the app and its routes; the pages' HTML is rendered by
``_web_pages.py``.
"""

# No ``from __future__ import annotations``: FastAPI reads the route functions' annotations,
# and ``Request`` is imported inside create_app (the module imports no web framework).
import html
import inspect
import logging
import mimetypes
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import quote, urlsplit

from quant.config import Settings, get_settings
from quant.report._data_docs import offline_html, validation_pages, validations_banner
from quant.report._web_pages import data_quality_body, no_report_body, page, risk_body
from quant.run_folders import data_docs_path, report_path, run_key

__all__ = ["WebAuth", "create_app"]

log = logging.getLogger(__name__)

_T = TypeVar("_T")

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "font-src 'self' data:; script-src 'none'; connect-src 'self'; form-action 'self'; "
    "frame-ancestors 'self'; base-uri 'self'"
)
"""Sent with every answer: the browser loads nothing from another host either."""

_MODES = ("halt", "reduce", "flatten")
_ACTOR_MAX = 64  # the sidecar's limit on an event's actor


class WebAuth(Protocol):
    """Who is asking and what they may do; the plugin answers with Airflow's auth manager.

    Either method may be a coroutine function (Airflow resolves its tokens
    asynchronously) or a plain one.
    """

    def user(self, request: Any) -> str | None | Awaitable[str | None]:
        """The logged-in user's name, or None when the request carries no valid login."""
        ...

    def may_operate(self, request: Any) -> bool | Awaitable[bool]:
        """Whether the logged-in user may trip and reset the kill switch."""
        ...


RunState = Callable[[str, str], str | None]
"""``(dag_id, run_id) -> state`` of a DAG run ("failed", "running", ...), None when unknown."""


async def _answer(value: _T | Awaitable[_T]) -> _T:
    return await value if inspect.isawaitable(value) else value  # type: ignore[return-value]


def _same_host(request: Any) -> bool:
    """Whether a POST comes from a page of this host (Origin, else Referer; neither: no)."""
    host = (request.headers.get("host") or "").lower()
    origin = request.headers.get("origin")
    source = origin if origin and origin != "null" else request.headers.get("referer")
    if origin == "null" or not source or not host:
        return False
    return urlsplit(source).netloc.lower() == host


def create_app(
    settings: Settings | None = None,
    *,
    auth: WebAuth,
    run_state: RunState | None = None,
) -> Any:
    """The FastAPI app of the UI pages.

    Parameters
    ----------
    settings : Settings, optional
        Default: :func:`quant.config.get_settings` when a request needs them.
    auth : WebAuth
        Resolves the logged-in user and their right to operate the kill switch.
    run_state : callable, optional
        ``(dag_id, run_id) -> state`` of a DAG run, so the page of a run without a
        report can say why (the plugin reads Airflow's metadata database).
    """
    from fastapi import FastAPI, Form, Request
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException as StarletteHTTPException

    from quant.exceptions import QuantError
    from quant.sidecar.client import SidecarClient, resolve_token

    app = FastAPI(title="quant", docs_url=None, redoc_url=None, openapi_url=None)

    def _settings() -> Settings:
        return settings or get_settings()

    def _html(title: str, body: str, status: int = 200) -> HTMLResponse:
        return HTMLResponse(page(title, body), status_code=status,
                            headers={"cache-control": "no-store"})

    def _root(request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def _login_page(request: Request) -> HTMLResponse:
        here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        login = (f"{str(request.scope.get('app_root_path', '')).rstrip('/')}/auth/login/"
                 f"?next={quote(here, safe='/')}")
        return _html(
            "Login required",
            "<h1>Login required</h1><p>This page of the quant plugin needs an Airflow login.</p>"
            f'<p><a href="{html.escape(login)}">Log in to Airflow</a>, then open it again.</p>',
            status=401,
        )

    @app.middleware("http")
    async def require_login(request: Request, call_next: Any) -> Response:
        user = await _answer(auth.user(request))
        if not user:
            response: Response = _login_page(request)
        else:
            request.state.quant_user = user
            response = await call_next(request)
        response.headers.setdefault("content-security-policy", CONTENT_SECURITY_POLICY)
        response.headers.setdefault("x-content-type-options", "nosniff")
        return response

    @app.exception_handler(StarletteHTTPException)
    async def html_errors(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        return _html(f"{exc.status_code}", f"<h1>{exc.status_code}</h1>"
                     f"<p>{html.escape(str(exc.detail))}</p>", status=exc.status_code)

    @app.exception_handler(RequestValidationError)
    async def html_bad_form(request: Request, exc: RequestValidationError) -> HTMLResponse:
        fields = ", ".join(".".join(str(x) for x in e.get("loc", ())[1:]) or "?"
                           for e in exc.errors())
        return _html("Bad request", f"<h1>Bad request</h1><p>Missing or invalid: "
                     f"{html.escape(fields)}.</p>", status=400)

    # -- risk ------------------------------------------------------------------------------
    def _state() -> tuple[dict[str, Any] | None, str | None]:
        s = _settings()
        try:
            with SidecarClient(s.sidecar_url, timeout_s=2.0) as client:
                return client.state(), None
        except QuantError as exc:
            return None, str(exc)

    async def _risk(request: Request, message: str | None = None, status: int = 200) -> HTMLResponse:
        state, error = await run_in_threadpool(_state)
        body = risk_body(state, error, message, request.state.quant_user)
        return _html("Risk", body, status=status)

    async def _may_operate(request: Request) -> HTMLResponse | None:
        """None when the POST may go ahead, else the refusal page."""
        if not _same_host(request):
            return _html("Refused", "<h1>Refused</h1><p>This form must be sent from a page of "
                         "this server (the Origin or Referer of the request names another "
                         "host, or none).</p>", status=403)
        if not await _answer(auth.may_operate(request)):
            return _html(
                "Not allowed",
                f"<h1>Not allowed</h1><p>{html.escape(request.state.quant_user)} may not operate "
                "the kill switch: it needs the right to change connections (Airflow role Op or "
                "Admin).</p>",
                status=403,
            )
        return None

    def _sidecar_call(action: str, reason: str, mode: str, actor: str) -> dict[str, Any]:
        with SidecarClient.from_settings(_settings()) as client:
            if action == "kill":
                return client.kill(reason, mode=mode, actor=actor)  # type: ignore[arg-type]
            return client.resume(reason, actor=actor)

    def _scrub(text: str) -> str:
        secret = resolve_token(_settings())
        return text.replace(secret, "***") if secret else text

    @app.get("/risk", response_class=HTMLResponse)
    async def risk_page(request: Request) -> HTMLResponse:
        return await _risk(request)

    @app.post("/risk/kill", response_class=HTMLResponse)
    async def risk_kill(
        request: Request, reason: str = Form(..., max_length=500), mode: str = Form("halt")
    ) -> HTMLResponse:
        refusal = await _may_operate(request)
        if refusal is not None:
            return refusal
        if mode not in _MODES:
            return await _risk(request, f"unknown mode {mode!r}", status=400)
        actor = request.state.quant_user[:_ACTOR_MAX]
        try:
            out = await run_in_threadpool(_sidecar_call, "kill", reason, mode, actor)
        except QuantError as exc:
            return await _risk(request, f"kill refused: {_scrub(str(exc))}", status=400)
        log.info("kill switch tripped (%s) by %s: %s", mode, actor, reason)
        return await _risk(request, f"kill switch tripped ({mode}): {out.get('trading_state', '')}")

    @app.post("/risk/resume", response_class=HTMLResponse)
    async def risk_resume(request: Request, reason: str = Form(..., max_length=500)) -> HTMLResponse:
        refusal = await _may_operate(request)
        if refusal is not None:
            return refusal
        actor = request.state.quant_user[:_ACTOR_MAX]
        try:
            await run_in_threadpool(_sidecar_call, "resume", reason, "halt", actor)
        except QuantError as exc:
            return await _risk(request, f"resume refused: {_scrub(str(exc))}", status=400)
        log.info("trading resumed by %s: %s", actor, reason)
        return await _risk(request, "trading resumed")

    # -- runs ------------------------------------------------------------------------------
    def _files_url(request: Request, dag_id: str, run_id: str, rest: str) -> str:
        return f"{_root(request)}/files/{quote(dag_id)}/runs/{quote(run_key(run_id))}/{rest}"

    def _paths(dag_id: str, run_id: str) -> tuple[Path, Path]:
        try:
            return (report_path(dag_id, run_id, _settings()),
                    data_docs_path(dag_id, run_id, _settings()))
        except ValueError as exc:
            raise StarletteHTTPException(404, str(exc)) from exc

    def _state_of(dag_id: str, run_id: str) -> str | None:
        return run_state(dag_id, run_id) if run_state is not None else None

    @app.get("/runs/{dag_id}/{run_id:path}/report", response_model=None)
    async def run_report(request: Request, dag_id: str, run_id: str) -> Response:
        report, _ = _paths(dag_id, run_id)
        if report.is_file():
            return RedirectResponse(_files_url(request, dag_id, run_id, "index.html"), 302)
        state = await run_in_threadpool(_state_of, dag_id, run_id)
        return _html("No run report", no_report_body(dag_id, run_id, state), status=404)

    def _dq_rows(run_id: str) -> list[dict[str, Any]]:
        from quant.db import connect

        conn = connect(_settings())
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    """
                    select suite, check_name, severity, success, observed_value, unexpected,
                           session_date, checked_at
                    from ops.dq_results where run_id = %s
                    order by success, severity, suite, check_name
                    """,
                    (run_id,),
                )
                names = [c.name for c in cur.description]
                return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        finally:
            conn.close()

    @app.get("/runs/{dag_id}/{run_id:path}/data-quality", response_class=HTMLResponse)
    async def run_data_quality(request: Request, dag_id: str, run_id: str) -> HTMLResponse:
        _, docs = _paths(dag_id, run_id)
        rows = await run_in_threadpool(_dq_rows, run_id)
        pages = validation_pages(docs)
        what = f"run {run_id} of DAG {dag_id}"
        if not rows and not pages:
            return _html("No data-quality results",
                         f"<h1>No data-quality results</h1><p>no data-quality results recorded "
                         f"for {html.escape(what)}.</p><p>The run's data-quality task has not "
                         "run (yet), or failed before it recorded anything.</p>", status=404)
        docs_url = _files_url(request, dag_id, run_id, "data_quality/")
        return _html(f"Data quality {dag_id} {run_id}",
                     data_quality_body(dag_id, run_id, rows, pages, docs, docs_url))

    # -- files -----------------------------------------------------------------------------
    def _failed_suites_of_key(key: str) -> set[str]:
        """Suites with a failed check in the run whose folder is ``key`` (see :func:`run_key`)."""
        from quant.db import connect

        # A key is the run id, or its sanitised form (where "_" stands for any character, as in
        # LIKE, and a long one is cut at 120) plus "~" and a hash: candidates are checked here.
        safe, changed, _ = key.partition("~")
        pattern = safe + ("%" if changed and len(safe) >= 120 else "")
        conn = connect(_settings())
        try:
            with conn, conn.cursor() as cur:
                cur.execute(
                    "select run_id, suite from ops.dq_results where run_id like %s "
                    "group by run_id, suite having not bool_and(success)",
                    (pattern,),
                )
                rows = cur.fetchall()
        finally:
            conn.close()
        return {suite for run_id, suite in rows if run_key(run_id) == key}

    @app.get("/files/{path:path}", response_model=None)
    async def files(request: Request, path: str) -> Response:
        root = _settings().reports_dir.resolve()
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if any(p == ".." or p.startswith(("/", "\\")) or "\\" in p or "\x00" in p for p in parts):
            return _html("Refused", "<h1>Refused</h1><p>Path outside the report folder.</p>",
                         status=404)
        target = root.joinpath(*parts).resolve()
        if target != root and root not in target.parents:
            return _html("Refused", "<h1>Refused</h1><p>Path outside the report folder.</p>",
                         status=404)
        if target.is_dir():
            if not request.url.path.endswith("/"):
                return RedirectResponse(request.url.path + "/", 302)
            target = target / "index.html"
        if not target.is_file():
            return _html("Not found", f"<h1>Not found</h1><p>No file <code>{html.escape(path)}"
                         "</code> in the report folder.</p>", status=404)
        if "data_quality" in parts and target.suffix == ".html":
            text = await run_in_threadpool(target.read_text, "utf-8", "replace")
            banner = ""
            if target.name == "index.html" and target.parent.name == "data_quality":
                failed = await run_in_threadpool(_failed_suites_of_key, target.parent.parent.name)
                banner = validations_banner(validation_pages(target.parent), failed, "")
            return HTMLResponse(offline_html(text, host=request.headers.get("host"),
                                             banner=banner),
                                headers={"cache-control": "no-store"})
        media = mimetypes.guess_type(target.name)[0] or "application/octet-stream"
        return FileResponse(target, media_type=media, headers={"cache-control": "no-store"})

    return app
