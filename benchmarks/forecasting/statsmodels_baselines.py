"""Classical forecasting baselines, one series at a time: what a forecaster would use instead.

Every method takes a history (N,) oldest first, a horizon H and the seasonal period m
(1 = no seasonality) and returns the forecast (H,):

- ``naive``: the last value, repeated.
- ``seasonal_naive``: the last season, repeated (the last value when the history is shorter
  than a season).
- ``naive2``: naive on the seasonally adjusted series, then re-seasonalised (the M3 benchmark).
- ``ets``: exponential smoothing with a damped additive trend (statsmodels
  ``ExponentialSmoothing``) on the seasonally adjusted series, re-seasonalised (the M3/M4
  "Damped" benchmark).
- ``theta``: the Theta method (statsmodels ``ThetaModel``, Assimakopoulos & Nikolopoulos 2000)
  on the seasonally adjusted series, re-seasonalised.

Seasonal adjustment is shared by the last three, as in the M4 benchmarks: a series is called
seasonal when m > 1, it has at least three seasons, all values are positive and its lag-m
autocorrelation passes a 90 % test; it is then divided by the seasonal indices of a classical
multiplicative decomposition (``statsmodels.tsa.seasonal.seasonal_decompose``).
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
from statsmodels.tsa.forecasting.theta import ThetaModel
from statsmodels.tsa.holtwinters import ExponentialSmoothing
from statsmodels.tsa.seasonal import seasonal_decompose
from statsmodels.tsa.stattools import acf

BASELINES = ("naive", "seasonal_naive", "naive2", "ets", "theta")
Z_90 = 1.645  # two-sided 90 % normal quantile of the seasonality test


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    """(N,) -> (H,): the last observed value."""
    y = _series(history)
    return np.full(horizon, y[-1])


def seasonal_naive(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """(N,) -> (H,): y[N - m + (k mod m)] for step k; naive when N < m."""
    y = _series(history)
    if period <= 1 or len(y) < period:
        return naive(y, horizon)
    last_season = y[-period:]
    return last_season[np.arange(horizon) % period]


def is_seasonal(history: np.ndarray, period: int) -> bool:
    """The M4 benchmarks' 90 % autocorrelation test: |r_m| > 1.645 * sqrt((1 + 2 sum_{k<m}
    r_k^2) / N), asked only when m > 1 and the history holds at least three seasons."""
    y = _series(history)
    if period <= 1 or len(y) < 3 * period or np.ptp(y) == 0:
        return False
    r = acf(y, nlags=period, fft=False)
    limit = Z_90 * np.sqrt((1.0 + 2.0 * np.sum(r[1:period] ** 2)) / len(y))
    return bool(abs(r[period]) > limit)


def seasonal_indices(history: np.ndarray, horizon: int, period: int) -> tuple[np.ndarray, ...]:
    """Multiplicative seasonal indices for the history (N,) and the H steps after it (H,);
    all ones when the series is not seasonal or not positive."""
    y = _series(history)
    if not (np.all(y > 0) and is_seasonal(y, period)):
        return np.ones(len(y)), np.ones(horizon)
    seasonal = seasonal_decompose(y, model="multiplicative", period=period).seasonal  # (N,)
    last_season = seasonal[-period:]  # covers times N - m .. N - 1; time N + k reuses k mod m
    return seasonal, last_season[np.arange(horizon) % period]


def naive2(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """(N,) -> (H,): naive on the seasonally adjusted history, times the future indices."""
    past, future = seasonal_indices(history, horizon, period)
    return naive(_series(history) / past, horizon) * future


def ets(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """(N,) -> (H,): damped-trend exponential smoothing on the seasonally adjusted history
    (simple exponential smoothing below 4 points, naive on a flat history)."""
    y = _series(history)
    if np.ptp(y) == 0:
        return naive(y, horizon)
    past, future = seasonal_indices(y, horizon, period)
    trend = {"trend": "add", "damped_trend": True} if len(y) >= 4 else {}
    with _quiet():  # statsmodels' convergence and log(0) chatter on short series
        model = ExponentialSmoothing(y / past, initialization_method="estimated", **trend)
        forecast = model.fit().forecast(horizon)
    return np.asarray(forecast) * future


def theta(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """(N,) -> (H,): the Theta method (theta = 2, i.e. SES plus half the linear trend's slope)
    on the seasonally adjusted history; naive on a flat history."""
    y = _series(history)
    if np.ptp(y) == 0:  # statsmodels fits a spurious trend to a constant series
        return naive(y, horizon)
    past, future = seasonal_indices(y, horizon, period)
    with _quiet():
        fitted = ThetaModel(y / past, period=1, deseasonalize=False).fit()
        forecast = fitted.forecast(horizon)
    return np.asarray(forecast) * future


def baseline(name: str, history: np.ndarray, horizon: int, period: int = 1) -> np.ndarray:
    """Forecast (H,) of the baseline ``name`` (one of ``BASELINES``) from a history (N,)."""
    if name == "naive":
        return naive(history, horizon)
    if name == "seasonal_naive":
        return seasonal_naive(history, horizon, period)
    if name == "naive2":
        return naive2(history, horizon, period)
    if name == "ets":
        return ets(history, horizon, period)
    if name == "theta":
        return theta(history, horizon, period)
    raise ValueError(f"unknown baseline {name!r}; valid: {', '.join(BASELINES)}")


def baseline_forecasts(
    name: str, histories: dict[str, np.ndarray], horizon: int, period: int = 1
) -> dict[str, np.ndarray]:
    """Baseline ``name`` for many series: id -> history (N, D) (or (N,)) to id -> (H, D),
    each variable forecast on its own."""
    out = {}
    for sid, history in histories.items():
        x = np.asarray(history, dtype=np.float64)
        x = x[:, None] if x.ndim == 1 else x
        columns = [baseline(name, x[:, d], horizon, period) for d in range(x.shape[1])]
        out[sid] = np.stack(columns, axis=1)  # (H, D)
    return out


def _series(history: np.ndarray) -> np.ndarray:
    """A non-empty 1-D float64 copy of ``history``."""
    y = np.asarray(history, dtype=np.float64).reshape(-1)
    if len(y) == 0:
        raise ValueError("a baseline needs a history of at least one value")
    return y


@contextmanager
def _quiet():
    """Silence warnings and numpy floating-point errors inside statsmodels fits."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield
