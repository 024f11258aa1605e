"""Classical forecasting baselines, one series at a time: what a forecaster would use instead.

Every method takes a history (N,) oldest first, a horizon H and the seasonal period m
(1 = no seasonality) and returns the forecast (H,). The models are statsforecast's (Nixtla),
each given m as its ``season_length``:

- ``naive``: the last value, repeated (``Naive``).
- ``seasonal_naive``: the last season, repeated (``SeasonalNaive``; naive when the history is
  shorter than a season).
- ``naive2``: naive on the seasonally adjusted series, then re-seasonalised (the M3/M4
  benchmark; statsforecast has none, so the classical decomposition below is ours).
- ``ets``: ``AutoETS``, the error, trend and season of exponential smoothing chosen by AICc
  (Hyndman et al. 2002).
- ``theta``: ``DynamicOptimizedTheta`` (Fiorucci et al. 2016), statsforecast's strongest theta
  on M3 and M4; it tests and removes multiplicative seasonality itself.
- ``arima``: ``AutoARIMA``, the stepwise order search of Hyndman & Khandakar (2008). Slow on
  seasonal series (about 0.8 s a monthly M3 series), so ``default_baselines`` leaves it out
  for m > 1.
- ``ces``: ``AutoCES``, complex exponential smoothing (Svetunkov et al. 2022).
- ``ensemble_mean``, ``ensemble_median``: the point-by-point mean and median of the automatic
  models (``ets``, ``theta``, ``arima``, ``ces``) computed in the same pass: those of them
  named beside the ensemble, all four when none is.

A model that cannot fit a history (statsforecast refuses "tiny datasets": AutoETS below about
8 points) or returns a non-finite value forecasts Naive2 instead.

Seasonal adjustment for Naive2 (and ``forecast.deseasonalize``), as in the M4 benchmarks: a
series is called seasonal when m > 1, it has at least three seasons, all values are positive
and its lag-m autocorrelation passes a 90 % test; it is then divided by the seasonal indices of
a classical multiplicative decomposition (``statsmodels.tsa.seasonal.seasonal_decompose``).
The heavy libraries are imported when a forecast is made, so the names import with numpy only.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from contextlib import contextmanager

import numpy as np

AUTOMATIC = ("ets", "theta", "arima", "ces")  # statsforecast's model searches
ENSEMBLES = ("ensemble_mean", "ensemble_median")
BASELINES = ("naive", "seasonal_naive", "naive2", *AUTOMATIC, *ENSEMBLES)
SLOW_SEASONAL = ("arima",)  # left out of the defaults for m > 1 (see default_baselines)
Z_90 = 1.645  # two-sided 90 % normal quantile of the seasonality test


def default_baselines(period: int) -> tuple[str, ...]:
    """The baselines computed when none are named: all, but AutoARIMA only for m = 1. Its
    seasonal order search is slow: on M3 (2 shared cores) 606 s for the 756 quarterly series
    and about 20 minutes for the 1,428 monthly ones, against 194 s for the 645 yearly."""
    return tuple(n for n in BASELINES if not (period > 1 and n in SLOW_SEASONAL))


def check_names(names: Sequence[str], where: str = "baselines") -> None:
    """A ValueError naming the first unknown baseline and the valid ones."""
    unknown = [n for n in names if n not in BASELINES]
    if unknown:
        raise ValueError(f"{where}: unknown baseline {unknown[0]!r}; valid: {', '.join(BASELINES)}")


def naive(history: np.ndarray, horizon: int) -> np.ndarray:
    """(N,) -> (H,): the last observed value."""
    from statsforecast.models import Naive

    return _mean(Naive(), _series(history), horizon)


def seasonal_naive(history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """(N,) -> (H,): y[N - m + (k mod m)] for step k; naive when N < m."""
    from statsforecast.models import SeasonalNaive

    y = _series(history)
    if period <= 1 or len(y) < period:
        return naive(y, horizon)
    return _mean(SeasonalNaive(season_length=period), y, horizon)


def is_seasonal(history: np.ndarray, period: int) -> bool:
    """The M4 benchmarks' 90 % autocorrelation test: |r_m| > 1.645 * sqrt((1 + 2 sum_{k<m}
    r_k^2) / N), asked only when m > 1 and the history holds at least three seasons."""
    from statsmodels.tsa.stattools import acf

    y = _series(history)
    if period <= 1 or len(y) < 3 * period or np.ptp(y) == 0:
        return False
    r = acf(y, nlags=period, fft=False)
    limit = Z_90 * np.sqrt((1.0 + 2.0 * np.sum(r[1:period] ** 2)) / len(y))
    return bool(abs(r[period]) > limit)


def seasonal_indices(history: np.ndarray, horizon: int, period: int) -> tuple[np.ndarray, ...]:
    """Multiplicative seasonal indices for the history (N,) and the H steps after it (H,);
    all ones when the series is not seasonal or not positive."""
    from statsmodels.tsa.seasonal import seasonal_decompose

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


def automatic(name: str, history: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """(N,) -> (H,): one of statsforecast's model searches (``AUTOMATIC``) fitted on the
    history; Naive2 where it cannot fit the history or forecasts a non-finite value."""
    from statsforecast import models as sf

    y, m = _series(history), max(1, period)
    if name == "ets":
        model = sf.AutoETS(season_length=m)
    elif name == "theta":
        model = sf.DynamicOptimizedTheta(season_length=m)
    elif name == "arima":
        model = sf.AutoARIMA(season_length=m)
    elif name == "ces":
        model = sf.AutoCES(season_length=m)
    else:
        raise ValueError(f"unknown model {name!r}; valid: {', '.join(AUTOMATIC)}")
    try:
        forecast = _mean(model, y, horizon)
    except (NotImplementedError, ValueError, IndexError, np.linalg.LinAlgError):
        return naive2(y, horizon, period)  # too short a history for the model
    return forecast if np.all(np.isfinite(forecast)) else naive2(y, horizon, period)


def baseline(name: str, history: np.ndarray, horizon: int, period: int = 1) -> np.ndarray:
    """Forecast (H,) of the baseline ``name`` (one of ``BASELINES``) from a history (N,)."""
    return baseline_table([name], {"_": history}, horizon, period)[name]["_"][:, 0]


def _single(name: str, y: np.ndarray, horizon: int, period: int) -> np.ndarray:
    """One baseline that is not an ensemble, (N,) -> (H,)."""
    if name == "naive":
        return naive(y, horizon)
    if name == "seasonal_naive":
        return seasonal_naive(y, horizon, period)
    if name == "naive2":
        return naive2(y, horizon, period)
    return automatic(name, y, horizon, period)


def ensemble_members(names: Sequence[str]) -> tuple[str, ...]:
    """The automatic models an ensemble among ``names`` combines: those named, else all."""
    return tuple(n for n in AUTOMATIC if n in names) or AUTOMATIC


def baseline_table(
    names: Sequence[str], histories: dict[str, np.ndarray], horizon: int, period: int = 1
) -> dict[str, dict[str, np.ndarray]]:
    """Baselines ``names`` for many series: id -> history (N, D) (or (N,)) to name -> id ->
    (H, D), each variable forecast on its own; an ensemble's members are fitted once."""
    check_names(names)
    needed = [n for n in names if n not in ENSEMBLES]
    if any(n in ENSEMBLES for n in names):
        needed += [n for n in ensemble_members(names) if n not in needed]
    out: dict[str, dict[str, np.ndarray]] = {n: {} for n in needed}
    with _quiet():
        for sid, history in histories.items():
            x = np.asarray(history, dtype=np.float64)
            x = x[:, None] if x.ndim == 1 else x
            for n in needed:
                columns = [_single(n, x[:, d], horizon, period) for d in range(x.shape[1])]
                out[n][sid] = np.stack(columns, axis=1)  # (H, D)
    members = ensemble_members(names)
    reducers = {"ensemble_mean": np.mean, "ensemble_median": np.median}
    for n in (n for n in names if n in ENSEMBLES):
        out[n] = {sid: reducers[n]([out[m][sid] for m in members], axis=0) for sid in histories}
    return {n: out[n] for n in names}


def baseline_forecasts(
    name: str, histories: dict[str, np.ndarray], horizon: int, period: int = 1
) -> dict[str, np.ndarray]:
    """Baseline ``name`` for many series: id -> history (N, D) (or (N,)) to id -> (H, D)."""
    return baseline_table([name], histories, horizon, period)[name]


def _mean(model, y: np.ndarray, horizon: int) -> np.ndarray:
    """A statsforecast model's point forecast (H,) from the history y (N,)."""
    return np.asarray(model.forecast(y=y, h=horizon)["mean"], dtype=np.float64)


def _series(history: np.ndarray) -> np.ndarray:
    """A non-empty 1-D float64 copy of ``history``."""
    y = np.asarray(history, dtype=np.float64).reshape(-1)
    if len(y) == 0:
        raise ValueError("a baseline needs a history of at least one value")
    return y


@contextmanager
def _quiet():
    """Silence warnings and numpy floating-point errors inside the model fits."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield
