"""Risk models: annualised covariance of daily returns, as of a date, positive semi-definite."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from quant.config import PortfolioSettings
from quant.exceptions import PortfolioError

__all__ = [
    "TRADING_DAYS",
    "ExponentialCovariance",
    "LedoitWolfCovariance",
    "RiskModel",
    "SampleCovariance",
    "make_psd",
    "risk_model_from_settings",
    "trailing_returns",
]

TRADING_DAYS = 252
"""Sessions per year used to annualise daily figures."""

_EIGEN_FLOOR = 1e-10


@runtime_checkable
class RiskModel(Protocol):
    """Estimates the covariance of asset returns."""

    def covariance(self, returns: pd.DataFrame) -> pd.DataFrame:
        """Annualised covariance.

        Parameters
        ----------
        returns : DataFrame of shape (n_sessions, n_assets)
            Daily simple returns, one column per symbol, sessions ascending;
            NaN where a name has no return.

        Returns
        -------
        DataFrame of shape (n_assets, n_assets)
            Symmetric, positive semi-definite, annualised (return units squared per year).
        """
        ...


def trailing_returns(
    returns: pd.DataFrame, as_of: date | pd.Timestamp | None, sessions: int
) -> pd.DataFrame:
    """The last ``sessions`` rows of ``returns`` dated on or before ``as_of``.

    Point in time: no row after ``as_of`` is ever returned. ``returns`` is indexed
    by session date (ascending or not).
    """
    frame = returns.sort_index()
    if as_of is not None:
        index = pd.to_datetime(frame.index)
        frame = frame.loc[index <= pd.Timestamp(as_of)]
    return frame.iloc[-sessions:]


def make_psd(cov: np.ndarray, floor: float = _EIGEN_FLOOR) -> np.ndarray:
    """Nearest symmetric matrix with eigenvalues >= ``floor`` x the largest (eigenvalue clipping).

    A matrix that is already positive definite (its Cholesky factorisation succeeds)
    or positive semi-definite with that margin is returned unchanged (symmetrised).

    Parameters
    ----------
    cov : ndarray of shape (n, n)

    Returns
    -------
    ndarray of shape (n, n)
    """
    sym = (np.asarray(cov, dtype=float) + np.asarray(cov, dtype=float).T) / 2.0
    if not np.all(np.isfinite(sym)):
        raise PortfolioError("covariance matrix has non-finite entries")
    if sym.size == 0:
        return sym
    try:
        np.linalg.cholesky(sym)  # positive definite: nothing to repair (and much cheaper than eigh)
        return sym
    except np.linalg.LinAlgError:
        pass  # not positive definite: clip the eigenvalues below
    values, vectors = np.linalg.eigh(sym)
    threshold = max(float(values.max()), 0.0) * floor
    if values.min() >= threshold:
        return sym
    clipped = np.clip(values, threshold, None)
    fixed = (vectors * clipped) @ vectors.T
    return (fixed + fixed.T) / 2.0


def _clean(returns: pd.DataFrame) -> np.ndarray:
    """Returns as an array with each column demeaned and missing values at zero (the mean)."""
    values = returns.to_numpy(dtype=float, na_value=np.nan)
    means = np.nanmean(values, axis=0) if len(values) else np.zeros(values.shape[1])
    means = np.where(np.isfinite(means), means, 0.0)
    centred = values - means
    return np.where(np.isfinite(centred), centred, 0.0)


def _check(returns: pd.DataFrame) -> None:
    if returns.shape[1] == 0:
        raise PortfolioError("no assets to estimate a covariance for")
    if returns.shape[0] < 2:
        raise PortfolioError(f"{returns.shape[0]} session(s) of returns: need at least 2")


def _frame(cov: np.ndarray, returns: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(make_psd(cov), index=returns.columns, columns=returns.columns)


@dataclass(frozen=True, slots=True)
class SampleCovariance:
    """Sample covariance of the daily returns, annualised."""

    annualisation: int = TRADING_DAYS

    def covariance(self, returns: pd.DataFrame) -> pd.DataFrame:
        _check(returns)
        x = _clean(returns)
        cov = x.T @ x / (len(x) - 1)
        return _frame(cov * self.annualisation, returns)


@dataclass(frozen=True, slots=True)
class LedoitWolfCovariance:
    """Ledoit-Wolf shrinkage of the sample covariance towards a scaled identity, annualised.

    The trace (total variance) equals the sample covariance's; only the off-diagonal
    structure and the spread of the eigenvalues shrink.
    """

    annualisation: int = TRADING_DAYS

    def covariance(self, returns: pd.DataFrame) -> pd.DataFrame:
        from sklearn.covariance import ledoit_wolf

        _check(returns)
        x = _clean(returns)
        cov, _shrinkage = ledoit_wolf(x, assume_centered=True)
        cov *= len(x) / (len(x) - 1)  # same normalisation as the sample covariance
        return _frame(cov * self.annualisation, returns)


@dataclass(frozen=True, slots=True)
class ExponentialCovariance:
    """Exponentially weighted covariance (recent sessions weigh more), annualised.

    Parameters
    ----------
    halflife_sessions : float
        Sessions after which an observation's weight halves.
    """

    halflife_sessions: float = 63.0
    annualisation: int = TRADING_DAYS

    def covariance(self, returns: pd.DataFrame) -> pd.DataFrame:
        _check(returns)
        values = returns.to_numpy(dtype=float, na_value=np.nan)
        n = len(values)
        decay = 0.5 ** (1.0 / self.halflife_sessions)
        weights = decay ** np.arange(n - 1, -1, -1, dtype=float)
        weights /= weights.sum()
        observed = np.isfinite(values)
        col_weight = weights @ observed
        means = np.divide(
            weights @ np.where(observed, values, 0.0),
            col_weight,
            out=np.zeros(values.shape[1]),
            where=col_weight > 0,
        )
        x = np.where(observed, values - means, 0.0)
        cov = (x * weights[:, None]).T @ x
        cov /= 1.0 - float(np.sum(weights**2))  # unbiased for weighted samples
        return _frame(cov * self.annualisation, returns)


def risk_model_from_settings(settings: PortfolioSettings) -> RiskModel:
    """The risk model that ``settings.risk_model`` names."""
    if settings.risk_model == "ledoit_wolf":
        return LedoitWolfCovariance()
    if settings.risk_model == "exponential":
        return ExponentialCovariance(halflife_sessions=settings.ewm_halflife_sessions)
    return SampleCovariance()
