"""Exceptions raised by the quant package, one per failure kind."""

from __future__ import annotations

__all__ = [
    "QuantError",
    "ConfigurationError",
    "DatabaseError",
    "MigrationError",
    "ProviderError",
    "DataValidationError",
    "PipelineRunError",
    "SidecarError",
    "SidecarAuthError",
    "BrokerError",
]


class QuantError(Exception):
    """Base class of every error the package raises on purpose."""


class ConfigurationError(QuantError):
    """Raised when a setting is missing or has an invalid value."""


class DatabaseError(QuantError):
    """Raised when the database cannot be started, reached or queried."""


class MigrationError(DatabaseError):
    """Raised when a schema migration fails or the migration history is inconsistent."""


class ProviderError(QuantError):
    """Raised when a market-data provider cannot deliver the data asked for."""


class DataValidationError(QuantError):
    """Raised when input data is malformed; the message names where and what."""


class PipelineRunError(QuantError):
    """Raised when a pipeline run (a DAG run driven from the CLI) does not succeed."""


class SidecarError(QuantError):
    """Raised by the sidecar client on any non-success: unreachable, timeout, 4xx/5xx, malformed answer."""


class SidecarAuthError(SidecarError):
    """Raised when the sidecar refuses a request for a missing or wrong bearer token."""


class BrokerError(QuantError):
    """Raised when a broker adapter cannot do what was asked (unknown order, refused submit)."""
