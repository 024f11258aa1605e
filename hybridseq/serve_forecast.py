"""The forecasting side of ``hybridseq.serve``: series from JSON or a CSV upload, forecasts
with their interval columns, dated in each series' own time index (the ``forecast`` extra:
pandas is imported where it is used)."""

from __future__ import annotations

import io
import json
from dataclasses import asdict
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from hybridseq.data import DataError


class SeriesIn(BaseModel):
    id: str
    values: list[float] | list[list[float]] = Field(min_length=1)
    time: list[str] | list[int] | None = None


class ForecastRequest(BaseModel):
    series: list[SeriesIn] = Field(min_length=1)


def forecaster_info(fc: Any) -> dict[str, Any]:
    """What a forecasting run takes and gives: horizon, lookback, columns, variables, levels,
    and the combination with baselines it chose on validation (None without one)."""
    m, comb = fc.model.config.model, fc.fitted.combination
    return {
        "kind": "forecast",
        "engine": getattr(fc.model, "engine", "torch"),
        "family": m.family,
        "parameters": sum(p.numel() for p in fc.model.network.parameters()),
        "forecast": asdict(fc.config),
        "columns": asdict(fc.columns),
        "variables": list(fc.variables),
        "quantiles": list(fc.quantiles),
        "combination": None if comb is None else comb.summary(),
    }


def series_from_json(req: ForecastRequest) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """id -> values (N, D) and id -> time stamps (N,): datetime64 where the times are dates,
    positions 0..N-1 where none are given."""
    values, times = {}, {}
    for s in req.series:
        y = np.asarray(s.values, dtype=np.float64)
        values[s.id] = y[:, None] if y.ndim == 1 else y
        if s.time is not None and len(s.time) != len(y):
            raise DataError(f"series {s.id!r}: {len(s.time)} time stamps for {len(y)} values")
        times[s.id] = _stamps(s.time, s.id) if s.time is not None else np.arange(len(y))
    if not all(np.isfinite(v).all() for v in values.values()):
        bad = next(sid for sid, v in values.items() if not np.isfinite(v).all())
        raise DataError(f"series {bad!r}: values must be finite")
    return values, times


def _stamps(time: list, sid: str) -> np.ndarray:
    import pandas as pd

    if time and isinstance(time[0], int):
        return np.asarray(time)
    try:
        return pd.to_datetime(pd.Series(time)).to_numpy()
    except (ValueError, TypeError) as e:
        raise DataError(f"series {sid!r}: time stamps: {e}") from None


def series_from_csv(data: bytes, columns: Any) -> tuple[dict, dict, dict]:
    """An uploaded CSV, read as in training (the run's columns) -> values, times, covariates."""
    import pandas as pd

    from hybridseq.series import read_series

    try:
        frame = pd.read_csv(io.BytesIO(data))
    except (ValueError, UnicodeDecodeError, pd.errors.ParserError) as e:
        raise DataError(f"CSV upload: {e}") from None
    series = read_series(frame, columns)
    return series.values, series.times, series.covariates


def next_times(times: np.ndarray, n_values: int, horizon: int) -> list[Any]:
    """The H time stamps after a series' N values (``series.future_times``: the table's own
    rows where it has them, else continued at the series' frequency), as JSON."""
    from hybridseq.series import future_times

    return time_labels(future_times(np.asarray(times), n_values, horizon))


def time_labels(times: np.ndarray) -> list[Any]:
    """Time stamps as JSON: ISO dates (with the time of day where any has one), or numbers."""
    import pandas as pd

    if not np.issubdtype(times.dtype, np.datetime64):
        return [x.item() if hasattr(x, "item") else x for x in times]
    idx = pd.DatetimeIndex(times)
    fmt = "%Y-%m-%d" if (idx == idx.normalize()).all() else "%Y-%m-%dT%H:%M:%S"
    return [t.strftime(fmt) for t in idx]


def run_forecast(fc: Any, values: dict, times: dict, covariates: dict) -> dict[str, Any]:
    """Forecasts of every series (the run's combination with baselines where it has one): the
    table (series, [variable,] step, time, forecast, one column per quantile level) and, per
    series, history and forecast for the page's plot."""
    from hybridseq.forecast import (
        combined_points,
        forecast_table,
        point_forecasts,
        predict_quantiles,
    )

    quantiles = predict_quantiles(fc, values, covariates or None)
    points = combined_points(fc, values, point_forecasts(fc, quantiles))
    table = forecast_table(points, fc.variables, quantiles if fc.quantiles else None, fc.quantiles)
    h = fc.config.horizon
    ahead = {sid: next_times(times[sid], len(values[sid]), h) for sid in values}
    stamps = [ahead[s][k - 1] for s, k in zip(table["series"], table["step"], strict=True)]
    table.insert(table.columns.get_loc("step") + 1, "time", stamps)
    plots = []
    for sid, y in values.items():
        q = quantiles[sid]  # (H, D, Q)
        plots.append(
            {
                "series": sid,
                "history": {"time": time_labels(times[sid][: len(y)]), "values": y.tolist()},
                "time": ahead[sid],
                "forecast": points[sid].tolist(),
                "lower": q[..., 0].tolist() if fc.quantiles else None,
                "upper": q[..., -1].tolist() if fc.quantiles else None,
            }
        )
    return {
        "horizon": h,
        "variables": list(fc.variables),
        "quantiles": list(fc.quantiles),
        "columns": list(table.columns),
        "rows": json.loads(table.to_json(orient="records")),
        "series": plots,
    }


def forecast_csv(result: dict[str, Any]) -> str:
    """``run_forecast``'s table as CSV text."""
    import pandas as pd

    return pd.DataFrame(result["rows"], columns=result["columns"]).to_csv(index=False)
