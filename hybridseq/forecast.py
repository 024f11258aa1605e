"""Forecasting real-valued series with the seq2seq models: a table of series in; windows, a
trained global model, forecasts, metrics against the classical baselines and plots out.

    cols = Columns(id="store", time="date", target=["sales"])
    fit_forecaster("sales.csv", "configs/forecast_hybrid.yaml", out="runs/sales", columns=cols)
    forecast("runs/sales", "sales.csv", out_csv="next.csv")  # next horizon of every series
    evaluate_forecasts("runs/sales", "sales.csv")  # test split: the model beside baselines

The data flow: ``series.py`` reads the table into a ``SeriesSet``; ``windows.py`` splits each
series by time (the last H points are the test targets, the H before them the validation
targets, every training window lies wholly before both) and makes scaled lookback -> horizon
windows; this module trains on them, and at prediction turns each history into the model's
input and its output back into the series' units.

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
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from hybridseq import api
from hybridseq.baselines import BASELINES, baseline_forecasts
from hybridseq.checkpoint import CheckpointError
from hybridseq.cli import run_command
from hybridseq.config import ConfigError, apply_overrides, from_dict
from hybridseq.data import DataError
from hybridseq.forecast_metrics import interval_coverage, score_forecasts
from hybridseq.series import Columns, SeriesSet, as_columns, read_series
from hybridseq.training import TrainResult
from hybridseq.windows import (
    ForecastConfig,
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
    write_windows,
)

META_FILE = "forecast.json"  # in a run directory, beside best/ and last/

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
    source, loc, scale, factors = normalise_source(sid, y[-cfg.lookback :], fc.scales, cfg)
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
    run_command(parser.parse_args(argv), prog)


if __name__ == "__main__":
    main()
