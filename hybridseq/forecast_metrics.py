"""Forecast metrics for real-valued series: MAE, RMSE, MAPE, sMAPE and MASE for point
forecasts, ``interval_coverage`` for forecast intervals.

Each metric scores one series: ``actual`` and ``forecast`` of shape (H,), the horizon's values
(``mase`` also needs the ``history`` (N,) before them). ``score_forecasts`` scores many series,
each (H, D) with D variables, metric by metric per (series, variable) and then averages over
them, the way the M competitions average sMAPE over series. Percentages are in [0, 100] (sMAPE
in [0, 200]). A value that is undefined for a series (MAPE with a zero actual, MASE of a flat
history) is NaN there and left out of the average.
"""

from __future__ import annotations

import numpy as np

POINT_METRICS = ("MAE", "RMSE", "MAPE", "sMAPE", "MASE")


def mae(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute error, (H,) and (H,) -> float."""
    return float(np.mean(np.abs(_f64(actual) - _f64(forecast))))


def rmse(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Root mean squared error, (H,) and (H,) -> float."""
    return float(np.sqrt(np.mean(np.square(_f64(actual) - _f64(forecast)))))


def mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Mean absolute percentage error, 100 * mean(|y - f| / |y|); NaN if some actual is 0."""
    y, f = _f64(actual), _f64(forecast)
    if np.any(y == 0):
        return float("nan")
    return float(100.0 * np.mean(np.abs(y - f) / np.abs(y)))


def smape(actual: np.ndarray, forecast: np.ndarray) -> float:
    """Symmetric MAPE of Makridakis & Hibon (2000), in percent (0-200):
    100 * mean(|y - f| / ((|y| + |f|) / 2)); a point where y = f = 0 counts as 0."""
    y, f = _f64(actual), _f64(forecast)
    denominator = (np.abs(y) + np.abs(f)) / 2.0
    ratio = np.divide(np.abs(y - f), denominator, out=np.zeros_like(y), where=denominator > 0)
    return float(100.0 * np.mean(ratio))


def mase(actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, period: int = 1) -> float:
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
    return mae(actual, forecast) / float(scale)


def point_metrics(
    actual: np.ndarray, forecast: np.ndarray, history: np.ndarray, period: int = 1
) -> dict[str, float]:
    """All of ``POINT_METRICS`` for one series: actual and forecast (H,), history (N,)."""
    if np.shape(actual) != np.shape(forecast):
        raise ValueError(f"actual shape {np.shape(actual)} != forecast shape {np.shape(forecast)}")
    return {
        "MAE": mae(actual, forecast),
        "RMSE": rmse(actual, forecast),
        "MAPE": mape(actual, forecast),
        "sMAPE": smape(actual, forecast),
        "MASE": mase(actual, forecast, history, period),
    }


def score_forecasts(
    forecasts: dict[str, np.ndarray],
    actuals: dict[str, np.ndarray],
    histories: dict[str, np.ndarray],
    period: int = 1,
) -> dict[str, float]:
    """Average metrics over series and variables.

    Args:
        forecasts, actuals: series id -> (H, D) (or (H,)); every forecast needs its actual.
        histories: series id -> (N, D) (or (N,)), the values before the actuals (for MASE).
        period: seasonal period m of MASE.
    Returns:
        ``{metric: mean over (series, variable)}`` with NaNs left out, plus ``"series"``: the
        number of series scored.
    """
    rows = []
    for sid, f in forecasts.items():
        if sid not in actuals:
            raise ValueError(f"series {sid!r} has a forecast but no actual values")
        f2, y2, x2 = _columns(f), _columns(actuals[sid]), _columns(histories[sid])
        for d in range(f2.shape[1]):
            rows.append(point_metrics(y2[:, d], f2[:, d], x2[:, d], period))
    if not rows:
        raise ValueError("no forecasts to score")
    result = {}
    for name in POINT_METRICS:
        values = np.array([r[name] for r in rows])
        finite = values[~np.isnan(values)]
        result[name] = float(finite.mean()) if len(finite) else float("nan")
    result["series"] = float(len(forecasts))
    return result


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


def _columns(x: np.ndarray) -> np.ndarray:
    """(L,) or (L, D) -> (L, D) float64."""
    x = _f64(x)
    return x[:, None] if x.ndim == 1 else x
