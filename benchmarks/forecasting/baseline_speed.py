"""Time the classical baselines on a competition, the statsmodels implementations that
``hybridseq.baselines`` used before (``statsmodels_baselines.py``, kept here for this
comparison) beside the statsforecast ones it uses now, in one run on the same histories.

    python benchmarks/forecasting/baseline_speed.py m3                  # the default sets
    python benchmarks/forecasting/baseline_speed.py m3 --new all        # AutoARIMA on monthly too
    python benchmarks/forecasting/baseline_speed.py tourism --limit 20  # a quick look

Prints, per method, the seconds of each frequency and in all, and the score of the ``all``
row (averaged over forecast points, as ``run.py``); a method of both sets has both columns.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import statsmodels_baselines as old
from run import DATASETS, TABLE, load_competition, score

from hybridseq import baselines as new

OLD = ("naive", "seasonal_naive", "naive2", "ets", "theta")


def timed_pass(fn, names: list[str], data: dict[str, list], metric: str) -> dict[str, dict]:
    """name -> {frequency: (seconds, score)}; ``fn(name, histories, h, m)`` -> id -> (H, 1)."""
    out: dict[str, dict] = {n: {} for n in names}
    for freq, items in data.items():
        histories = {s.sn: np.asarray(s.x, float) for s in items}
        for name in names:
            start = time.perf_counter()
            predicted = fn(name, histories, items[0].h, items[0].period)
            seconds = time.perf_counter() - start
            value = score({k: v[:, 0] for k, v in predicted.items()}, items, metric)
            out[name][freq] = (seconds, value)
            print(f"  {name} {freq}: {seconds:.1f}s, {value:.2f}", flush=True)
    return out


def new_pass(every: bool, data: dict[str, list], metric: str) -> dict[str, dict]:
    """As ``timed_pass`` for statsforecast, each model fitted once: an ensemble's time is its
    reduction of the members' forecasts. AutoARIMA where ``default_baselines`` has it, or
    everywhere with ``every`` (NaN where left out)."""
    out: dict[str, dict] = {n: {} for n in new.BASELINES}
    for freq, items in data.items():
        h, m = items[0].h, items[0].period
        names = new.BASELINES if every else new.default_baselines(m)
        histories = {s.sn: np.asarray(s.x, float) for s in items}
        kept: dict[str, dict] = {}
        for name in new.BASELINES:
            start = time.perf_counter()
            if name in new.ENSEMBLES:
                members = new.ensemble_members(names)
                reduce = np.mean if name == "ensemble_mean" else np.median
                kept[name] = {
                    sid: reduce([kept[k][sid] for k in members], axis=0) for sid in histories
                }
            elif name in names:
                kept[name] = new.baseline_table([name], histories, h, m)[name]
            seconds = time.perf_counter() - start
            if name not in kept:
                out[name][freq] = (0.0, float("nan"))
                continue
            value = score({k: v[:, 0] for k, v in kept[name].items()}, items, metric)
            out[name][freq] = (seconds, value)
            print(f"  {name} {freq}: {seconds:.1f}s, {value:.2f}", flush=True)
    return out


def report(old_times: dict, new_times: dict, data: dict[str, list]) -> None:
    """One row per method: seconds per frequency and in all, then the all-points score."""
    weights = {f: len(items) * items[0].h for f, items in data.items()}
    print(f"\n{'method':<18}{'set':<14}" + "".join(f"{f:>11}" for f in data) + f"{'total s':>10}")
    totals = {}
    for label, times in (("statsmodels", old_times), ("statsforecast", new_times)):
        for name, by_freq in times.items():
            secs = [by_freq[f][0] for f in data]
            scores = np.array([by_freq[f][1] for f in data])
            kept = ~np.isnan(scores)
            w = np.array([weights[f] for f in data])[kept]
            overall = float(np.dot(scores[kept], w) / w.sum()) if kept.any() else float("nan")
            cells = "".join(f"{s:>10.1f}s" for s in secs)
            print(f"{name:<18}{label:<14}{cells}{sum(secs):>9.1f}s  all {overall:.2f}")
            totals[label] = totals.get(label, 0.0) + sum(secs)
    print("pass totals: " + ", ".join(f"{k} {v:.0f}s" for k, v in totals.items()))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("dataset", choices=sorted(DATASETS))
    p.add_argument("--limit", type=int, help="N evenly spaced series per frequency")
    p.add_argument("--new", default="default", choices=["default", "all"])
    p.add_argument("--skip-old", action="store_true", help="time statsforecast only")
    args = p.parse_args()
    data = load_competition(args.dataset, args.limit)
    metric = DATASETS[args.dataset][1]
    print(f"{DATASETS[args.dataset][0]}, {TABLE[metric].label}; statsmodels:", flush=True)
    old_times = {} if args.skip_old else timed_pass(old.baseline_forecasts, list(OLD), data, metric)
    print("statsforecast:", flush=True)
    new_times = new_pass(args.new == "all", data, metric)
    report(old_times, new_times, data)


if __name__ == "__main__":
    main()
