"""Forecast metrics of one real-valued series: MAE, RMSE, MAPE, sMAPE and MASE for point
forecasts, and ``interval_coverage`` for forecast intervals.

Each metric scores one series: ``forecast`` and ``actual`` of shape (H,), the horizon's values
(``mase`` also needs the ``history`` (N,) before them); predictions first, as everywhere in
``hybridseq.metrics``, whose table names these and whose ``score_series`` averages them over
series and variables. Percentages are in [0, 100] (sMAPE in [0, 200]). A value that is
undefined for a series (MAPE with a zero actual, MASE of a flat history) is NaN.
"""

from __future__ import annotations

import numpy as np


def mae(forecast: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute error, (H,) and (H,) -> float."""
    return float(np.mean(np.abs(_f64(actual) - _f64(forecast))))


def rmse(forecast: np.ndarray, actual: np.ndarray) -> float:
    """Root mean squared error, (H,) and (H,) -> float."""
    return float(np.sqrt(np.mean(np.square(_f64(actual) - _f64(forecast)))))


def mape(forecast: np.ndarray, actual: np.ndarray) -> float:
    """Mean absolute percentage error, 100 * mean(|y - f| / |y|); NaN if some actual is 0."""
    y, f = _f64(actual), _f64(forecast)
    if np.any(y == 0):
        return float("nan")
    return float(100.0 * np.mean(np.abs(y - f) / np.abs(y)))


def smape(forecast: np.ndarray, actual: np.ndarray) -> float:
    """Symmetric MAPE of Makridakis & Hibon (2000), in percent (0-200):
    100 * mean(|y - f| / ((|y| + |f|) / 2)); a point where y = f = 0 counts as 0."""
    y, f = _f64(actual), _f64(forecast)
    denominator = (np.abs(y) + np.abs(f)) / 2.0
    ratio = np.divide(np.abs(y - f), denominator, out=np.zeros_like(y), where=denominator > 0)
    return float(100.0 * np.mean(ratio))


def mase(forecast: np.ndarray, actual: np.ndarray, history: np.ndarray, period: int = 1) -> float:
    """Mean absolute scaled error (Hyndman & Koehler 2006): the forecast's MAE over the
    in-sample MAE of the seasonal naive forecast, mean(|y_t - y_{t-m}|) over the history.

    A history no longer than ``period`` is scaled with m = 1; NaN if that scale is 0.
    """
    x = _f64(history)
    m = period if len(x) > period else 1
    if len(x) <= m:
        return float("nan")
    scale = np.mean(np.abs(x[m:] - x[:-m]))
    if scale == 0:
        return float("nan")
    return mae(forecast, actual) / float(scale)


def interval_coverage(
    actuals: dict[str, np.ndarray], bands: dict[str, tuple[np.ndarray, np.ndarray]]
) -> float:
    """The share of actual values inside their forecast interval [lower, upper], over every
    series, step and variable: actuals id -> (H, D), bands id -> (lower (H, D), upper (H, D)).
    An interval of the 0.1 and 0.9 quantiles should hold about 80 % of them."""
    inside = [((bands[sid][0] <= y) & (y <= bands[sid][1])).ravel() for sid, y in actuals.items()]
    return float(np.concatenate(inside).mean())


def _f64(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)
