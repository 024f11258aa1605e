"""Forecasting real-valued series with the seq2seq models: a table of series in; windows, a
trained global model, forecasts, metrics against the classical baselines and plots out.

    cols = Columns(id="store", time="date", target=["sales"])
    fit_forecaster("sales.csv", "forecast_hybrid", out="runs/sales", columns=cols)
    forecast("runs/sales", "sales.csv", out_csv="next.csv")  # store,date,forecast: next horizon
    evaluate_forecasts("runs/sales", "sales.csv")  # test split: the model beside baselines

A table in NeuralForecast's long format (``unique_id, ds, y``) needs no ``Columns``, and the
forecasts come back in it: ``unique_id, ds, forecast``, dated at the series' own frequency.

The data flow: ``series.py`` reads the table into a ``SeriesSet``; ``windows.py`` splits each
series by time (the last H points are the test targets, the H before them the validation
targets, every training window lies wholly before both) and makes scaled lookback -> horizon
windows; this module trains on them, and at prediction turns each history into the model's
input and its output back into the series' units.

With ``forecast.combine`` the run also chooses, on the validation windows only, a combination
of the model's forecast with classical ones (``combine.py``); ``forecast.json`` keeps it, and
forecasting, evaluation and the server apply it, the classical members refitted on each
history.

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

The command line is ``hybridseq forecast train|forecast|evaluate`` (``hybridseq.cli``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from hybridseq import api, rundir
from hybridseq import combine as C
from hybridseq.baselines import baseline_table, default_baselines
from hybridseq.checkpoint import CheckpointError
from hybridseq.config import Config, ConfigError, ForecastConfig, from_dict
from hybridseq.data import DataError
from hybridseq.forecast_metrics import interval_coverage
from hybridseq.metrics import score_series
from hybridseq.series import Columns, SeriesSet, as_columns, future_times, read_series
from hybridseq.training import TrainResult
from hybridseq.windows import (
    check_lengths,
    covariate_scales,
    fit_scale,
    fit_seasons,
    known_inputs,
    make_windows,
    normalise_source,
    season_at,
    seasonal_profile,
    series_scales,
)

META_FILE = "forecast.json"  # in a run directory, beside best/ and last/

# --------------------------------------------------------------------------- training


def fit_forecaster(
    data: str | Path | pd.DataFrame | SeriesSet,
    config: str | Path | dict | Config,
    out: str | Path,
    *,
    columns: Columns | None = None,
    overrides: Sequence[str] = (),
    resume: bool = False,
    log=print,
    overwrite: bool = False,
) -> TrainResult:
    """Train a global model on windows of all series.

    ``config`` is a hybridseq config (YAML path, dict or ``Config``) with a ``forecast``
    section (``ForecastConfig``) and no data files: the windows of the series go to training
    in memory. ``out`` receives the checkpoints (whose config is this one) and
    ``forecast.json``, what was fitted on the series: the columns, variables and per-series
    scales. ``columns`` says how to read a CSV or DataFrame; ``forecast`` and
    ``evaluate_forecasts`` reuse it by default (with the series' covariate names).
    """
    cfg = api.as_config(config, overrides)
    if cfg.forecast is None:
        raise ConfigError("forecast: a forecasting config needs a forecast section (horizon: H)")
    series = data if isinstance(data, SeriesSet) else read_series(data, columns)
    columns = replace(columns or series.columns, covariates=series.covariate_names or None)
    fc = cfg.forecast
    check_lengths(series, fc)
    if fc.combine is not None and cfg.model.quantiles is not None:
        raise ConfigError("forecast.combine: combines point forecasts; drop model.quantiles")
    fitted = Fitted(columns, series.variables, *_fit(series, fc))
    windows = make_windows(series, fc, fitted.scales, fitted.seasons, fitted.covariate_scales)
    if not windows["train"]:
        raise DataError(
            f"no series is long enough for a training window (min_lookback {fc.min_lookback} "
            f"+ {3 if fc.validation else 2} x horizon {fc.horizon} points)"
        )
    log(
        f"{len(series.values)} series -> windows: "
        + ", ".join(f"{len(v)} {k}" for k, v in windows.items())
    )
    rundir.prepare(Path(out), resume, overwrite)  # before forecast.json is replaced
    save_fitted(Path(out), fitted)
    pairs = {
        k: [tuple(np.asarray(x, np.float32) for x in w) for w in v] for k, v in windows.items()
    }
    result = api.train(cfg, out, resume=resume, log=log, data=pairs, overwrite=overwrite)
    if fc.combine is not None:
        fitted.combination = choose_combination(load_forecaster(out), series, cfg.train.select)
        save_fitted(Path(out), fitted)
        log(f"combination {fitted.combination.describe()}")
    return result


def choose_combination(fc: Forecaster, series: SeriesSet, select: str) -> C.Combination:
    """The run's ``forecast.combine`` chosen on the validation windows: every member
    forecasts each series' last H points before its test part from the points before them.
    The test part is cut off here, before anything else sees the series."""
    cfg, h = fc.config, fc.config.horizon
    train_parts = {sid: y[:-h] for sid, y in series.values.items()}
    histories, actuals = C.validation_split(train_parts, h, cfg.min_lookback)
    forecasts = {C.MODEL: predict_next(fc, histories, series.covariates)}
    forecasts.update(baseline_table(cfg.combine.members, histories, h, cfg.period))
    metric = C.resolve_metric(cfg.combine, select)
    return C.choose(forecasts, actuals, histories, cfg.combine, metric, cfg.period)


def _fit(series: SeriesSet, fc: ForecastConfig) -> tuple[dict, dict, dict]:
    """Per-series scales, seasonal profiles and covariate scales, fitted on the training part."""
    return series_scales(series, fc), fit_seasons(series, fc), covariate_scales(series, fc)


@dataclass
class Fitted:
    """What a forecaster fitted on its series (``forecast.json``); the forecast section itself
    lives in the run's config."""

    columns: Columns
    variables: list[str]
    scales: dict[str, tuple[np.ndarray, np.ndarray]]  # id -> (loc (D,), scale (D,))
    seasons: dict[str, np.ndarray]  # id -> seasonal profile (m, D), with deseasonalize
    # id -> (mean (C,), std (C,)) of the user covariates (named by columns.covariates)
    covariate_scales: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    combination: C.Combination | None = None  # with forecast.combine: chosen on validation


def save_fitted(out: Path, fitted: Fitted) -> None:
    meta = {
        "columns": asdict(fitted.columns),
        "variables": fitted.variables,
        "scales": {s: [loc.tolist(), sc.tolist()] for s, (loc, sc) in fitted.scales.items()},
        "seasons": {s: p.tolist() for s, p in fitted.seasons.items()},
        "covariate_scales": {
            s: [m.tolist(), sd.tolist()] for s, (m, sd) in fitted.covariate_scales.items()
        },
    }
    if fitted.combination is not None:
        meta["combination"] = fitted.combination.to_dict()
    out.mkdir(parents=True, exist_ok=True)
    (out / META_FILE).write_text(json.dumps(meta))


def load_fitted(run: Path) -> Fitted:
    if not (run / META_FILE).is_file():
        raise CheckpointError(f"{run}: no {META_FILE}; not a fit_forecaster output directory")
    meta = json.loads((run / META_FILE).read_text())
    combination = None
    if "combination" in meta:
        try:
            combination = C.combination_from_dict(meta["combination"], str(run / META_FILE))
        except ValueError as e:
            raise CheckpointError(str(e)) from None
    return Fitted(
        columns=from_dict(Columns, meta["columns"], "columns"),
        variables=list(meta["variables"]),
        scales=_arrays(meta["scales"]),
        seasons={s: np.array(p) for s, p in meta.get("seasons", {}).items()},
        covariate_scales=_arrays(meta.get("covariate_scales", {})),
        combination=combination,
    )


def _arrays(pairs: dict[str, list]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """id -> [a, b] lists from JSON -> id -> (a, b) arrays."""
    return {sid: (np.array(a), np.array(b)) for sid, (a, b) in pairs.items()}


# --------------------------------------------------------------------------- prediction


@dataclass
class Forecaster:
    """A trained model with what turns series into its inputs and its outputs back."""

    model: api.Model
    fitted: Fitted

    @property
    def config(self) -> ForecastConfig:
        return self.model.config.forecast

    @property
    def columns(self) -> Columns:
        return self.fitted.columns

    @property
    def variables(self) -> list[str]:
        return self.fitted.variables

    @property
    def quantiles(self) -> list[float]:
        """The model's quantile levels, increasing; [] for a model of point forecasts."""
        return list(self.model.network.quantiles)


@dataclass
class ExportedHead:
    """What a forecaster reads of an exported network: its quantile levels and point index."""

    quantiles: list[float]
    point_index: int

    def parameters(self) -> list:
        return []  # the weights are in the ONNX graphs


@dataclass
class ExportedForecastModel:
    """An export (``hybridseq.runtime``, onnxruntime) in the place of ``api.Model`` in a
    ``Forecaster``: the same ``predict`` and ``config``."""

    runtime: object  # hybridseq.runtime.ExportedModel
    config: Config
    engine: str = "onnxruntime"

    @property
    def network(self) -> ExportedHead:
        return ExportedHead(list(self.runtime.quantiles), self.runtime.point_index)

    def predict(self, sources: list, steps: int | None = None, covariates=None) -> list:
        """(S, D + C) sources -> (H, D) outputs ((H, D, Q) with quantiles), as api.Model's."""
        return self.runtime.predict(sources, steps=steps, covariates=covariates)


def export_forecaster(run: str | Path, out_dir: str | Path, quantize: str | None = None) -> Path:
    """Export a forecasting run: the ONNX graphs of ``hybridseq.export`` and, beside them, the
    run's ``forecast.json`` (scales, seasons, combination), so that ``load_forecaster``
    forecasts from ``out_dir`` with onnxruntime, baselines of a combination refitted there."""
    import shutil

    from hybridseq.export import export

    load_fitted(Path(run))  # a forecasting run, before anything is written
    out = export(run, out_dir, quantize)
    shutil.copy(Path(run) / META_FILE, Path(out_dir) / META_FILE)
    return out


def load_forecaster(run: str | Path, device: str = "auto") -> Forecaster:
    """Load a ``fit_forecaster`` output directory (its ``best`` checkpoint), or an
    ``export_forecaster`` directory (decoded by onnxruntime)."""
    run = Path(run)
    fitted = load_fitted(run)
    if (run / "export.json").is_file():
        from hybridseq import runtime

        exported = runtime.load(run)
        config = from_dict(Config, exported.config, "export.json config")
        return Forecaster(ExportedForecastModel(exported, config), fitted)
    model = api.load(run, device=device)
    if model.config.forecast is None:
        raise CheckpointError(f"{run}: its checkpoint's config has no forecast section")
    return Forecaster(model, fitted)


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
    source, loc, scale, factors = normalise_source(sid, y[-cfg.lookback :], fc.fitted.scales, cfg)
    source = np.concatenate([source, known[n - len(source) : n]], axis=1)
    return source, known[n:], loc, scale, season * factors  # one of the two is all ones


def _known_for(fc: Forecaster, sid: str, n: int, user: np.ndarray | None) -> np.ndarray:
    """The covariates (n + H, C) of a series with n points of history: calendar features and
    the user's, standardised with the series' training statistics (or, for a series the model
    has not seen, its history's)."""
    cfg, names = fc.config, fc.columns.covariates or []
    if not names:
        return known_inputs(cfg, None, None, n + cfg.horizon)
    user = None if user is None else as_columns(user)
    if user is None or user.shape[1] != len(names):
        got = "none" if user is None else f"{user.shape[1]} columns"
        raise DataError(f"series {sid!r}: the model needs the covariates {names}, got {got}")
    if len(user) < n + cfg.horizon:
        raise DataError(
            f"series {sid!r} has {len(user) - n} rows of covariates after its last target "
            f"value; forecasting needs {cfg.horizon} (rows with {', '.join(names)} filled and "
            "the targets empty)"
        )
    stats = fc.fitted.covariate_scales.get(sid) or fit_scale(user[:n], "standard")
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


def combined_points(
    fc: Forecaster, histories: dict[str, np.ndarray], points: dict[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """The run's combination (``forecast.combine``) of the model's point forecasts id -> (H,
    D) with its baselines, refitted on each history (N, D) here: they are cheap. ``points``
    unchanged for a run without one."""
    comb, cfg = fc.fitted.combination, fc.config
    if comb is None:
        return points
    members = baseline_table(comb.baselines(), histories, cfg.horizon, cfg.period)
    return C.apply(comb, {C.MODEL: points, **members})


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
    if sid in fc.fitted.seasons:
        return fc.fitted.seasons[sid]
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


def dated_table(table: pd.DataFrame, series: SeriesSet, n: dict[str, int]) -> pd.DataFrame:
    """A ``forecast_table`` in the series' own terms: ``series`` becomes the id column (left
    out for a wide table's one series), ``step`` the time column, holding the stamps after
    each series' first ``n[id]`` points (``future_times``)."""
    cols, horizon = series.columns, int(table["step"].max()) if len(table) else 0
    ahead = {sid: future_times(series.times[sid], n[sid], horizon) for sid in n}
    stamps = [ahead[sid][k - 1] for sid, k in zip(table["series"], table["step"], strict=True)]
    out = table.rename(columns={"series": cols.id}).drop(columns="step")
    out.insert(out.columns.get_loc(cols.id) + 1, cols.time, stamps)
    return out.drop(columns=cols.id) if cols.wide else out


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
    plot_series: Sequence[str] | None = None,
    tail: int | None = None,
    plot_baselines: Sequence[str] = (),
) -> pd.DataFrame:
    """Forecast the next horizon of every series from the end of its history (the run's
    combination with baselines where it chose one, ``forecast.combine``).

    Columns default to those used in training. Returns (and writes to ``out_csv``) one row
    per series and future time in the table's own terms (``dated_table``): e.g.
    ``unique_id, ds, forecast`` or ``station, month, forecast``, with a ``variable`` column
    for several targets and a column per quantile level for a quantile model. ``plot`` names
    a PNG (``plot_forecasts``) of ``plot_series`` (default: the first six), the last ``tail``
    points of history, the forecast and band, and the baselines ``plot_baselines``.
    """
    fc = load_forecaster(run)
    series = _series_for(fc, data, columns)
    quantiles = predict_quantiles(fc, series.values, series.covariates)
    predicted = combined_points(fc, series.values, point_forecasts(fc, quantiles))
    shown = quantiles if fc.quantiles else None
    n = {sid: len(y) for sid, y in series.values.items()}
    table = dated_table(forecast_table(predicted, fc.variables, shown, fc.quantiles), series, n)
    if out_csv is not None:
        table.to_csv(out_csv, index=False)
    if plot is not None:
        drawn = _baselines_of(plot_baselines, {}, series.values, fc.config)
        panels = _panels(series, n, predicted, _bands(fc, quantiles), None, drawn)
        plot_forecasts(
            plot, panels, fc.variables, fc.quantiles, series.columns.time, plot_series, tail
        )
    return table


def evaluate_forecasts(
    run: str | Path,
    data: str | Path | pd.DataFrame | SeriesSet,
    *,
    columns: Columns | None = None,
    baselines: Sequence[str] | None = None,
    plot: str | Path | None = None,
    plot_series: Sequence[str] | None = None,
    tail: int | None = None,
    plot_baselines: Sequence[str] = (),
) -> pd.DataFrame:
    """Score the model and the baselines on the test split: each series' last H points,
    forecast from the points before them. ``baselines`` defaults to ``default_baselines``
    of the period; a run with a combination adds its members and, last, ``combination``.
    ``plot`` and the rest as in ``forecast``, the actual values drawn beside the forecasts.

    Returns:
        One row per method (``model`` first), a column per series metric of the metric
        table (mae, rmse, mape, smape, mase: ``metrics.score_series``, averaged over series
        and variables) and ``series``; for a quantile
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
    names = list(default_baselines(m) if baselines is None else baselines)
    comb = fc.fitted.combination
    names += [n for n in (comb.candidates() + comb.baselines() if comb else []) if n not in names]
    methods.update(_baselines_of(names, {}, histories, fc.config))
    if comb is not None:
        methods[C.COMBINATION] = C.apply(comb, {C.MODEL: methods["model"], **methods})
    scores = {name: score_series(f, actuals, histories, m) for name, f in methods.items()}
    bands = _bands(fc, quantiles)
    if bands is not None:
        scores["model"]["coverage"] = interval_coverage(actuals, bands)
    if plot is not None:
        drawn = _baselines_of(plot_baselines, methods, histories, fc.config)
        n = {sid: len(y) for sid, y in histories.items()}
        panels = _panels(series, n, methods["model"], bands, actuals, drawn)
        plot_forecasts(
            plot, panels, fc.variables, fc.quantiles, series.columns.time, plot_series, tail
        )
    return pd.DataFrame(scores).T


def _baselines_of(
    names: Sequence[str], known: dict, histories: dict[str, np.ndarray], cfg: ForecastConfig
) -> dict[str, dict[str, np.ndarray]]:
    """name -> id -> (H, D) forecasts of the baselines ``names``, those in ``known`` reused."""
    missing = [name for name in names if name not in known]
    fitted = baseline_table(missing, histories, cfg.horizon, cfg.period)
    return {name: known[name] if name in known else fitted[name] for name in names}


# --------------------------------------------------------------------------- plots


@dataclass
class Panel:
    """One series as a forecast plot draws it: its history, the time stamps of history and
    horizon, and what is forecast for the horizon."""

    history: np.ndarray  # (N, D) the values before the forecast
    times: np.ndarray  # (N + H,) stamps of the history, then of the H forecast steps
    forecast: np.ndarray  # (H, D)
    band: tuple[np.ndarray, np.ndarray] | None = None  # lowest and highest level, (H, D) each
    actual: np.ndarray | None = None  # (H, D), when evaluating
    baselines: dict[str, np.ndarray] = field(default_factory=dict)  # name -> (H, D)


def _panels(
    series: SeriesSet,
    n: dict[str, int],
    forecasts: dict[str, np.ndarray],
    bands: dict[str, tuple] | None,
    actuals: dict[str, np.ndarray] | None,
    baselines: dict[str, dict[str, np.ndarray]],
) -> dict[str, Panel]:
    """id -> Panel of each forecast series, whose history is its first ``n[id]`` points."""
    panels = {}
    for sid, f in forecasts.items():
        t = series.times[sid]
        times = np.concatenate([t[: n[sid]], future_times(t, n[sid], len(f))])
        panels[sid] = Panel(
            series.values[sid][: n[sid]],
            times,
            f,
            (bands or {}).get(sid),
            (actuals or {}).get(sid),
            {name: fs[sid] for name, fs in baselines.items()},
        )
    return panels


def band_label(levels: Sequence[float]) -> str:
    """The legend of the band between the lowest and highest quantile levels: ``80 %
    interval`` for 0.1 and 0.9 (a central interval), else ``q0.05-q0.9 interval``."""
    low, high = min(levels), max(levels)
    if abs(low + high - 1.0) < 1e-9:
        return f"{100 * (high - low):.3g} % interval"
    return f"{quantile_column(low)}-{quantile_column(high)} interval"


def _chosen(panels: dict[str, Panel], series: Sequence[str] | None, most: int) -> list[str]:
    """The ids to draw: ``series`` (each must be one of the panels), else the first ``most``."""
    if not series:
        return list(panels)[:most]
    for sid in series:
        if sid not in panels:
            have = ", ".join(list(panels)[:10]) + (", ..." if len(panels) > 10 else "")
            raise DataError(f"plot: no series {sid!r} (series: {have})")
    return list(series)


def plot_forecasts(
    path: str | Path,
    panels: dict[str, Panel],
    variables: Sequence[str],
    levels: Sequence[float] = (),
    time_name: str = "time",
    series: Sequence[str] | None = None,
    tail: int | None = None,
    max_series: int = 6,
) -> Path:
    """A PNG with one panel per series (``series``, or the first ``max_series``) on the
    series' own time axis: the last ``tail`` points of history (default 4 H), then from the
    last observation on the forecast (dashed), the band between the outer quantile
    ``levels`` (labelled with its level), the actual values (black) and the baselines
    (dotted); all joined to the last observation."""
    if tail is not None and tail < 1:
        raise ValueError(f"plot: tail {tail}: must be >= 1")
    plt = _pyplot()
    ids = _chosen(panels, series, max_series)
    fig, axes = plt.subplots(len(ids), 1, figsize=(9, 1.2 + 2.6 * len(ids)), squeeze=False)
    label = band_label(levels) if levels else ""
    for ax, sid in zip(axes[:, 0], ids, strict=True):
        _plot_one(ax, panels[sid], variables, label, tail)
        ax.set_title(str(sid), fontsize=10)
        ax.set_xlabel(time_name)
        ax.set_ylabel(variables[0] if len(variables) == 1 else "value")
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _plot_one(ax, panel: Panel, variables: Sequence[str], band: str, tail: int | None) -> None:
    """One series: per variable its last ``tail`` points of history and, from the last
    observation on, the forecast, band, actuals and baselines."""
    n, h = len(panel.history), len(panel.forecast)
    shown = min(n, tail or 4 * h)
    past, ahead = panel.times[n - shown : n], panel.times[n - 1 :]  # ahead: H + 1 stamps
    for d, name in enumerate(variables):
        pre = f"{name} " if len(variables) > 1 else ""
        (line,) = ax.plot(past, panel.history[n - shown :, d], lw=1.4, label=f"{pre}history")
        color = line.get_color()
        if panel.band is not None:
            low, high = _joined(panel, panel.band[0], d), _joined(panel, panel.band[1], d)
            ax.fill_between(ahead, low, high, color=color, alpha=0.2, label=f"{pre}{band}")
        if panel.actual is not None:
            actual = _joined(panel, panel.actual, d)
            ax.plot(ahead, actual, color="black", lw=1.2, label=f"{pre}actual")
        for k, (method, f) in enumerate(panel.baselines.items()):
            style = dict(color=f"C{(k + 3) % 10}", lw=1.2, ls=":")
            ax.plot(ahead, _joined(panel, f, d), **style, label=f"{pre}{method}")
        forecast_ = _joined(panel, panel.forecast, d)
        ax.plot(ahead, forecast_, "--", color=color, lw=1.8, label=f"{pre}forecast")
    ax.axvline(panel.times[n - 1], color="grey", lw=0.6, alpha=0.6)
    ax.legend(fontsize=7, loc="upper left", ncol=2)


def _joined(panel: Panel, x: np.ndarray, d: int) -> np.ndarray:
    """Variable d of horizon values x (H, D) after the last observation: (H + 1,), so the
    line starts where the history ends."""
    return np.concatenate([panel.history[-1:, d], x[:, d]])
