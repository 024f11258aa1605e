"""Forecasting real-valued series with the seq2seq models: a table of series in; windows, a
trained global model, forecasts, metrics against the classical baselines and plots out.

    cols = Columns(id="store", time="date", target=["sales"])
    fit_forecaster("sales.csv", "configs/forecast_hybrid.yaml", out="runs/sales", columns=cols)
    forecast("runs/sales", "sales.csv", out_csv="next.csv")  # next horizon of every series
    evaluate_forecasts("runs/sales", "sales.csv")  # test split: the model beside baselines

The split is by time, per series of length N with horizon H: the last H points are the test
targets, the H before them the validation targets, and every training window lies wholly
before both (its target ends at N - 2H at the latest). A window is lookback -> horizon: a source
(S, D) of the ``lookback`` points before time t (at least ``min_lookback``; shorter sources are
padded and masked by the batcher) and the target (H, D) of the points from t on. Values are
scaled per window by its source's mean |value| (or per series, with statistics of its training
part only), and scaled back at prediction.

A model with ``model.quantiles`` (e.g. ``[0.1, 0.5, 0.9]``, trained with the pinball loss)
forecasts every level: the table gets a ``q0.1``, ``q0.5``, ``q0.9`` column each beside
``forecast`` (the level closest to 0.5), the plot shades the band between the lowest and the
highest level, and the evaluation adds its ``coverage``.

Covariates are values known ahead, for the past and the horizon alike: the phase in the seasonal
period (``calendar``: its sin and cos) and the user's columns (``Columns.covariates``, e.g.
planned promotions). For the past they are extra source columns, so a source is (S, D + C); for
the horizon they are fed to the decoder beside its previous output, (H, C). To forecast beyond
the data, a series' table ends with rows whose targets are empty and covariates filled: at
least H of them. User covariates are standardised per series (training-part statistics), never
scaled with the target.

The command line, ``python -m hybridseq.forecast train|forecast|evaluate``, is at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from hybridseq import api
from hybridseq.baselines import BASELINES, baseline_forecasts, seasonal_indices
from hybridseq.checkpoint import CheckpointError
from hybridseq.config import ConfigError, apply_overrides, from_dict
from hybridseq.data import DataError
from hybridseq.forecast_metrics import interval_coverage, score_forecasts
from hybridseq.training import TrainResult

META_FILE = "forecast.json"  # in a run directory, beside best/ and last/
WIDE_ID = "series"  # the id of the one series a wide table holds
PER_WINDOW = ("window", "window_last")  # scalings fitted on each window's own source

# --------------------------------------------------------------------------- reading series


@dataclass
class Columns:
    """Where the series are in a table.

    Long form: one row per (series, time): an ``id`` column, a ``time`` column and the
    ``target`` columns (default ``["target"]``). Wide form (``wide``): one series with one
    column per variable (default: every column but ``time`` and the covariates) and an optional
    ``time`` column (without it, row order is time order). ``covariates`` name columns known
    ahead; rows after a series' last target value with empty targets and filled covariates are
    its future.
    """

    id: str = "id"
    time: str = "time"
    target: list[str] | None = None
    wide: bool = False
    covariates: list[str] | None = None


@dataclass
class SeriesSet:
    """Series keyed by id, oldest value first; with covariates, F_i >= 0 future rows follow
    the N_i observed ones."""

    values: dict[str, np.ndarray]  # id -> (N_i, D) float64, finite
    times: dict[str, np.ndarray]  # id -> (N_i + F_i,) time stamps, strictly increasing
    variables: list[str]  # the D variable names
    covariates: dict[str, np.ndarray] = field(default_factory=dict)  # id -> (N_i + F_i, C)
    covariate_names: list[str] = field(default_factory=list)  # the C names; [] for none

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        variables: Sequence[str] | None = None,
        covariates: dict[str, np.ndarray] | None = None,
        covariate_names: Sequence[str] | None = None,
    ) -> SeriesSet:
        """Series from arrays id -> (N,) or (N, D), and optionally their covariates id ->
        (N + F,) or (N + F, C), F rows of them ahead of the values; times are positions."""
        values, times, known = {}, {}, {}
        for sid, arr in arrays.items():
            values[str(sid)] = _as_columns(arr)
            if covariates is not None:
                known[str(sid)] = _as_columns(covariates[sid])
                if len(known[str(sid)]) < len(values[str(sid)]):
                    raise DataError(f"series {sid!r}: fewer rows of covariates than values")
            times[str(sid)] = np.arange(len(known.get(str(sid), values[str(sid)])))
        names = list(variables or _default_names("x", values))
        cov_names = list(covariate_names or _default_names("c", known))
        series = cls(values, times, names, known, cov_names)
        for sid in values:
            _check_values(series, sid, "arrays")
        return series


def _as_columns(x: np.ndarray) -> np.ndarray:
    """(N,) or (N, D) -> (N, D) float64."""
    x = np.asarray(x, dtype=np.float64)
    return x[:, None] if x.ndim == 1 else x


def _default_names(prefix: str, arrays: dict[str, np.ndarray]) -> list[str]:
    """Column names x0, x1, ... for the width of the first (N, D) array; [] for none."""
    width = next(iter(arrays.values())).shape[1] if arrays else 0
    return [f"{prefix}{d}" for d in range(width)]


def read_series(data: str | Path | pd.DataFrame, columns: Columns | None = None) -> SeriesSet:
    """Read series from a CSV file or a DataFrame, long or wide form (see ``Columns``).

    Raises:
        DataError: a missing column, a non-numeric, NaN or infinite value (an empty target is
            allowed only in the future rows after the last target value, with covariates), or
            unsorted or duplicated time stamps within a series; the message names the series,
            the position in it (0 = oldest) and the time stamp.
    """
    columns = columns or Columns()
    frame, where = _load_table(data)
    if columns.wide:
        return _read_wide(frame, columns, where)
    return _read_long(frame, columns, where)


def _load_table(data: str | Path | pd.DataFrame) -> tuple[pd.DataFrame, str]:
    if isinstance(data, pd.DataFrame):
        return data, "DataFrame"
    path = Path(data)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    try:
        return pd.read_csv(path), str(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{path}: not a readable CSV table ({err})") from None


def _require_columns(frame: pd.DataFrame, names: Sequence[str], where: str) -> None:
    have = [str(c) for c in frame.columns]
    for name in names:
        if name not in have:
            raise DataError(f"{where}: missing column {name!r} (columns: {', '.join(have)})")


def _read_long(frame: pd.DataFrame, columns: Columns, where: str) -> SeriesSet:
    targets, known = columns.target or ["target"], columns.covariates or []
    _require_columns(frame, [columns.id, columns.time, *targets, *known], where)
    times_all = _parse_times(frame[columns.time], columns.time, where)
    if frame[columns.id].isna().any():
        row = int(np.flatnonzero(frame[columns.id].isna().to_numpy())[0])
        raise DataError(f"{where}: row {row}: column {columns.id!r} (the series id) is empty")
    series = SeriesSet({}, {}, list(targets), {}, list(known))
    for sid, rows in frame.groupby(columns.id, sort=False).indices.items():
        _add_series(series, str(sid), frame.iloc[rows], times_all[rows], where)
    return series


def _read_wide(frame: pd.DataFrame, columns: Columns, where: str) -> SeriesSet:
    has_time, known = columns.time in frame.columns, columns.covariates or []
    others = [str(c) for c in frame.columns if c != columns.time and str(c) not in known]
    targets = columns.target or others
    _require_columns(frame, [*targets, *known], where)
    if not targets:
        raise DataError(f"{where}: no value columns besides {columns.time!r}")
    if has_time:
        stamps = _parse_times(frame[columns.time], columns.time, where)
    else:
        stamps = np.arange(len(frame))
    series = SeriesSet({}, {}, list(targets), {}, list(known))
    _add_series(series, WIDE_ID, frame, stamps, where)
    return series


def _add_series(
    series: SeriesSet, sid: str, rows: pd.DataFrame, stamps: np.ndarray, where: str
) -> None:
    """Parse and check one series' rows (its targets and covariates) into ``series``. With
    covariates, the rows after the last target value whose targets are all empty are the
    future: their covariates are kept, their targets are not values."""
    values = _numeric(rows[series.variables], sid, where)
    series.times[sid] = stamps
    if series.covariate_names:
        series.covariates[sid] = _numeric(rows[series.covariate_names], sid, where)
        observed = np.flatnonzero(~np.isnan(values).all(axis=1))
        values = values[: observed[-1] + 1 if len(observed) else 0]
    series.values[sid] = values
    _check_times(series, sid, where)
    _check_values(series, sid, where)


def _parse_times(column: pd.Series, name: str, where: str) -> np.ndarray:
    """A time column as numbers or datetime64 (N,); refuses missing or unparseable stamps."""
    if column.isna().any():
        row = int(np.flatnonzero(column.isna().to_numpy())[0])
        raise DataError(f"{where}: row {row}: column {name!r} is empty")
    if pd.api.types.is_numeric_dtype(column):
        return column.to_numpy()
    try:
        return pd.to_datetime(column).to_numpy()
    except (ValueError, TypeError) as err:
        raise DataError(
            f"{where}: column {name!r} holds neither numbers nor dates ({err})"
        ) from None


def _numeric(frame: pd.DataFrame, sid: str, where: str) -> np.ndarray:
    """Value columns (N, D) as float64; a cell that is not a number is an error."""
    out = np.empty(frame.shape, dtype=np.float64)
    for d, name in enumerate(frame.columns):
        raw = frame[name]
        parsed = pd.to_numeric(raw, errors="coerce")
        bad = parsed.isna().to_numpy() & raw.notna().to_numpy()
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{where}: series {sid!r}, position {i}: column {name!r} is not a number: "
                f"{raw.iloc[i]!r}"
            )
        out[:, d] = parsed.to_numpy(dtype=np.float64, na_value=np.nan)
    return out


def _check_times(series: SeriesSet, sid: str, where: str) -> None:
    """Time stamps strictly increasing within the series."""
    t = series.times[sid]
    steps = t[1:] > t[:-1]
    if not steps.all():
        i = int(np.flatnonzero(~steps)[0]) + 1
        what = "duplicated" if t[i] == t[i - 1] else "out of order (before the previous one)"
        raise DataError(
            f"{where}: series {sid!r}, position {i}: time {t[i]} is {what}; "
            "each series needs strictly increasing, unique time stamps"
        )


def _check_values(series: SeriesSet, sid: str, where: str) -> None:
    """Every value and covariate finite, or a message naming the series, position, time and
    column."""
    checks = [(series.values[sid], series.variables)]
    if series.covariate_names:
        checks.append((series.covariates[sid], series.covariate_names))
    for x, names in checks:
        bad = np.argwhere(~np.isfinite(x))
        if len(bad):
            i, d = bad[0]
            raise DataError(
                f"{where}: series {sid!r}, position {i} (time {series.times[sid][i]}): "
                f"{names[d]!r} is {x[i, d]}; values must be finite"
            )


# --------------------------------------------------------------------------- windows and scaling


@dataclass
class ForecastConfig:
    """The ``forecast`` section of a forecasting config: how series become windows."""

    horizon: int  # H, the points forecast at once
    lookback: int | None = None  # most past points a window's source holds (None: 3 * H)
    min_lookback: int | None = None  # fewest past points (None: lookback, i.e. fixed length)
    scale: str = "window"  # window | window_last | mean_abs | standard (see fit_scale)
    period: int = 1  # seasonal period m: MASE and the seasonal baselines
    validation: bool = True  # hold out the H points before the test part for validation
    max_windows: int | None = None  # per series, keep the most recent training windows only
    deseasonalize: bool = False  # divide out multiplicative seasonal indices (see fit_seasons)
    window_season: bool = False  # divide each window by its last season's shape (recent_season)
    calendar: bool = False  # sin and cos of the phase in the period as covariates (period > 1)

    def __post_init__(self) -> None:
        if self.horizon < 1:
            raise ConfigError(f"forecast.horizon: must be >= 1, got {self.horizon}")
        self.lookback = 3 * self.horizon if self.lookback is None else self.lookback
        self.min_lookback = self.lookback if self.min_lookback is None else self.min_lookback
        if not 1 <= self.min_lookback <= self.lookback:
            raise ConfigError(
                f"forecast.min_lookback ({self.min_lookback}) must be in 1..lookback "
                f"({self.lookback})"
            )
        if self.scale not in PER_WINDOW + ("mean_abs", "standard"):
            raise ConfigError(
                f"forecast.scale: {self.scale!r} is not window, window_last, mean_abs, standard"
            )
        if self.deseasonalize and self.window_season:
            raise ConfigError("forecast.deseasonalize and forecast.window_season: choose one")
        if self.period < 1 or (self.max_windows is not None and self.max_windows < 1):
            raise ConfigError("forecast.period and forecast.max_windows must be >= 1")
        if self.calendar and self.period < 2:
            raise ConfigError("forecast.calendar: the phase features need forecast.period > 1")


def split_starts(n: int, cfg: ForecastConfig) -> dict[str, list[int]]:
    """Target start indices t per split for a series of length n; the window at t has the
    source y[max(0, t - lookback):t] and the target y[t:t + H].

    Test: t = n - H. Validation: t = n - 2H. Training: every t >= min_lookback whose target
    ends before the first validation (or, without validation, test) target.
    """
    h = cfg.horizon
    test, valid = n - h, n - 2 * h
    end = valid if cfg.validation else test  # training targets lie in y[:end]
    train = list(range(cfg.min_lookback, end - h + 1))
    if cfg.max_windows is not None:
        train = train[-cfg.max_windows :]
    return {
        "train": train,
        "valid": [valid] if cfg.validation and valid >= cfg.min_lookback else [],
        "test": [test] if test >= cfg.min_lookback else [],
    }


def check_lengths(series: SeriesSet, cfg: ForecastConfig) -> None:
    """Every series needs min_lookback + horizon points (one test window), else a DataError
    naming the short series."""
    need = cfg.min_lookback + cfg.horizon
    short = [sid for sid, y in series.values.items() if len(y) < need]
    if short:
        shown = ", ".join(f"{s!r} ({len(series.values[s])})" for s in short[:5])
        more = f" and {len(short) - 5} more" if len(short) > 5 else ""
        raise DataError(
            f"series shorter than lookback + horizon = {cfg.min_lookback} + {cfg.horizon} "
            f"points: {shown}{more}"
        )


def fit_scale(values: np.ndarray, method: str, tail: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Location and scale, each (D,), of values (N, D); x is scaled as (x - loc) / scale.

    ``mean_abs``: loc 0, scale mean |x| (the series' level; keeps the sign and zero).
    ``standard``: mean and standard deviation. A zero scale becomes 1. The config's ``window``
    fits ``mean_abs`` on each window's source instead of on the series' training part: a
    trending series then stays near 1 at its end, where a series-wide scale has drifted (on
    M3 yearly, 1 training minute: sMAPE 18.3 with window, 33.7 with series-wide mean_abs).
    ``last``: loc 0, scale mean |x| over the last ``tail`` values (the config's
    ``window_last`` fits it on each window's source with tail = the period: the current level,
    so that the (seasonally adjusted) naive forecast is about 1 and the model learns departures
    from it).
    """
    x = np.asarray(values, dtype=np.float64)
    if method == "standard":
        loc, scale = x.mean(axis=0), x.std(axis=0)
    elif method == "last":
        loc, scale = np.zeros(x.shape[1]), np.abs(x[-tail:]).mean(axis=0)
        scale = np.where(scale > 0, scale, np.abs(x).mean(axis=0))
    else:
        loc, scale = np.zeros(x.shape[1]), np.abs(x).mean(axis=0)
    return loc, np.where(scale > 0, scale, 1.0)


def _training_end(n: int, cfg: ForecastConfig) -> int:
    """Points of a length-n series before every validation and test target (or before the
    test targets when that leaves none)."""
    end = n - (2 if cfg.validation else 1) * cfg.horizon
    return end if end >= 1 else n - cfg.horizon


def series_scales(series: SeriesSet, cfg: ForecastConfig) -> dict[str, tuple[np.ndarray, ...]]:
    """Per-series (loc, scale) fitted on the training part (before every validation and test
    target); empty for the per-window scalings."""
    if cfg.scale in PER_WINDOW:
        return {}
    return {
        sid: fit_scale(y[: _training_end(len(y), cfg)], cfg.scale)
        for sid, y in series.values.items()
    }


def seasonal_profile(values: np.ndarray, period: int) -> np.ndarray:
    """Multiplicative seasonal indices (m, D) of values (N, D), row k for the positions
    congruent to k mod m (position 0 = the oldest value): the classical decomposition of the
    baselines (``seasonal_indices``), all ones for a variable that fails their seasonality test
    or is not positive."""
    x = np.asarray(values, dtype=np.float64)
    profile = np.ones((period, x.shape[1]))
    for d in range(x.shape[1]):
        past, _ = seasonal_indices(x[:, d], 0, period)
        if len(past) >= period:
            profile[:, d] = past[:period]
    return profile


def season_at(profile: np.ndarray, start: int, n: int) -> np.ndarray:
    """The indices (n, D) of positions start .. start + n - 1."""
    return profile[(start + np.arange(n)) % len(profile)]


def fit_seasons(series: SeriesSet, cfg: ForecastConfig) -> dict[str, np.ndarray]:
    """Per-series seasonal profiles (m, D) fitted on the training part, as in ES-RNN (Smyl
    2020) and the M4 benchmarks: the model then sees seasonally adjusted values and its
    forecasts are re-seasonalised. Empty unless ``deseasonalize`` and period > 1."""
    if not cfg.deseasonalize or cfg.period <= 1:
        return {}
    return {
        sid: seasonal_profile(y[: _training_end(len(y), cfg)], cfg.period)
        for sid, y in series.values.items()
    }


def recent_season(source: np.ndarray, period: int, horizon: int) -> tuple[np.ndarray, ...]:
    """Seasonal adjustment by the source's own last season: source (S, D) -> the adjusted
    source (S, D) and the factors (H, D) that re-seasonalise the H steps after it. The factors
    are the last m values over their mean, repeated with period m, so a flat forecast of the
    adjusted series at that mean is the seasonal naive forecast. Unchanged (factors 1) for
    m = 1, a source shorter than m, or a last season that is not all positive."""
    if period <= 1 or len(source) < period or np.any(source[-period:] <= 0):
        return source, np.ones((horizon, source.shape[1]))
    last = source[-period:]
    shape = last / last.mean(axis=0)  # (m, D), row j: positions congruent to j - m
    past = shape[np.arange(-len(source), 0) % period]
    return source / past, shape[np.arange(horizon) % period]


def _scale_for(
    sid: str, source: np.ndarray, scales: dict, cfg: ForecastConfig
) -> tuple[np.ndarray, ...]:
    """(loc, scale) of one window: the series' stored ones, or the source's own for
    the per-window scalings or a series not seen in training."""
    if cfg.scale in PER_WINDOW or sid not in scales:
        own = {"window_last": "last", "standard": "standard"}.get(cfg.scale, "mean_abs")
        return fit_scale(source, own, tail=cfg.period)
    return scales[sid]


def calendar_features(n: int, period: int) -> np.ndarray:
    """sin and cos of 2 pi (position mod m) / m for positions 0 .. n - 1 (position 0 = the
    series' first point), (n, 2): the phase in the seasonal period, known for any future
    position."""
    phase = 2 * np.pi * (np.arange(n) % period) / period
    return np.stack([np.sin(phase), np.cos(phase)], axis=1)


def covariate_scales(series: SeriesSet, cfg: ForecastConfig) -> dict[str, tuple[np.ndarray, ...]]:
    """Per-series (mean, std), each (C,), of the user covariates over the training part (the
    rows before every validation and test target); empty without covariates."""
    if not series.covariate_names:
        return {}
    return {
        sid: fit_scale(series.covariates[sid][: _training_end(len(y), cfg)], "standard")
        for sid, y in series.values.items()
    }


def known_inputs(cfg: ForecastConfig, user: np.ndarray | None, stats, n: int) -> np.ndarray:
    """The covariates of positions 0 .. n - 1 as the model sees them, (n, C'): the calendar
    features (with ``calendar``), then the user's (N', C) columns standardised by ``stats``
    (mean, std); (n, 0) when there are none."""
    parts = [calendar_features(n, cfg.period)] if cfg.calendar else []
    if user is not None:
        mean, std = stats
        parts.append((user[:n] - mean) / std)
    return np.concatenate(parts, axis=1) if parts else np.zeros((n, 0))


def make_windows(
    series: SeriesSet,
    cfg: ForecastConfig,
    scales: dict,
    seasons: dict | None = None,
    cov_scales: dict | None = None,
) -> dict[str, list[tuple[np.ndarray, ...]]]:
    """Scaled (source (S, D), target (H, D)) pairs per split, series by series (seasonally
    adjusted first by ``seasons``, id -> (m, D), where given). With covariates (calendar or
    the user's, standardised by ``cov_scales``, fitted here when not given) a window is a
    triple: source (S, D + C) with the past covariates as extra columns, target (H, D), and
    the covariates of the target steps (H, C)."""
    out: dict[str, list] = {"train": [], "valid": [], "test": []}
    seasons = seasons or {}
    cov_scales = covariate_scales(series, cfg) if cov_scales is None else cov_scales
    for sid, y in series.values.items():
        if sid in seasons:
            y = y / season_at(seasons[sid], 0, len(y))
        known = known_inputs(cfg, series.covariates.get(sid), cov_scales.get(sid), len(y))
        for split, starts in split_starts(len(y), cfg).items():
            for t in starts:
                src, tgt = y[max(0, t - cfg.lookback) : t], y[t : t + cfg.horizon]
                if cfg.window_season:
                    src, factors = recent_season(src, cfg.period, cfg.horizon)
                    tgt = tgt / factors[: len(tgt)]
                loc, scale = _scale_for(sid, src, scales, cfg)
                window = ((src - loc) / scale, (tgt - loc) / scale)
                out[split].append(_with_known(window, known, t))
    return out


def _with_known(window: tuple, known: np.ndarray, t: int) -> tuple:
    """(source (S, D), target (H, D)) of the window at t -> with known (N, C) covariates,
    (source (S, D + C), target, covariates (H, C)); unchanged when C = 0."""
    if known.shape[1] == 0:
        return window
    src, tgt = window
    past = known[t - len(src) : t]
    return np.concatenate([src, past], axis=1), tgt, known[t : t + len(tgt)]


def write_windows(windows: dict[str, list], folder: Path) -> dict[str, str]:
    """Write each non-empty split as JSONL (``{"source": ..., "target": ...}`` per line, and
    ``"covariates"`` for triples), the format ``data.train`` reads; returns split -> path."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, pairs in windows.items():
        if not pairs:
            continue
        path = folder / f"{split}.jsonl"
        with path.open("w") as f:
            for window in pairs:
                parts = zip(("source", "target", "covariates"), window, strict=False)
                row = {key: np.round(x, 6).tolist() for key, x in parts}
                f.write(json.dumps(row) + "\n")
        paths[split] = str(path)
    return paths


# --------------------------------------------------------------------------- training


def _raw_config(config: str | Path | dict, overrides: Sequence[str]) -> dict[str, Any]:
    if isinstance(config, dict):
        raw = config
    else:
        path = Path(config)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        raw = yaml.safe_load(path.read_text()) or {}
    return apply_overrides(raw, list(overrides))


def fit_forecaster(
    data: str | Path | pd.DataFrame | SeriesSet,
    config: str | Path | dict,
    out: str | Path,
    *,
    columns: Columns | None = None,
    overrides: Sequence[str] = (),
    log=print,
) -> TrainResult:
    """Train a global model on windows of all series.

    ``config`` is a hybridseq config (YAML path or dict) with a ``forecast`` section
    (``ForecastConfig``) and no ``data`` section: the windows are written to ``out/windows``
    and become ``data.train`` / ``valid`` / ``test``. ``out`` also receives ``forecast.json``
    (the forecast section, columns, variables and per-series scales) and the checkpoints.
    ``columns`` says how to read a CSV or DataFrame; ``forecast`` and ``evaluate_forecasts``
    reuse it by default (with the series' covariate names).
    """
    columns = columns or Columns()
    series = data if isinstance(data, SeriesSet) else read_series(data, columns)
    columns = replace(columns, covariates=series.covariate_names or None)
    raw = _raw_config(config, overrides)
    cfg = from_dict(ForecastConfig, raw.pop("forecast", None) or {}, "forecast")
    if "data" in raw:
        raise ConfigError("data: set by the forecaster (the windows); remove the data section")
    check_lengths(series, cfg)
    scales, seasons = series_scales(series, cfg), fit_seasons(series, cfg)
    cov_scales = covariate_scales(series, cfg)
    windows = make_windows(series, cfg, scales, seasons, cov_scales)
    if not windows["train"]:
        raise DataError(
            f"no series is long enough for a training window (min_lookback {cfg.min_lookback} "
            f"+ {3 if cfg.validation else 2} x horizon {cfg.horizon} points)"
        )
    out = Path(out)
    counts = ", ".join(f"{len(v)} {k}" for k, v in windows.items())
    log(f"{len(series.values)} series -> windows: {counts}")
    raw["data"] = write_windows(windows, out / "windows")
    _save_meta(out, cfg, columns, series.variables, scales, seasons, cov_scales)
    return api.train(raw, out, log=log)


def _save_meta(
    out: Path,
    cfg,
    columns: Columns,
    variables: list[str],
    scales: dict,
    seasons: dict,
    cov_scales: dict,
) -> None:
    meta = {
        "forecast": asdict(cfg),
        "columns": asdict(columns),
        "variables": variables,
        "scales": {sid: [loc.tolist(), sc.tolist()] for sid, (loc, sc) in scales.items()},
        "seasons": {sid: p.tolist() for sid, p in seasons.items()},
        "covariate_scales": {sid: [m.tolist(), sd.tolist()] for sid, (m, sd) in cov_scales.items()},
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / META_FILE).write_text(json.dumps(meta))


# --------------------------------------------------------------------------- prediction


@dataclass
class Forecaster:
    """A trained model with what turns series into its inputs and its outputs back."""

    model: api.Model
    config: ForecastConfig
    columns: Columns
    variables: list[str]
    scales: dict[str, tuple[np.ndarray, np.ndarray]]  # id -> (loc (D,), scale (D,))
    seasons: dict[str, np.ndarray]  # id -> seasonal profile (m, D), with deseasonalize
    # id -> (mean (C,), std (C,)) of the user covariates (named by columns.covariates)
    covariate_scales: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @property
    def quantiles(self) -> list[float]:
        """The model's quantile levels, increasing; [] for a model of point forecasts."""
        return list(self.model.network.quantiles)


def load_forecaster(run: str | Path, device: str = "auto") -> Forecaster:
    """Load a ``fit_forecaster`` output directory (its ``best`` checkpoint)."""
    run = Path(run)
    if not (run / META_FILE).is_file():
        raise CheckpointError(f"{run}: no {META_FILE}; not a fit_forecaster output directory")
    meta = json.loads((run / META_FILE).read_text())
    scales = {s: (np.array(loc), np.array(sc)) for s, (loc, sc) in meta["scales"].items()}
    known = meta.get("covariate_scales", {})
    return Forecaster(
        model=api.load(run, device=device),
        config=from_dict(ForecastConfig, meta["forecast"], "forecast"),
        columns=from_dict(Columns, meta["columns"], "columns"),
        variables=list(meta["variables"]),
        scales=scales,
        seasons={sid: np.array(p) for sid, p in meta.get("seasons", {}).items()},
        covariate_scales={s: (np.array(m), np.array(sd)) for s, (m, sd) in known.items()},
    )


def predict_quantiles(
    fc: Forecaster,
    histories: dict[str, np.ndarray],
    covariates: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The H values after each history, in the series' units, at every quantile level.

    Args:
        histories: id -> (N, D) past values, oldest first, N >= min_lookback.
        covariates: for a model trained with user covariates, id -> (N + F, C) (or
            (N + F,)) their values from the series' first point on, through F >= H rows after
            the history.
    Returns:
        id -> (H, D, Q) forecasts at the Q levels of ``fc.quantiles``; Q = 1, the point
        forecast, for a model without quantiles. The scale and the (positive) seasonal indices
        apply to every level alike, so the levels stay in order.
    """
    covariates = covariates or {}
    inputs = {sid: _model_inputs(fc, sid, y, covariates.get(sid)) for sid, y in histories.items()}
    sources = [x[0] for x in inputs.values()]
    known = [x[1] for x in inputs.values()]
    if not sources:
        outputs = []
    elif known[0].shape[1]:
        outputs = fc.model.predict(sources, covariates=known)
    else:
        outputs = fc.model.predict(sources, steps=fc.config.horizon)
    result = {}
    for (sid, (_, _, loc, scale, season)), out in zip(inputs.items(), outputs, strict=True):
        q = np.asarray(out, dtype=np.float64)  # (H, D, Q), or (H, D) without quantiles
        q = q if q.ndim == 3 else q[..., None]
        result[sid] = (q * scale[:, None] + loc[:, None]) * season[..., None]
    return result


def _model_inputs(fc: Forecaster, sid: str, y: np.ndarray, user: np.ndarray | None) -> tuple:
    """One history y (N, D) -> the model's source (S, D + C) and the horizon's covariates
    (H, C), and what turns its output back into the series' units: loc and scale, each (D,),
    and the seasonal indices (H, D)."""
    cfg = fc.config
    if len(y) < cfg.min_lookback:
        raise DataError(
            f"series {sid!r} has {len(y)} points; forecasting needs at least "
            f"{cfg.min_lookback} (the lookback)"
        )
    if y.shape[1] != len(fc.variables):
        raise DataError(f"series {sid!r} has {y.shape[1]} variables, the model {fc.variables}")
    n, season = len(y), np.ones((cfg.horizon, y.shape[1]))
    profile = _season_for(fc, sid, y)
    if profile is not None:
        y, season = y / season_at(profile, 0, n), season_at(profile, n, cfg.horizon)
    known = _known_for(fc, sid, n, user)  # (N + H, C)
    src = y[-cfg.lookback :]
    if cfg.window_season:
        src, season = recent_season(src, cfg.period, cfg.horizon)
    loc, scale = _scale_for(sid, src, fc.scales, cfg)
    source = np.concatenate([(src - loc) / scale, known[n - len(src) : n]], axis=1)
    return source, known[n:], loc, scale, season


def _known_for(fc: Forecaster, sid: str, n: int, user: np.ndarray | None) -> np.ndarray:
    """The covariates (n + H, C) of a series with n points of history: calendar features and
    the user's, standardised with the series' training statistics (or, for a series the model
    has not seen, its history's)."""
    cfg, names = fc.config, fc.columns.covariates or []
    if not names:
        return known_inputs(cfg, None, None, n + cfg.horizon)
    user = None if user is None else _as_columns(user)
    if user is None or user.shape[1] != len(names):
        got = "none" if user is None else f"{user.shape[1]} columns"
        raise DataError(f"series {sid!r}: the model needs the covariates {names}, got {got}")
    if len(user) < n + cfg.horizon:
        raise DataError(
            f"series {sid!r} has {len(user) - n} rows of covariates after its last target "
            f"value; forecasting needs {cfg.horizon} (rows with {', '.join(names)} filled and "
            "the targets empty)"
        )
    stats = fc.covariate_scales.get(sid) or fit_scale(user[:n], "standard")
    return known_inputs(cfg, user, stats, n + cfg.horizon)


def point_forecasts(fc: Forecaster, quantiles: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """id -> (H, D, Q) from ``predict_quantiles`` -> id -> (H, D) point forecasts."""
    k = fc.model.network.point_index
    return {sid: q[..., k] for sid, q in quantiles.items()}


def predict_next(
    fc: Forecaster,
    histories: dict[str, np.ndarray],
    covariates: dict[str, np.ndarray] | None = None,
) -> dict[str, np.ndarray]:
    """The point forecasts of the H values after each history: id -> (N, D) -> id -> (H, D)
    (the level closest to 0.5 for a quantile model; ``covariates`` and the rest as in
    ``predict_quantiles``)."""
    return point_forecasts(fc, predict_quantiles(fc, histories, covariates))


def _bands(fc: Forecaster, quantiles: dict[str, np.ndarray]) -> dict[str, tuple] | None:
    """id -> (lowest, highest) level, each (H, D); None for a model without quantiles."""
    if not fc.quantiles:
        return None
    return {sid: (q[..., 0], q[..., -1]) for sid, q in quantiles.items()}


def _season_for(fc: Forecaster, sid: str, history: np.ndarray) -> np.ndarray | None:
    """The seasonal profile of a series: the one fitted in training, else one fitted on this
    history (a series the model has not seen); None without deseasonalize."""
    if not fc.config.deseasonalize or fc.config.period <= 1:
        return None
    if sid in fc.seasons:
        return fc.seasons[sid]
    return seasonal_profile(history, fc.config.period)


def quantile_column(level: float) -> str:
    """The forecast table's column of one quantile level: 0.1 -> ``q0.1``."""
    return f"q{level:g}"


def forecast_table(
    forecasts: dict[str, np.ndarray],
    variables: Sequence[str],
    quantiles: dict[str, np.ndarray] | None = None,
    levels: Sequence[float] = (),
) -> pd.DataFrame:
    """id -> (H, D) forecasts as rows ``series, step, forecast`` (step 1 = the next point),
    with a ``variable`` column after ``series`` when D > 1, and with ``quantiles`` (id ->
    (H, D, Q) at ``levels``) one ``quantile_column`` per level after ``forecast``."""
    names = [quantile_column(q) for q in levels] if quantiles is not None else []
    rows = []
    for sid, f in forecasts.items():
        for step in range(f.shape[0]):
            for d, name in enumerate(variables):
                row = {"series": sid, "variable": name, "step": step + 1, "forecast": f[step, d]}
                row.update({col: quantiles[sid][step, d, j] for j, col in enumerate(names)})
                rows.append(row)
    table = pd.DataFrame(rows, columns=["series", "variable", "step", "forecast", *names])
    return table if len(variables) > 1 else table.drop(columns="variable")


def _series_for(fc: Forecaster, data, columns: Columns | None) -> SeriesSet:
    if isinstance(data, SeriesSet):
        return data
    return read_series(data, columns or fc.columns)


def forecast(
    run: str | Path,
    data: str | Path | pd.DataFrame | SeriesSet,
    *,
    columns: Columns | None = None,
    out_csv: str | Path | None = None,
    plot: str | Path | None = None,
) -> pd.DataFrame:
    """Forecast the next horizon of every series from the end of its history.

    Columns default to those used in training. Returns (and writes to ``out_csv``) the
    ``forecast_table``, with a column per quantile level for a quantile model; ``plot`` names
    a PNG of history and forecast (and the band of the outer quantiles).
    """
    fc = load_forecaster(run)
    series = _series_for(fc, data, columns)
    quantiles = predict_quantiles(fc, series.values, series.covariates)
    predicted = point_forecasts(fc, quantiles)
    bands = _bands(fc, quantiles)
    shown = quantiles if fc.quantiles else None
    table = forecast_table(predicted, fc.variables, shown, fc.quantiles)
    if out_csv is not None:
        table.to_csv(out_csv, index=False)
    if plot is not None:
        plot_forecasts(plot, series.values, predicted, variables=fc.variables, bands=bands)
    return table


def evaluate_forecasts(
    run: str | Path,
    data: str | Path | pd.DataFrame | SeriesSet,
    *,
    columns: Columns | None = None,
    baselines: Sequence[str] = BASELINES,
    plot: str | Path | None = None,
) -> pd.DataFrame:
    """Score the model and the baselines on the test split: each series' last H points,
    forecast from the points before them.

    Returns:
        One row per method (``model`` first), columns MAE, RMSE, MAPE, sMAPE, MASE (averaged
        over series and variables, see ``forecast_metrics``) and ``series``; for a quantile
        model also ``coverage``, the share of actual values between its lowest and highest
        level (NaN for the baselines).
    """
    fc = load_forecaster(run)
    series = _series_for(fc, data, columns)
    h, m = fc.config.horizon, fc.config.period
    check_lengths(series, fc.config)
    histories = {sid: y[:-h] for sid, y in series.values.items()}
    actuals = {sid: y[-h:] for sid, y in series.values.items()}
    quantiles = predict_quantiles(fc, histories, series.covariates)
    methods = {"model": point_forecasts(fc, quantiles)}
    for name in baselines:
        methods[name] = baseline_forecasts(name, histories, h, m)
    scores = {name: score_forecasts(f, actuals, histories, m) for name, f in methods.items()}
    bands = _bands(fc, quantiles)
    if bands is not None:
        scores["model"]["coverage"] = interval_coverage(actuals, bands)
    if plot is not None:
        plot_forecasts(
            plot, histories, methods["model"], actuals, variables=fc.variables, bands=bands
        )
    return pd.DataFrame(scores).T


def plot_forecasts(
    path: str | Path,
    histories: dict[str, np.ndarray],
    forecasts: dict[str, np.ndarray],
    actuals: dict[str, np.ndarray] | None = None,
    *,
    variables: Sequence[str] | None = None,
    bands: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
    max_series: int = 6,
    tail: int | None = None,
) -> Path:
    """A PNG with one panel per series (the first ``max_series``): the last ``tail`` points
    of history (default 4 H), the forecast, where given the actual values, and the shaded
    band between ``bands``' lower and upper forecasts.

    histories: id -> (N, D); forecasts and actuals: id -> (H, D); bands: id -> (lower (H, D),
    upper (H, D)). The x axis counts steps from the end of the history.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ids = list(forecasts)[:max_series]
    fig, axes = plt.subplots(len(ids), 1, figsize=(8, 2.4 * len(ids)), squeeze=False)
    for ax, sid in zip(axes[:, 0], ids, strict=True):
        actual, band = (actuals or {}).get(sid), (bands or {}).get(sid)
        _plot_one(ax, sid, histories[sid], forecasts[sid], actual, band, variables)
        ax.set_xlabel("steps from the end of the history")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _plot_one(ax, sid: str, history, forecast_, actual, band, variables) -> None:
    """One panel: per variable, the history (solid), forecast (dashed), actuals (dotted) and
    the band (shaded)."""
    h = forecast_.shape[0]
    past = history[-4 * h :]
    x_past, x_future = np.arange(-len(past) + 1, 1), np.arange(1, h + 1)
    for d in range(forecast_.shape[1]):
        name = variables[d] if variables else f"x{d}"
        (line,) = ax.plot(x_past, past[:, d], label=f"{name} history")
        ax.plot(x_future, forecast_[:, d], "--", color=line.get_color(), label=f"{name} forecast")
        if band is not None:
            low, high = band[0][:, d], band[1][:, d]
            ax.fill_between(
                x_future, low, high, color=line.get_color(), alpha=0.2, label=f"{name} interval"
            )
        if actual is not None:
            ax.plot(x_future, actual[:, d], ":", color="black", label=f"{name} actual")
    ax.set_title(str(sid))
    ax.legend(fontsize=7, loc="upper left")


# --------------------------------------------------------------------------- command line


def _columns_from_args(args: argparse.Namespace) -> Columns | None:
    """Columns from the flags, or None (use the run's) when no column flag is given."""
    flags = (args.id_col, args.time_col, args.target, args.covariates)
    if all(flag is None for flag in flags) and not args.wide:
        return None
    return Columns(
        id=args.id_col or "id",
        time=args.time_col or "time",
        target=args.target.split(",") if args.target else None,
        wide=args.wide,
        covariates=args.covariates.split(",") if args.covariates else None,
    )


def cmd_train(args: argparse.Namespace) -> None:
    result = fit_forecaster(
        args.data, args.config, args.out, columns=_columns_from_args(args), overrides=args.set
    )
    best = ", ".join(f"{k} {v:.4g}" for k, v in result.best.items())
    print(f"best checkpoint: {args.out}/best ({best})")


def cmd_forecast(args: argparse.Namespace) -> None:
    table = forecast(
        args.run, args.data, columns=_columns_from_args(args), out_csv=args.output, plot=args.plot
    )
    if args.output is None:
        sys.stdout.write(table.to_csv(index=False))


def cmd_evaluate(args: argparse.Namespace) -> None:
    names = [n for n in args.baselines.split(",") if n] if args.baselines else []
    table = evaluate_forecasts(
        args.run, args.data, columns=_columns_from_args(args), baselines=names, plot=args.plot
    )
    if args.json:
        print(json.dumps(table.to_dict(orient="index"), indent=2))
    else:
        print(table.to_string(float_format=lambda v: f"{v:.4g}"))


def _add_column_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--id-col", help="long form: series id column (default id)")
    p.add_argument("--time-col", help="time column (default time)")
    p.add_argument("--target", help="value column(s), comma-separated (default target)")
    p.add_argument("--wide", action="store_true", help="one series, one column per variable")
    p.add_argument(
        "--covariates",
        help="columns known ahead, comma-separated; forecasting reads their future from rows "
        "after each series' last target value, with the targets left empty",
    )


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Add the ``train``, ``forecast`` and ``evaluate`` commands to a subparsers object."""
    t = sub.add_parser("train", help="train a global model on a CSV of series")
    t.add_argument("data", help="CSV file (long or wide form)")
    t.add_argument("--config", required=True, help="YAML with forecast/model/train sections")
    t.add_argument("--out", default="runs/forecast", help="output directory")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    _add_column_flags(t)
    t.set_defaults(func=cmd_train)

    f = sub.add_parser("forecast", help="forecast the next horizon of every series")
    f.add_argument("run", help="fit_forecaster output directory")
    f.add_argument("data", help="CSV of the series' history")
    f.add_argument("--output", help="forecast CSV (series,step,forecast); default stdout")
    f.add_argument("--plot", help="PNG of history and forecast")
    _add_column_flags(f)
    f.set_defaults(func=cmd_forecast)

    e = sub.add_parser("evaluate", help="test-split metrics of the model and the baselines")
    e.add_argument("run")
    e.add_argument("data")
    e.add_argument("--baselines", default=",".join(BASELINES), help="comma-separated, or ''")
    e.add_argument("--plot", help="PNG of history, forecast and actuals")
    e.add_argument("--json", action="store_true")
    _add_column_flags(e)
    e.set_defaults(func=cmd_evaluate)


def main(argv: Sequence[str] | None = None, prog: str = "python -m hybridseq.forecast") -> None:
    """The forecasting command line; user mistakes print one line and exit with status 2."""
    parser = argparse.ArgumentParser(prog=prog, description="Forecast real-valued series.")
    add_commands(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    try:
        args.func(args)
    except (ConfigError, DataError, CheckpointError, FileNotFoundError, ValueError) as e:
        if os.environ.get("HYBRIDSEQ_DEBUG"):
            raise
        print(f"{prog}: error: {e}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
