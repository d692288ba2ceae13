"""Exceptions raised by the quant package, one per failure kind."""

from __future__ import annotations

__all__ = [
    "QuantError",
    "ConfigurationError",
    "DatabaseError",
    "MigrationError",
    "ProviderError",
    "DataValidationError",
    "DataFileError",
    "ProviderUnavailableError",
    "PipelineRunError",
    "SidecarError",
    "SidecarAuthError",
    "BrokerError",
    "BrokerUnavailableError",
    "ExecutionError",
    "ReconciliationError",
    "TradingHaltedError",
    "TradingModeError",
    "PortfolioError",
    "OptimizationError",
    "LimitViolationError",
    "ModelError",
    "TrainingDataError",
    "ModelArtifactError",
    "NoChampionError",
    "BacktestError",
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


class DataFileError(DataValidationError):
    """Raised when a data file is malformed; ``path``, ``row`` (1-based line) and ``column`` say where."""

    def __init__(
        self,
        path: str,
        row: int | None,
        column: str | None,
        problem: str,
        *,
        row_kind: str = "line",
    ) -> None:
        self.path = path
        self.row = row
        self.column = column
        self.problem = problem
        where = path
        if row is not None:
            where += f", {row_kind} {row}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(f"{where}: {problem}")


class ProviderUnavailableError(ProviderError):
    """Raised when a provider's service keeps failing (rate limit, 5xx, unreachable) after bounded retries."""


class PipelineRunError(QuantError):
    """Raised when a pipeline run (a DAG run driven from the CLI) does not succeed."""


class SidecarError(QuantError):
    """Raised by the sidecar client on any non-success: unreachable, timeout, 4xx/5xx, malformed answer."""


class SidecarAuthError(SidecarError):
    """Raised when the sidecar refuses a request for a missing or wrong bearer token."""


class BrokerError(QuantError):
    """Raised when a broker adapter cannot do what was asked (unknown order, refused submit)."""


class BrokerUnavailableError(BrokerError):
    """Raised when a broker keeps failing (429, 5xx, timeouts, unreachable) after bounded retries."""


class ExecutionError(QuantError):
    """Raised when an execution stage cannot run (no target weights, no prices, no run record)."""


class TradingHaltedError(ExecutionError):
    """Raised when the risk sidecar is HALTED at submission: nothing is submitted."""


class ReconciliationError(ExecutionError):
    """Raised when the broker's positions differ from the books' positions (``ops.positions``); ``breaks`` lists them."""

    def __init__(self, message: str, breaks: list[dict]) -> None:
        self.breaks = list(breaks)
        super().__init__(message)


class TradingModeError(ConfigurationError):
    """Raised when a run's trading mode and broker break a safety rule (live in a backfill, ...)."""


class ModelError(QuantError):
    """Base class of the errors of model training, the model registry and prediction."""


class TrainingDataError(ModelError):
    """Raised when the data known at a date cannot train a model (too few sessions, missing columns)."""


class ModelArtifactError(ModelError):
    """Raised when a registered model's artifact file is missing or its checksum does not match."""


class NoChampionError(ModelError):
    """Raised when predictions are asked for a date at which no model is champion."""


class PortfolioError(QuantError):
    """Raised when portfolio construction cannot run (no scores, no return history, bad inputs)."""


class OptimizationError(PortfolioError):
    """Raised when a portfolio method's solver fails or its constraints are infeasible."""


class LimitViolationError(PortfolioError):
    """Raised when weights break a configured limit after the repair step; ``violations`` lists them."""

    def __init__(self, violations: list[str]) -> None:
        self.violations = list(violations)
        super().__init__("; ".join(self.violations))


class BacktestError(QuantError):
    """Raised when a backtest cannot run (bad date range, no session, a stage failed for a session)."""
