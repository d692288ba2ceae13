"""What the Alpaca provider and broker adapter share: credentials, constants, retries.

Credentials come from ``APCA_API_KEY_ID`` / ``APCA_API_SECRET_KEY`` unless
passed in, and are never logged or put in error messages. alpaca-py's REST
clients send requests without a timeout and retry 429 and 504 on their own
(3 more attempts, fixed 3 s sleeps); :func:`bounded` gives every request a
timeout and switches that retry off, so that the only retry loop is the
caller's, bounded and with exponential backoff (:func:`backoff_wait`, honouring
``Retry-After``: :func:`retry_after_s`).
"""

from __future__ import annotations

import os
from typing import Any
from urllib.parse import urlsplit

from quant.exceptions import ConfigurationError

__all__ = [
    "KEY_VARIABLE",
    "LIVE_HOST",
    "RETRYABLE_STATUS",
    "SECRET_VARIABLE",
    "URL_VARIABLE",
    "backoff_wait",
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


def backoff_wait(
    attempt: int, backoff_s: float, max_backoff_s: float, retry_after: float | None = None
) -> float:
    """Seconds to wait after failed attempt number ``attempt`` (1, 2, ...): ``backoff_s``
    doubled each time, at least the server's ``Retry-After``, at most ``max_backoff_s``."""
    wait = min(backoff_s * 2 ** (attempt - 1), max_backoff_s)
    if retry_after is not None:
        wait = min(max(wait, retry_after), max_backoff_s)
    return wait


def retry_after_s(exc: Any) -> float | None:
    """The ``Retry-After`` of the response an alpaca-py ``APIError`` carries, seconds."""
    response = getattr(exc, "response", None)
    value = None if response is None else response.headers.get("Retry-After")
    try:
        return None if value is None else float(value)
    except ValueError:
        return None
