"""The M3 / Tourism recipe (benchmarks/forecasting/run.py): the per-frequency forecast section
keeps every option of the config file."""

from __future__ import annotations

import importlib.util
import re
from dataclasses import asdict, fields
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

pytest.importorskip("statsmodels")
from hybridseq.config import ForecastConfig  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "forecasting" / "run.py"
spec = importlib.util.spec_from_file_location("forecasting_run", SCRIPT)
recipe = importlib.util.module_from_spec(spec)
spec.loader.exec_module(recipe)


def test_window_config_keeps_every_option_it_does_not_set():
    # every ForecastConfig field away from its default (window_season was once dropped here)
    base = {
        "scale": "window_last",
        "validation": False,
        "window_season": True,
        "calendar": True,
        "deseasonalize": False,
    }
    handled = set(recipe.WINDOW_KEYS) | set(recipe.ENSEMBLE_KEYS)
    assert set(base) | handled == {f.name for f in fields(ForecastConfig)}
    items = [SimpleNamespace(h=8, period=4)]
    cfg = recipe.window_config(base, items, lookback=3.0, shortest=1.5, history=2.0)
    assert {k: v for k, v in asdict(cfg).items() if k in base} == base
    assert (cfg.horizon, cfg.period, cfg.lookback, cfg.min_lookback, cfg.max_windows) == (
        8,
        4,
        24,
        12,
        16,
    )


def test_frequency_overrides_name_one_or_several_frequencies():
    specs = ["quarterly,other:train.ema=0.99", "monthly:train.lr=0.1", "other:train.seed=2"]
    assert recipe.frequency_overrides(specs, "other") == ["train.ema=0.99", "train.seed=2"]
    assert recipe.frequency_overrides(specs, "monthly") == ["train.lr=0.1"]
    assert recipe.frequency_overrides(specs, "yearly") == []


def test_validation_score_targets_the_last_h_history_points_and_skips_unforecast_series():
    x = 1.0 + np.arange(10.0)
    items = [SimpleNamespace(sn="a", x=x, h=3), SimpleNamespace(sn="b", x=x, h=3)]
    exact = {"a": x[-3:]}  # "b" too short to validate: left out, not scored as a miss
    assert recipe.validation_score(exact, items, "mape") == 0.0
    off = {"a": 1.1 * x[-3:], "b": x[-3:]}
    assert recipe.validation_score(off, items, "mape") == pytest.approx(5.0)


def test_median_combines_members_point_by_point():
    members = [
        {"a": np.array([1.0, 9.0])},
        {"a": np.array([2.0, 3.0])},
        {"a": np.array([5.0, 4.0])},
    ]
    assert recipe.median(members)["a"].tolist() == [2.0, 4.0]


def test_backtest_moves_every_series_back_by_its_horizon():
    x = np.arange(10.0)
    data = {"yearly": [SimpleNamespace(sn="a", x=x, xx=np.array([99.0]), h=3, period=1)]}
    data["yearly"].append(SimpleNamespace(sn="short", x=x[:3], xx=x[:3], h=3, period=1))
    (moved,) = recipe.backtest_items(data)["yearly"]  # "short" has no history left: dropped
    assert moved.x.tolist() == list(range(7)) and moved.xx.tolist() == [7.0, 8.0, 9.0]
    assert (moved.sn, moved.h, moved.period) == ("a", 3, 1)
    (twice,) = recipe.backtest_items(data, horizons=2)["yearly"]  # two horizons earlier
    assert twice.x.tolist() == list(range(4)) and twice.xx.tolist() == [4.0, 5.0, 6.0]
    (thrice,) = recipe.backtest_items(data, horizons=3)["yearly"]
    assert thrice.x.tolist() == [0.0] and thrice.xx.tolist() == [1.0, 2.0, 3.0]
    assert recipe.backtest_items(data, horizons=4)["yearly"] == []  # no history left


def _train_windows(log: str) -> int:
    """The training windows a fit reported ("6 series -> windows: 48 train, ...")."""
    return int(re.search(r"windows: (\d+) train", log).group(1))


def test_refit_trains_the_chosen_steps_on_windows_through_the_validation_targets(tmp_path, capsys):
    rng = np.random.default_rng(0)
    items = [
        SimpleNamespace(sn=f"s{i}", x=10 + rng.random(20).cumsum(), xx=np.ones(3), h=3, period=1)
        for i in range(6)
    ]
    base = {"scale": "window_last", "validation": True}
    cfg = recipe.window_config(base, items, lookback=2.0, shortest=1.0, history=None)
    raw = {
        "model": {"family": "lstm_attention", "emb_dim": 8, "enc_hidden": 8, "dec_hidden": 8},
        "train": {"batch_size": 8, "eval_every": 100, "progress": False, "threads": 1},
    }
    overrides = ["train.max_steps=50"]
    first = recipe.train_frequency(items, cfg, raw, tmp_path / "first", overrides)
    first_train = _train_windows(capsys.readouterr().out)
    chosen = SimpleNamespace(best={"step": 7})
    where, again = recipe.refit(items, cfg, raw, tmp_path / "first", overrides, chosen)
    assert where == tmp_path / "first" / "refit" and again.step == 7
    assert again.history[-1]["step"] == 7  # one validation, at the end: the final weights
    refit_train = _train_windows(capsys.readouterr().out)
    assert refit_train == first_train + 3 * len(items)  # each series' targets reach h further
    assert set(recipe.model_forecasts(where, items, cfg)[0]) == {s.sn for s in items}
    untrained = SimpleNamespace(best={"step": 0})  # validation kept the untrained model
    assert recipe.refit(items, cfg, raw, tmp_path / "first", overrides, untrained) == (
        tmp_path / "first",
        untrained,
    )
    assert first.step == 50


def test_validation_mape_leaves_out_series_with_a_zero_target():
    items = [
        SimpleNamespace(sn="a", x=np.array([5.0, 1.0, 2.0]), h=2),  # targets 1, 2
        SimpleNamespace(sn="b", x=np.array([5.0, 0.0, 2.0]), h=2),  # a zero: MAPE undefined
    ]
    forecasts = {"a": np.array([1.5, 3.0]), "b": np.array([1.0, 1.0])}
    assert recipe.validation_score(forecasts, items, "mape") == pytest.approx(50.0)
    # only a zero target leaves a series out: a broken (nan) forecast still shows as nan
    fine = SimpleNamespace(sn="c", x=np.array([5.0, 2.0, 2.0]), h=2)
    broken = {"a": np.array([np.nan, 3.0]), "b": np.array([1.0, 1.0]), "c": np.ones(2)}
    assert np.isnan(recipe.validation_score(broken, items + [fine], "mape"))
    assert np.isnan(
        recipe.score(forecasts, [SimpleNamespace(sn="b", xx=np.array([0.0, 2.0]))], "mape")
    )


def test_combine_chooses_on_the_validation_part_and_applies_to_the_test_part():
    from hybridseq.config import CombineConfig

    shape = np.array([0.7, 1.3, 1.1, 0.9])
    x = 10 * shape[np.arange(24) % 4]
    items = [SimpleNamespace(sn=f"s{i}", x=(i + 1) * x, h=4, period=4) for i in range(3)]
    cfg = ForecastConfig(horizon=4, lookback=8, period=4)
    valid = {s.sn: np.full(4, s.x.mean()) for s in items}  # a flat model: worse than snaive
    test = {"model": {s.sn: np.full(4, s.x.mean()) for s in items}}
    ccfg = CombineConfig(members=["naive", "seasonal_naive"])
    comb, combined = recipe.combine(items, cfg, ccfg, valid, test, "smape")
    assert comb.run.members == ["seasonal_naive"] and comb.metric == "smape"
    np.testing.assert_allclose(combined["s1"], items[1].x[-4:])
