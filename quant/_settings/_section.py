"""The base of every settings section: frozen, keyword-only, unknown fields refused."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

__all__ = ["Section"]

class Section(BaseModel):
    """A section of :class:`quant.config.Settings` (frozen; an unknown field is an error)."""

    model_config = ConfigDict(frozen=True, extra="forbid")
