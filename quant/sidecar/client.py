"""Client of the risk sidecar, used by the DAG's pre-trade check and the CLI.

Importable alone: it loads none of the server (no FastAPI, no uvicorn, no
broker adapter), so a worker that only checks orders stays light.

Fail closed: every non-success (cannot connect, timeout, 4xx, 5xx, a body
that is not the expected shape) raises :class:`~quant.exceptions.SidecarError`
(:class:`~quant.exceptions.SidecarAuthError` for a refused token). Nothing is
retried: a check that timed out may have been booked as in flight by the
sidecar, so re-sending it could count the same orders twice; the caller
decides (the DAG task fails and submits nothing).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

import httpx
import msgspec

from quant.exceptions import SidecarAuthError, SidecarError
from quant.sidecar._token import resolve_token

if TYPE_CHECKING:
    from quant.config import Settings

__all__ = ["CheckOrder", "CheckResponse", "OrderVerdict", "SidecarClient", "resolve_token"]


class CheckOrder(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """One order to check (prices USD, quantities shares)."""

    client_order_id: str
    symbol: str
    side: Literal["buy", "sell"]
    qty: float
    price: float
    strategy: str | None = None


class OrderVerdict(msgspec.Struct, frozen=True, kw_only=True):
    """The sidecar's answer for one order.

    ``denials`` and ``shadow`` carry ``{"code", "rule", "context"}`` per denial.
    """

    client_order_id: str
    approved: bool
    reasons: list[str]
    denials: list[dict[str, Any]] = []
    shadow: list[dict[str, Any]] = []


class CheckResponse(msgspec.Struct, frozen=True, kw_only=True):
    """Answer of ``POST /v1/check``: the trading state and one verdict per order, in order."""

    trading_state: Literal["ACTIVE", "REDUCING", "HALTED"]
    results: list[OrderVerdict]

    @property
    def approved(self) -> list[OrderVerdict]:
        return [r for r in self.results if r.approved]

    @property
    def denied(self) -> list[OrderVerdict]:
        return [r for r in self.results if not r.approved]


class _Check(msgspec.Struct):
    orders: Sequence[CheckOrder]


_encode = msgspec.json.Encoder().encode
_check_response = msgspec.json.Decoder(CheckResponse)


class SidecarClient:
    """Talks to one sidecar over HTTP.

    Parameters
    ----------
    base_url : str
        e.g. ``http://127.0.0.1:8765`` (``settings.sidecar_url``).
    token : str or None
        Bearer token for kill, resume, marks, overrides and book.
    timeout_s : float
        Timeout of each request (connect, read, write), seconds.
    transport : httpx.BaseTransport, optional
        For tests (e.g. ``httpx.MockTransport``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_s: float = 2.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._http = httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(timeout_s),
            transport=transport or httpx.HTTPTransport(retries=0),
            headers={"content-type": "application/json"},
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> SidecarClient:
        """A client on ``settings.sidecar_url`` with the token of
        :func:`resolve_token` and ``settings.sidecar_timeout_s``."""
        return cls(
            settings.sidecar_url,
            token=resolve_token(settings),
            timeout_s=settings.sidecar_timeout_s,
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> SidecarClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- transport --------------------------------------------------------------------------
    def _request(
        self, method: str, path: str, body: bytes | None = None, *, auth: bool = False
    ) -> bytes:
        headers = {}
        if auth:
            if not self._token:
                raise SidecarAuthError(
                    f"{method} {path} needs the sidecar token: set QUANT_SIDECAR_TOKEN"
                )
            headers["authorization"] = f"Bearer {self._token}"
        try:
            response = self._http.request(method, path, content=body, headers=headers)
        except httpx.TimeoutException as exc:
            raise SidecarError(f"{method} {self.base_url}{path}: timed out ({exc})") from exc
        except httpx.HTTPError as exc:
            raise SidecarError(f"{method} {self.base_url}{path}: unreachable ({exc})") from exc
        if response.status_code != 200:
            try:
                message = msgspec.json.decode(response.content).get("error", response.text)
            except (msgspec.DecodeError, AttributeError):
                message = response.text[:500]
            kind = SidecarAuthError if response.status_code in (401, 403) else SidecarError
            raise kind(f"{method} {path}: HTTP {response.status_code}: {message}")
        return response.content

    def _json(
        self, method: str, path: str, payload: Any = None, *, auth: bool = False
    ) -> dict[str, Any]:
        body = None if payload is None else _encode(payload)
        content = self._request(method, path, body, auth=auth)
        try:
            out = msgspec.json.decode(content)
        except msgspec.DecodeError as exc:
            raise SidecarError(f"{method} {path}: malformed JSON answer: {exc}") from exc
        if not isinstance(out, dict):
            raise SidecarError(f"{method} {path}: expected a JSON object, got {type(out).__name__}")
        return out

    # -- API ------------------------------------------------------------------------------
    def health(self) -> dict[str, Any]:
        """``GET /health``."""
        return self._json("GET", "/health")

    def state(self) -> dict[str, Any]:
        """``GET /v1/state``: state, limits, book, recent kill-switch events."""
        return self._json("GET", "/v1/state")

    def check(self, orders: Sequence[CheckOrder | Mapping[str, Any]]) -> CheckResponse:
        """``POST /v1/check`` for a batch; one verdict per order, in order.

        Raises
        ------
        SidecarError
            Any non-success, or an answer whose ids do not match the orders sent.
        """
        batch = [o if isinstance(o, CheckOrder) else CheckOrder(**o) for o in orders]
        content = self._request("POST", "/v1/check", _encode(_Check(batch)))
        try:
            answer = _check_response.decode(content)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise SidecarError(f"POST /v1/check: malformed answer: {exc}") from exc
        sent = [o.client_order_id for o in batch]
        got = [r.client_order_id for r in answer.results]
        if sent != got:
            raise SidecarError(
                f"POST /v1/check: answer does not match the orders sent ({len(got)} results "
                f"for {len(sent)} orders)"
            )
        return answer

    def kill(
        self,
        reason: str,
        mode: Literal["halt", "reduce", "flatten"] = "halt",
        *,
        actor: str = "client",
    ) -> dict[str, Any]:
        """``POST /v1/kill``: trip the switch, cancel open orders, flatten if asked."""
        return self._json(
            "POST", "/v1/kill", {"reason": reason, "mode": mode, "actor": actor}, auth=True
        )

    def resume(
        self, reason: str = "resumed by an operator", *, actor: str = "client"
    ) -> dict[str, Any]:
        """``POST /v1/resume``: back to ACTIVE (recorded first)."""
        return self._json("POST", "/v1/resume", {"reason": reason, "actor": actor}, auth=True)

    def marks(self, prices: Mapping[str, float], at: float | None = None) -> dict[str, Any]:
        """``POST /v1/marks``: a batch of marks (may trip the switch)."""
        payload: dict[str, Any] = {"prices": dict(prices)}
        if at is not None:
            payload["at"] = at
        return self._json("POST", "/v1/marks", payload, auth=True)

    def set_override(
        self,
        scope: Literal["symbol", "strategy"],
        key: str,
        *,
        reason: str,
        size_multiplier: float = 1.0,
        reduce_only: bool = False,
        trading_disabled: bool = False,
        clear: bool = False,
        actor: str = "client",
    ) -> dict[str, Any]:
        """``POST /v1/overrides``: e.g. ``set_override("symbol", "AAPL", reduce_only=True,
        reason="position mismatch")`` from reconciliation."""
        return self._json(
            "POST",
            "/v1/overrides",
            {
                "scope": scope,
                "key": key,
                "reason": reason,
                "size_multiplier": size_multiplier,
                "reduce_only": reduce_only,
                "trading_disabled": trading_disabled,
                "clear": clear,
                "actor": actor,
            },
            auth=True,
        )

    def load_book(
        self,
        *,
        cash_usd: float,
        positions: Mapping[str, float],
        marks: Mapping[str, float] | None = None,
        universe: Mapping[str, str | None] | None = None,
        session: str | None = None,
        clear_in_flight: bool = True,
    ) -> dict[str, Any]:
        """``POST /v1/book``: replace the sidecar's book (start of day, after fills)."""
        payload: dict[str, Any] = {
            "cash_usd": cash_usd,
            "positions": dict(positions),
            "marks": dict(marks or {}),
            "clear_in_flight": clear_in_flight,
        }
        if universe is not None:
            payload["universe"] = dict(universe)
        if session is not None:
            payload["session"] = session
        return self._json("POST", "/v1/book", payload, auth=True)

    def sync_book(self) -> dict[str, Any]:
        """``POST /v1/book/sync``: the sidecar reloads positions and cash from its broker."""
        return self._json("POST", "/v1/book/sync", {}, auth=True)
