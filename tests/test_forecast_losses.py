"""Our series metrics (``hybridseq.forecast_metrics``, which reproduce the published M3 Naive2
and Tourism seasonal-naive numbers) against Nixtla's ``utilsforecast.losses`` on a small sample.

The definitions differ only in scale and in where a point is undefined:

- sMAPE: ours is 100 * mean(|y - f| / ((|y| + |f|) / 2)), 0-200 (Makridakis & Hibon 2000);
  utilsforecast's is mean(|y - f| / (|y| + |f|)), 0-1: ours = 200 x theirs.
- MAPE: ours is in percent: ours = 100 x theirs. A zero actual makes ours NaN for the whole
  series (the series is left out of the mean); utilsforecast drops that point only.
- MASE: the same (the MAE over the in-sample seasonal-naive MAE of the history); ours falls back
  to m = 1 for a history no longer than m, where utilsforecast has no scale.
"""

from __future__ import annotations

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
losses = pytest.importorskip("utilsforecast.losses")

from hybridseq import forecast_metrics as F  # noqa: E402


def _sample(seed: int = 0, series: int = 6, h: int = 5, m: int = 4):
    """Positive seasonal histories (30 points), actuals and noisy forecasts, as long frames."""
    rng = np.random.default_rng(seed)
    rows, train = [], []
    for i in range(series):
        t = np.arange(30 + h)
        y = 50 + 10 * i + 5 * np.sin(2 * np.pi * t / m) + rng.normal(0, 2, len(t))
        f = y[30:] * rng.uniform(0.8, 1.2, h)
        train += [(f"s{i}", k, y[k]) for k in range(30)]
        rows += [(f"s{i}", 30 + k, y[30 + k], f[k]) for k in range(h)]
    test = pd.DataFrame(rows, columns=["unique_id", "ds", "y", "model"])
    history = pd.DataFrame(train, columns=["unique_id", "ds", "y"])
    return test, history


def _ours(fn, test: pd.DataFrame, history: pd.DataFrame, *args) -> pd.Series:
    """Our metric per series, indexed by id."""
    out = {}
    for sid, rows in test.groupby("unique_id"):
        extra = (history.loc[history.unique_id == sid, "y"].to_numpy(), *args) if args else ()
        out[sid] = fn(rows["model"].to_numpy(), rows["y"].to_numpy(), *extra)
    return pd.Series(out)


def _theirs(frame: pd.DataFrame) -> pd.Series:
    return frame.set_index("unique_id")["model"]


def test_smape_is_200_times_utilsforecast():
    test, history = _sample()
    ours, theirs = _ours(F.smape, test, history), _theirs(losses.smape(test, ["model"]))
    np.testing.assert_allclose(ours.sort_index(), 200 * theirs.sort_index(), rtol=1e-12)


def test_mape_is_100_times_utilsforecast():
    test, history = _sample(1)
    ours, theirs = _ours(F.mape, test, history), _theirs(losses.mape(test, ["model"]))
    np.testing.assert_allclose(ours.sort_index(), 100 * theirs.sort_index(), rtol=1e-12)


def test_mase_equals_utilsforecast():
    test, history = _sample(2)
    ours = _ours(F.mase, test, history, 4)
    theirs = _theirs(losses.mase(test, ["model"], seasonality=4, train_df=history))
    np.testing.assert_allclose(ours.sort_index(), theirs.sort_index(), rtol=1e-12)
