"""A forecast combination chosen on validation: the model's forecast and classical ones
(``baselines``) weighted per run or per series, members and weights picked on the validation
windows only (Bates & Granger 1969 for combining; the M4 competition's winners were
combinations too).

The candidates are the model (``MODEL``) and the configured baselines
(``forecast.combine.members``). Each forecasts every series' validation targets, its last H
training points, from the points before them; the methods then choose on that error:

- ``best``: the single member of lowest error;
- ``mean``: equal weights over the k members of lowest error;
- ``inverse``: weights proportional to 1 / error over those k (Stock & Watson 2004's inverse
  MSE weights, here with the run's selection metric);

k is ``top_k``, or the k in 1..K whose combination has the lowest validation error. With
``by: run`` the error of a member is the mean of the per-series metric over the series (where
it is defined), and one choice serves every series; with ``by: series`` each series gets its
own, the run's serving a series without a validation window (or one unseen in training).

``choose`` sees only what it is given: callers pass each series' training part (the test part
cut off), and ``validation_split`` cuts that into history and validation targets.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hybridseq import metrics
from hybridseq.config import SCALE_FREE, CombineConfig

MODEL = "model"  # the trained model's name among the members
COMBINATION = "combination"  # the combined forecast's name in evaluation tables

Forecasts = dict[str, dict[str, np.ndarray]]  # member -> series id -> (H, D)


@dataclass
class Weights:
    """One choice: member names and their weights (summing to 1)."""

    members: list[str]
    weights: list[float]

    def describe(self) -> str:
        return " + ".join(f"{w:.2f} {m}" for m, w in zip(self.members, self.weights, strict=True))

    def mix(self, forecasts: Forecasts, sid: str) -> np.ndarray:
        """Series ``sid``'s members (H, D) weighted."""
        pairs = zip(self.members, self.weights, strict=True)
        return sum(w * np.asarray(forecasts[m][sid], dtype=np.float64) for m, w in pairs)

    def to_dict(self) -> dict:
        return {"members": self.members, "weights": self.weights}


@dataclass
class Combination:
    """The combination a run chose on validation (saved in ``forecast.json``)."""

    metric: str  # the metrics.TABLE name it was chosen by
    method: str  # best | mean | inverse
    by: str  # run | series
    run: Weights  # the run's choice: every series' with by run, the fallback with by series
    series: dict[str, Weights] = field(default_factory=dict)  # id -> choice, with by series
    validation: dict[str, float] = field(default_factory=dict)  # member -> mean validation error

    def weights_for(self, sid: str) -> Weights:
        return self.series.get(sid, self.run)

    def baselines(self) -> list[str]:
        """The baselines any choice uses (what must be forecast to apply it)."""
        names = [m for w in [self.run, *self.series.values()] for m in w.members]
        return [m for m in dict.fromkeys(names) if m != MODEL]

    def candidates(self) -> list[str]:
        """Every baseline it chose among (those scored on validation)."""
        return [m for m in self.validation if m != MODEL]

    def summary(self) -> dict:
        """The choice without the per-series weights: how many series have their own."""
        brief = {k: v for k, v in self.to_dict().items() if k != "series"}
        return {**brief, "series": len(self.series)}

    def describe(self) -> str:
        """One line: how it was chosen, the run's weights, how many series have their own."""
        own = f"; {len(self.series)} series with their own" if self.series else ""
        how = f"by {self.by}, {self.method} on validation {self.metric}"
        return f"{how}: {self.run.describe()}{own}"

    def to_dict(self) -> dict:
        return {
            "metric": self.metric,
            "method": self.method,
            "by": self.by,
            "run": self.run.to_dict(),
            "series": {sid: w.to_dict() for sid, w in self.series.items()},
            "validation": self.validation,
        }


def combination_from_dict(raw: dict, where: str) -> Combination:
    """A saved combination, checked: members known, weights as many as members and summing
    to 1; a ValueError naming ``where`` and the series otherwise."""
    from hybridseq.baselines import BASELINES

    def weights(d: dict, what: str) -> Weights:
        members, w = list(d["members"]), [float(x) for x in d["weights"]]
        unknown = [m for m in members if m != MODEL and m not in BASELINES]
        if unknown or len(w) != len(members) or not members or abs(sum(w) - 1) > 1e-6:
            raise ValueError(f"{where}: combination {what}: members {members}, weights {w}")
        return Weights(members, w)

    try:
        series = {sid: weights(d, f"of series {sid!r}") for sid, d in raw["series"].items()}
        validation = {k: float(v) for k, v in raw.get("validation", {}).items()}
        run = weights(raw["run"], "of the run")
        return Combination(raw["metric"], raw["method"], raw["by"], run, series, validation)
    except (KeyError, TypeError) as e:
        raise ValueError(f"{where}: combination: missing or malformed {e}") from None


def resolve_metric(cfg: CombineConfig, select: str) -> str:
    """``combine.metric``, its ``auto`` read as the run's ``train.select`` where that is a
    scale-free series metric, else smape."""
    if cfg.metric != "auto":
        return cfg.metric
    return select if select in SCALE_FREE else "smape"


def validation_split(
    train_parts: dict[str, np.ndarray], horizon: int, fewest: int
) -> tuple[dict, dict]:
    """Each series' training part (N, D) -> its history (N - H, D) and validation targets
    (H, D); series whose history would be shorter than ``fewest`` points are left out."""
    kept = {sid: y for sid, y in train_parts.items() if len(y) - horizon >= fewest}
    return (
        {sid: y[:-horizon] for sid, y in kept.items()},
        {sid: y[-horizon:] for sid, y in kept.items()},
    )


def apply(comb: Combination, forecasts: Forecasts) -> dict[str, np.ndarray]:
    """id -> (H, D): each series of the model's forecasts (``forecasts[MODEL]``) as its
    chosen members weighted; ``forecasts`` holds every member ``comb.baselines()`` names."""
    return {sid: comb.weights_for(sid).mix(forecasts, sid) for sid in forecasts[MODEL]}


def choose(
    forecasts: Forecasts,
    actuals: dict[str, np.ndarray],
    histories: dict[str, np.ndarray],
    cfg: CombineConfig,
    metric: str,
    period: int = 1,
) -> Combination:
    """The combination of lowest validation error.

    Args:
        forecasts: member -> id -> (H, D) validation forecasts, the model's as ``MODEL``.
        actuals: id -> (H, D) validation targets; histories: id -> (N, D) the points before.
    Returns:
        The chosen members and weights, per run and (with ``by: series``) per series.
    """
    names = list(forecasts)
    sids = [sid for sid in actuals if all(sid in forecasts[m] for m in names)]
    errors = _errors(forecasts, actuals, histories, sids, metric, period)  # (S, K)
    run_error = _nanmean(errors, axis=0)  # (K,)

    def score(w: Weights, picked: list[str]) -> float:
        mixed = {"c": {sid: w.mix(forecasts, sid) for sid in picked}}
        err = _errors(mixed, actuals, histories, picked, metric, period)[:, 0]
        return float(np.nanmean(err)) if np.isfinite(err).any() else np.inf

    run = _pick(names, run_error, cfg, lambda w: score(w, sids))
    series = {}
    if cfg.by == "series":
        for i, sid in enumerate(sids):
            if np.isfinite(errors[i]).any():
                series[sid] = _pick(names, errors[i], cfg, lambda w, sid=sid: score(w, [sid]))
    validation = {m: float(e) for m, e in zip(names, run_error, strict=True)}
    return Combination(metric, cfg.method, cfg.by, run, series, validation)


def _pick(names: list[str], error: np.ndarray, cfg: CombineConfig, score) -> Weights:
    """The weights of ``cfg.method`` given each member's error (K,) (NaN: undefined, never
    picked) and ``score(weights)``, the validation error of a combination (to choose k)."""
    finite = np.where(np.isfinite(error), error, np.inf)
    order = [int(i) for i in np.argsort(finite, kind="stable") if np.isfinite(finite[i])]
    if not order:
        return Weights([MODEL], [1.0])
    if cfg.method == "best":
        return Weights([names[order[0]]], [1.0])
    sizes = [cfg.top_k] if cfg.top_k else range(1, len(order) + 1)
    options = [_weights(names, finite, order[: min(k, len(order))], cfg.method) for k in sizes]
    scores = [score(w) for w in options]
    return options[int(np.argmin(scores))]  # the smallest k among equals


def _weights(names: list[str], error: np.ndarray, top: list[int], method: str) -> Weights:
    """Equal (``mean``) or inverse-error (``inverse``) weights over the members ``top``; a
    member of zero error takes all the weight (shared among such members)."""
    e = error[top]
    if method == "mean":
        raw = np.ones(len(top))
    elif np.any(e <= 0):
        raw = (e <= 0).astype(float)
    else:
        raw = 1.0 / e
    w = raw / raw.sum()
    return Weights([names[i] for i in top], [float(x) for x in w])


def _errors(forecasts: Forecasts, actuals, histories, sids, metric: str, period: int):
    """(S, K) per series (mean over its variables) and member: the series ``metric``."""
    fn = metrics.metric(metric, metrics.SERIES).series
    needs_history = metrics.TABLE[metric].needs_history
    out = np.full((len(sids), len(forecasts)), np.nan)
    for i, sid in enumerate(sids):
        y, x = _columns(actuals[sid]), _columns(histories[sid])
        for k, fs in enumerate(forecasts.values()):
            f = _columns(fs[sid])
            args = [(x[:, d], period) if needs_history else () for d in range(y.shape[1])]
            values = [fn(f[:, d], y[:, d], *args[d]) for d in range(y.shape[1])]
            out[i, k] = _nanmean(np.array(values), axis=0)
    return out


def _nanmean(x: np.ndarray, axis: int) -> np.ndarray:
    """The mean over ``axis`` of the finite values; NaN where there are none."""
    finite = np.isfinite(x)
    total = np.where(finite, x, 0.0).sum(axis=axis)
    count = finite.sum(axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def _columns(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    return x[:, None] if x.ndim == 1 else x
