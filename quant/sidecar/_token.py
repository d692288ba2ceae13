"""The sidecar's bearer token: from ``QUANT_SIDECAR_TOKEN``, or the local demo's file under QUANT_HOME.

Standard library only: the client reads the token here without importing the server.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from quant.config import Settings

__all__ = ["ensure_demo_token", "resolve_token"]


def resolve_token(settings: Settings) -> str | None:
    """The sidecar token: ``QUANT_SIDECAR_TOKEN``, else the demo token file under
    QUANT_HOME if one was written, else None."""
    if settings.sidecar_token is not None:
        return settings.sidecar_token.get_secret_value()
    path = settings.sidecar_token_file
    if path.is_file():
        return path.read_text().strip() or None
    return None


def ensure_demo_token(settings: Settings) -> tuple[str, Path]:
    """The local demo's token: reuse the file under QUANT_HOME or generate one
    (mode 0600). Returns the token and the file's path."""
    path = settings.sidecar_token_file
    if path.is_file() and path.read_text().strip():
        return path.read_text().strip(), path
    path.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return token, path
