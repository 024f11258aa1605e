"""The ``hybridseq forecast`` commands: train, forecast and evaluate on series in a CSV.

A part of the command line (``hybridseq.cli`` adds these commands); the forecasting modules
need the ``forecast`` extra (pandas, statsforecast), so they are imported when a command runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _columns_from_args(args: argparse.Namespace):
    """Columns from the flags, or None (use the run's) when no column flag is given."""
    from hybridseq.series import Columns

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
    from hybridseq.forecast import fit_forecaster

    columns = _columns_from_args(args)
    result = fit_forecaster(
        args.data,
        args.config,
        args.out,
        columns=columns,
        overrides=args.set,
        resume=args.resume,
        overwrite=args.overwrite,
    )
    best = ", ".join(f"{k} {v:.4g}" for k, v in result.best.items())
    print(f"best checkpoint: {args.out}/best ({best})")


def cmd_forecast(args: argparse.Namespace) -> None:
    from hybridseq.forecast import forecast

    columns = _columns_from_args(args)
    table = forecast(
        args.run, args.data, columns=columns, out_csv=args.output, **_plot_options(args)
    )
    if args.output is None:
        sys.stdout.write(table.to_csv(index=False))


def cmd_evaluate(args: argparse.Namespace) -> None:
    from hybridseq.forecast import evaluate_forecasts, load_fitted

    names = None if args.baselines is None else [n for n in args.baselines.split(",") if n]
    columns = _columns_from_args(args)
    table = evaluate_forecasts(
        args.run, args.data, columns=columns, baselines=names, **_plot_options(args)
    )
    if args.json:
        print(json.dumps(table.to_dict(orient="index"), indent=2))
        return
    print(table.to_string(float_format=lambda v: f"{v:.4g}"))
    combination = load_fitted(Path(args.run)).combination
    if combination is not None:
        print(f"combination: {combination.describe()}")


def _plot_options(args: argparse.Namespace) -> dict:
    """The plot's keyword arguments of ``forecast`` / ``evaluate_forecasts``."""
    return {
        "plot": args.plot,
        "plot_series": _names(args.series),
        "tail": args.tail,
        "plot_baselines": _names(args.plot_baselines) or (),
    }


def _names(text: str | None) -> list[str] | None:
    """A comma-separated flag's names; None when the flag is not given."""
    return [x for x in text.split(",") if x] if text else None


def _add_plot_flags(p: argparse.ArgumentParser, what: str) -> None:
    p.add_argument("--plot", metavar="PNG", help=f"draw {what} into this PNG")
    p.add_argument("--series", help="the series to draw, comma-separated ids (default: first 6)")
    p.add_argument("--tail", type=int, help="history points drawn (default: 4 x horizon)")
    p.add_argument(
        "--plot-baselines",
        metavar="NAMES",
        help="draw these baselines too, comma-separated (naive, seasonal_naive, naive2, ets, "
        "theta, arima, ces, ensemble_mean, ensemble_median)",
    )


def _add_column_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--id-col",
        help="long form: series id column (default id; a table with unique_id, ds and y "
        "columns is read as such without flags)",
    )
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
    t.add_argument(
        "--config",
        required=True,
        help="YAML with forecast/model/train sections, or a shipped name (forecast_hybrid)",
    )
    t.add_argument("--out", default="runs/forecast", help="output directory")
    t.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    t.add_argument("--resume", action="store_true", help="continue from OUT/last")
    t.add_argument("--overwrite", action="store_true", help="replace the run OUT holds")
    _add_column_flags(t)
    t.set_defaults(func=cmd_train)

    f = sub.add_parser("forecast", help="forecast the next horizon of every series")
    f.add_argument("run", help="fit_forecaster output directory")
    f.add_argument("data", help="CSV of the series' history")
    f.add_argument(
        "--output",
        help="forecast CSV in the table's own columns (e.g. unique_id,ds,forecast or "
        "station,month,forecast, plus q0.1,... for quantiles); default stdout",
    )
    _add_plot_flags(f, "history and forecast")
    _add_column_flags(f)
    f.set_defaults(func=cmd_forecast)

    e = sub.add_parser("evaluate", help="test-split metrics of the model and the baselines")
    e.add_argument("run")
    e.add_argument("data")
    e.add_argument(
        "--baselines",
        help="comma-separated, or '' for none (default: all; AutoARIMA only for period 1)",
    )
    _add_plot_flags(e, "history, forecast and actuals of the test part")
    e.add_argument("--json", action="store_true")
    _add_column_flags(e)
    e.set_defaults(func=cmd_evaluate)
