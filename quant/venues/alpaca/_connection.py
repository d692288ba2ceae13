"""What the Alpaca provider and broker adapter share: credentials, constants, retries.

Credentials come from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` unless
passed in, and are never logged or put in error messages. alpaca-py's REST
clients send requests without a timeout and retry 429 and 504 on their own
(3 more attempts, fixed 3 s sleeps); :func:`bounded` gives every request a
timeout and switches that retry off, so that the only retry loop is the
caller's (:class:`~quant.venues._retry.Backoff`), bounded and with exponential
backoff honouring ``Retry-After`` (:func:`retry_after_s`); :func:`attempt_request`
tells the failures worth another attempt from the others.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from quant.exceptions import ConfigurationError
from quant.venues._retry import Retryable

__all__ = [
    "KEY_VARIABLE",
    "LIVE_HOST",
    "RETRYABLE_STATUS",
    "SECRET_VARIABLE",
    "URL_VARIABLE",
    "attempt_request",
    "bounded",
    "credentials",
    "retry_after_s",
    "trading_url",
]

RETRYABLE_STATUS: frozenset[int] = frozenset({429, 500, 502, 503, 504})
"""HTTP statuses retried with backoff."""

KEY_VARIABLE = "APCA_API_KEY_ID"
SECRET_VARIABLE = "APCA_API_SECRET_KEY"
URL_VARIABLE = "APCA_API_BASE_URL"
"""The trading server (the broker adapter's), when not Alpaca's own."""
LIVE_HOST = "api.alpaca.markets"
"""Host of Alpaca's live trading server."""

_T = TypeVar("_T")


def credentials(api_key: str | None, secret_key: str | None) -> tuple[str | None, str | None]:
    """The key id and secret given, else those of the environment (``None`` if unset)."""
    return api_key or os.environ.get(KEY_VARIABLE), secret_key or os.environ.get(SECRET_VARIABLE)


def trading_url(base_url: str | None, *, paper: bool) -> str | None:
    """The trading server: ``base_url``, else ``APCA_API_BASE_URL``, else ``None``
    (Alpaca's own), without a trailing ``/v2``.

    Raises
    ------
    ConfigurationError
        The URL is not http(s), or points at Alpaca's live server in paper mode.
    """
    base_url = (base_url or os.environ.get(URL_VARIABLE) or "").rstrip("/") or None
    if base_url is not None:
        if not base_url.startswith(("http://", "https://")):
            raise ConfigurationError(f"{URL_VARIABLE}: must be an http(s) URL")
        if base_url.endswith("/v2"):
            base_url = base_url[: -len("/v2")]
        if paper and urlsplit(base_url).hostname == LIVE_HOST:
            raise ConfigurationError(
                f"{URL_VARIABLE} points at Alpaca's live server but the trading mode is paper"
            )
    return base_url


def bounded(client: Any, timeout_s: float) -> None:
    """Make an alpaca-py REST client send every request with a timeout, seconds, and
    not retry on its own.

    A hung connection would otherwise hang the task; the SDK's retry would multiply
    the caller's attempts.
    """
    client._retry = 0
    session = client._session
    request = session.request

    def request_with_timeout(method: str, url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", timeout_s)
        return request(method, url, **kwargs)

    session.request = request_with_timeout


def attempt_request(send: Callable[[], _T]) -> _T:
    """Send one request of an alpaca-py REST client (``send``), marking the failures worth
    another attempt.

    Raises
    ------
    Retryable
        HTTP 429 or 5xx (with the server's ``Retry-After``), a timeout or a connection
        error; all but a 429 may have reached the server.
    alpaca.common.exceptions.APIError
        Any other refusal, as alpaca-py raised it.
    """
    import requests
    from alpaca.common.exceptions import APIError

    try:
        return send()
    except APIError as exc:
        status = exc.status_code
        if status in RETRYABLE_STATUS:
            raise Retryable(
                f"HTTP {status}", may_have_reached=status != 429, wait_s=retry_after_s(exc)
            ) from None
        raise
    except requests.Timeout as exc:
        raise Retryable(f"timeout ({type(exc).__name__})") from None
    except requests.ConnectionError as exc:
        raise Retryable(f"connection error ({type(exc).__name__})") from None


def retry_after_s(exc: Any) -> float | None:
    """The ``Retry-After`` of the response an alpaca-py ``APIError`` carries, seconds."""
    response = getattr(exc, "response", None)
    value = None if response is None else response.headers.get("Retry-After")
    try:
        return None if value is None else float(value)
    except ValueError:
        return None
