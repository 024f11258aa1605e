"""Forecasting: reading series, time-ordered windows without leakage, scaling, point metrics,
baselines, covariates known ahead, and end-to-end runs (CLI on a real series, Python API on a
wide 2-variable one, quantile forecasts, covariates through the CLI)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

# the optional extra: pip install -e ".[forecast]"
pd = pytest.importorskip("pandas")
pytest.importorskip("statsmodels")
pytest.importorskip("matplotlib")

from hybridseq import baselines as B  # noqa: E402
from hybridseq import forecast_metrics as M  # noqa: E402
from hybridseq.cli import main as cli_main  # noqa: E402
from hybridseq.config import ConfigError, ForecastConfig  # noqa: E402
from hybridseq.data import DataError  # noqa: E402
from hybridseq.forecast import (  # noqa: E402
    Fitted,
    Forecaster,
    evaluate_forecasts,
    fit_forecaster,
    forecast,
    predict_next,
)
from hybridseq.metrics import score_series  # noqa: E402
from hybridseq.series import Columns, SeriesSet, read_series  # noqa: E402
from hybridseq.windows import (  # noqa: E402
    check_lengths,
    covariate_scales,
    fit_scale,
    make_windows,
    split_starts,
)


def main(argv: list[str]) -> None:
    """``hybridseq forecast ARGV...``."""
    cli_main(["forecast", *argv])


TINY = {
    "model": {
        "family": "hybrid",
        "d_model": 16,
        "heads": 2,
        "ff_dim": 16,
        "enc_layers": 1,
        "dec_hidden": 16,
        "dec_layers": 1,
        "dropout": 0.0,
    },
    "train": {
        "batch_size": 32,
        "max_steps": 20,
        "eval_every": 10,
        "lr": 0.005,
        "loss": "mae",
        "metrics": ["mae"],
        "select": "mae",
        "threads": 1,
        "progress": False,
    },
}


def long_frame(n: int = 12) -> pd.DataFrame:
    """Two series, 'a' and 'b', of n monthly points each."""
    times = pd.date_range("2000-01-01", periods=n, freq="MS").strftime("%Y-%m-%d")
    rows = [(sid, t, float(i + k)) for k, sid in enumerate("ab") for i, t in enumerate(times)]
    return pd.DataFrame(rows, columns=["id", "time", "target"])


# --------------------------------------------------------------------------- windows


@pytest.mark.parametrize("validation", [True, False])
def test_split_has_no_leakage(validation):
    cfg = ForecastConfig(
        horizon=3, lookback=5, min_lookback=2, scale="mean_abs", validation=validation
    )
    n = 30
    series = SeriesSet.from_arrays({"s": np.arange(n) + 1000.0})  # every value unique
    identity = {"s": (np.zeros(1), np.ones(1))}
    windows = make_windows(series, cfg, identity)
    seen = {float(v) for src, tgt in windows["train"] for v in np.concatenate([src, tgt]).ravel()}
    test_targets = set(np.arange(n - 3, n) + 1000.0)
    assert not seen & test_targets
    assert [float(v) for v in windows["test"][0][1][:, 0]] == sorted(test_targets)
    if validation:
        valid_targets = {float(v) for v in windows["valid"][0][1][:, 0]}
        assert valid_targets == set(np.arange(n - 6, n - 3) + 1000.0)
        assert not seen & valid_targets
    else:
        assert windows["valid"] == []
    for src, tgt in windows["train"] + windows["test"]:  # source directly precedes target
        assert 2 <= len(src) <= 5 and tgt[0, 0] == src[-1, 0] + 1


def test_split_starts_counts_and_most_recent_windows():
    cfg = ForecastConfig(horizon=2, lookback=4)
    starts = split_starts(12, cfg)
    assert starts == {"train": [4, 5, 6], "valid": [8], "test": [10]}
    recent = ForecastConfig(horizon=2, lookback=4, max_windows=2)
    assert split_starts(12, recent)["train"] == [5, 6]


@pytest.mark.parametrize("method", ["mean_abs", "standard"])
def test_scaling_round_trips(method):
    x = np.random.default_rng(0).normal(5.0, 3.0, size=(40, 2))
    loc, scale = fit_scale(x, method)
    assert loc.shape == scale.shape == (2,)
    np.testing.assert_allclose((x - loc) / scale * scale + loc, x)
    _, flat = fit_scale(np.zeros((5, 1)), method)
    assert flat.tolist() == [1.0]  # a zero scale would divide by zero


def test_series_scale_uses_training_part_only():
    from hybridseq.windows import series_scales

    y = np.concatenate([np.full(10, 2.0), np.full(4, 100.0)])  # huge values only at the end
    cfg = ForecastConfig(horizon=2, lookback=3, scale="mean_abs")
    loc, scale = series_scales(SeriesSet.from_arrays({"s": y}), cfg)["s"]
    assert loc.tolist() == [0.0] and scale.tolist() == [2.0]


# --------------------------------------------------------------------------- data errors


def test_reads_long_and_wide(tmp_path):
    series = read_series(long_frame())
    assert list(series.values) == ["a", "b"] and series.values["b"].shape == (12, 1)
    wide = pd.DataFrame({"time": range(6), "x": np.arange(6.0), "y": np.ones(6)})
    path = tmp_path / "wide.csv"
    wide.to_csv(path, index=False)
    w = read_series(path, Columns(wide=True))
    assert w.variables == ["x", "y"] and w.values["series"].shape == (6, 2)


def test_missing_column_is_named():
    with pytest.raises(DataError, match="missing column 'sales'"):
        read_series(long_frame(), Columns(target=["sales"]))


def test_duplicated_and_unsorted_times_name_series_and_position():
    df = long_frame()
    df.loc[3, "time"] = df.loc[2, "time"]
    with pytest.raises(DataError, match=r"series 'a', position 3: .* duplicated"):
        read_series(df)
    df = long_frame()
    df.loc[[13, 14], "time"] = df.loc[[14, 13], "time"].to_numpy()
    with pytest.raises(DataError, match=r"series 'b', position 2: .* out of order"):
        read_series(df)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_value_names_series_and_position(bad):
    df = long_frame()
    df.loc[12 + 5, "target"] = bad
    with pytest.raises(DataError, match=r"series 'b', position 5 \(time 2000-06-01.*'target' is"):
        read_series(df)


def test_non_numeric_value_is_named():
    df = long_frame().astype({"target": object})
    df.loc[4, "target"] = "n/a"
    with pytest.raises(DataError, match="series 'a', position 4: column 'target' is not a number"):
        read_series(df)


def test_short_series_are_named():
    series = SeriesSet.from_arrays({"long": np.ones(20), "tiny": np.ones(5)})
    with pytest.raises(DataError, match=r"'tiny' \(5\)"):
        check_lengths(series, ForecastConfig(horizon=2, lookback=4))


def test_forecast_config_is_checked():
    with pytest.raises(ConfigError, match="min_lookback"):
        ForecastConfig(horizon=2, lookback=3, min_lookback=5)


# --------------------------------------------------------------------------- metrics


def test_smape_and_mape_by_hand():
    actual, forecast_ = np.array([100.0, 200.0]), np.array([110.0, 180.0])
    # |10| / 105 and |20| / 190, averaged, in percent
    assert M.smape(forecast_, actual) == pytest.approx(100 * (10 / 105 + 20 / 190) / 2)
    assert M.mape(forecast_, actual) == pytest.approx(100 * (0.1 + 0.1) / 2)
    assert M.smape(np.zeros(2), np.zeros(2)) == 0.0
    assert np.isnan(M.mape(np.ones(2), np.array([0.0, 1.0])))  # a zero actual


def test_mase_by_hand():
    # in-sample naive MAE of 1,2,3,4,5 is 1; forecast MAE is (0 + 2) / 2 = 1
    assert M.mase(np.array([6.0, 7.0]), np.array([6.0, 9.0]), np.arange(1.0, 6.0)) == 1.0
    # seasonal m = 2: |3-1|, |4-2|, |5-3|, |6-4| all 2; forecast MAE 1 -> 0.5
    history = np.array([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
    assert M.mase(np.array([7.0, 8.0]), np.array([8.0, 9.0]), history, period=2) == 0.5


def test_score_series_averages_series_and_skips_undefined():
    actuals = {"a": np.array([[1.0], [1.0]]), "b": np.array([[0.0], [2.0]])}
    forecasts = {"a": np.array([[2.0], [2.0]]), "b": np.array([[0.0], [2.0]])}
    histories = {"a": np.array([1.0, 2.0]), "b": np.array([1.0, 2.0])}
    scores = score_series(forecasts, actuals, histories)
    assert scores["mae"] == 0.5 and scores["series"] == 2
    assert scores["mape"] == 100.0  # 'b' has a zero actual: left out


# --------------------------------------------------------------------------- baselines


def test_naive_on_constant_and_linear():
    assert B.naive(np.full(8, 3.0), 4).tolist() == [3.0] * 4
    assert B.naive(np.arange(10.0), 3).tolist() == [9.0] * 3
    for name in B.BASELINES:
        np.testing.assert_allclose(B.baseline(name, np.full(8, 3.0), 4), 3.0)


def test_seasonal_methods_continue_a_periodic_series():
    season = np.array([0.8, 1.2, 1.1, 0.9])
    y = 10 * season[np.arange(24) % 4]
    future = 10 * season[np.arange(24, 30) % 4]
    np.testing.assert_allclose(B.seasonal_naive(y, 6, 4), future)
    assert B.is_seasonal(y, 4)
    np.testing.assert_allclose(B.naive2(y, 6, 4), future, rtol=1e-9)
    assert not B.is_seasonal(np.arange(24.0), 4)


def test_trend_methods_follow_a_line():
    y = 2.0 * np.arange(30) + 1
    for name in ("ets", "theta", "arima", "ensemble_median"):
        np.testing.assert_allclose(B.baseline(name, y, 3, 1), [61, 63, 65], rtol=0.01)
    table = B.baseline_table(["ets", "theta", "ensemble_mean"], {"a": y}, 3)
    mean = (table["ets"]["a"] + table["theta"]["a"]) / 2  # the ensemble of the models named
    np.testing.assert_allclose(table["ensemble_mean"]["a"], mean)


def test_tiny_history_falls_back_to_naive2():
    for name in ("ets", "theta", "ces"):  # statsforecast refuses such "tiny datasets"
        np.testing.assert_allclose(B.baseline(name, np.array([4.0, 5.0]), 2, 4), 5.0)
    assert all(np.isfinite(B.baseline(n, np.array([4.0, 5.0]), 2, 4)).all() for n in B.BASELINES)
    assert "arima" not in B.default_baselines(4) and "arima" in B.default_baselines(1)


def test_unknown_baseline():
    with pytest.raises(ValueError, match="unknown baseline 'nope'"):
        B.baseline("nope", np.ones(3), 2)


# --------------------------------------------------------------------------- end to end


def co2_csv(path) -> str:
    """Monthly means of the Mauna Loa CO2 series shipped with statsmodels, long form."""
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean().ffill()["1980":]
    table = pd.DataFrame({"station": "mauna_loa", "month": monthly.index, "ppm": monthly.values})
    table.to_csv(path, index=False)
    return str(path)


def test_cli_train_forecast_evaluate_on_co2(tmp_path, capsys):
    data = co2_csv(tmp_path / "co2.csv")
    config = {"forecast": {"horizon": 12, "lookback": 24, "period": 12}, **TINY}
    (tmp_path / "f.yaml").write_text(yaml.safe_dump(config))
    run = str(tmp_path / "run")
    cols = ["--id-col", "station", "--time-col", "month", "--target", "ppm"]
    main(["train", data, "--config", str(tmp_path / "f.yaml"), "--out", run, *cols])
    out_csv, png = tmp_path / "next.csv", tmp_path / "next.png"
    main(["forecast", run, data, "--output", str(out_csv), "--plot", str(png)])
    table = pd.read_csv(out_csv)
    assert list(table.columns) == ["station", "month", "forecast"]  # the table's own names
    last = pd.read_csv(data)["month"].iloc[-1]
    months = pd.date_range(last, periods=13, freq="MS")[1:].strftime("%Y-%m-%d").tolist()
    assert table["month"].tolist() == months and (table["station"] == "mauna_loa").all()
    assert table["forecast"].between(300, 450).all()  # back in ppm, not scaled units
    assert png.read_bytes()[:4] == b"\x89PNG"
    capsys.readouterr()
    plot = ["--plot", str(png), "--series", "mauna_loa", "--tail", "30"]
    main(["evaluate", run, data, "--baselines", "naive,seasonal_naive", "--json", *plot])
    scores = json.loads(capsys.readouterr().out)
    assert set(scores) == {"model", "naive", "seasonal_naive"}
    assert scores["seasonal_naive"]["smape"] < scores["naive"]["smape"]  # CO2 is seasonal


def test_cli_reports_data_errors(tmp_path, capsys):
    path = tmp_path / "bad.csv"
    long_frame().drop(columns="target").to_csv(path, index=False)
    (tmp_path / "f.yaml").write_text(yaml.safe_dump({"forecast": {"horizon": 2}, **TINY}))
    with pytest.raises(SystemExit) as exit_:
        main(["train", str(path), "--config", str(tmp_path / "f.yaml"), "--out", str(tmp_path)])
    assert exit_.value.code == 2
    assert "missing column 'target'" in capsys.readouterr().err


def test_api_on_wide_two_variable_series(tmp_path):
    t = np.arange(120)
    wide = pd.DataFrame(
        {"t": t, "sine": 10 + np.sin(2 * np.pi * t / 12), "ramp": 5 + 0.1 * t},
    )
    cols = Columns(time="t", wide=True)
    config = {"forecast": {"horizon": 6, "lookback": 12, "scale": "window"}, **TINY}
    fit_forecaster(wide, config, tmp_path / "run", columns=cols, log=lambda _: None)
    table = forecast(tmp_path / "run", wide, plot=tmp_path / "p.png")
    assert list(table.columns) == ["t", "variable", "forecast"]  # one series: no id column
    assert len(table) == 6 * 2 and set(table["variable"]) == {"sine", "ramp"}
    assert table["t"].tolist() == [t for t in range(120, 126) for _ in range(2)]
    scores = evaluate_forecasts(tmp_path / "run", wide, baselines=["naive"])
    assert list(scores.index) == ["model", "naive"] and np.isfinite(scores["smape"]).all()
    assert (tmp_path / "p.png").stat().st_size > 0


def test_window_scaling_divides_each_window_by_its_past():
    y = np.concatenate([np.full(10, 2.0), np.full(10, 50.0)])
    cfg = ForecastConfig(horizon=2, lookback=3)  # scale: window
    windows = make_windows(SeriesSet.from_arrays({"s": y}), cfg, {})
    for src, _ in windows["train"] + windows["test"]:
        assert np.abs(src).mean() == pytest.approx(1.0)


def test_deseasonalize_recovers_the_pattern_from_the_training_part_only():
    from hybridseq.windows import fit_seasons, season_at

    pattern = np.array([0.8, 1.0, 1.2, 1.0])
    y = 100.0 * np.tile(pattern, 10)  # (40,) purely multiplicative seasonality
    y[-8:] *= np.array([3.0, 0.1, 7.0, 0.5, 2.0, 9.0, 0.2, 4.0])  # validation + test targets
    cfg = ForecastConfig(horizon=4, lookback=8, period=4, deseasonalize=True)
    profile = fit_seasons(SeriesSet.from_arrays({"s": y}), cfg)["s"]  # (m, D)
    assert profile.shape == (4, 1)
    np.testing.assert_allclose(profile[:, 0], pattern, rtol=1e-6)  # the targets were not used
    np.testing.assert_allclose(season_at(profile, 41, 3)[:, 0], pattern[[1, 2, 3]])
    windows = make_windows(SeriesSet.from_arrays({"s": y}), cfg, {}, {"s": profile})
    src, tgt = windows["train"][0]
    np.testing.assert_allclose(src, 1.0)  # adjusted, then window-scaled: flat
    np.testing.assert_allclose(tgt, 1.0)
    assert fit_seasons(SeriesSet.from_arrays({"s": y}), ForecastConfig(horizon=4, period=4)) == {}


def test_deseasonalized_forecast_is_reseasonalised(tmp_path):
    t = np.arange(96)
    y = 50.0 * (1.0 + 0.3 * np.sin(2 * np.pi * t / 12)) * (1.0 + 0.002 * t)
    config = {
        "forecast": {"horizon": 12, "lookback": 24, "period": 12, "deseasonalize": True},
        **TINY,
    }
    fit_forecaster(SeriesSet.from_arrays({"s": y}), config, tmp_path / "run", log=lambda _: None)
    table = forecast(tmp_path / "run", SeriesSet.from_arrays({"s": y}))
    f = table["forecast"].to_numpy()
    # whatever the tiny model learnt, the seasonal shape comes back: peak near month 3 of 12
    assert int(np.argmax(f)) in (1, 2, 3, 4) and int(np.argmin(f)) in (7, 8, 9, 10)


def test_interval_coverage_by_hand():
    actuals = {"a": np.array([[1.0], [5.0]]), "b": np.array([[2.0], [3.0]])}
    bands = {"a": (np.zeros((2, 1)), np.full((2, 1), 2.0)), "b": (np.full((2, 1), 2.0),) * 2}
    assert M.interval_coverage(actuals, bands) == 0.5  # 1 in, 5 out; 2 in (edges count), 3 out


def test_quantile_forecasts_end_to_end(tmp_path):
    t = np.arange(96)
    noise = np.random.default_rng(0).normal(0.0, 1.0, size=(2, 96))
    y = {sid: 50.0 + 5.0 * np.sin(2 * np.pi * t / 12) + noise[k] for k, sid in enumerate("ab")}
    config = {"forecast": {"horizon": 6, "lookback": 12, "period": 12}, **TINY}
    config["model"] = {**TINY["model"], "quantiles": [0.1, 0.5, 0.9]}
    config["train"] = {**TINY["train"], "loss": "quantile"}
    series = SeriesSet.from_arrays(y)
    fit_forecaster(series, config, tmp_path / "run", log=lambda _: None)
    table = forecast(tmp_path / "run", series, out_csv=tmp_path / "f.csv", plot=tmp_path / "f.png")
    written = pd.read_csv(tmp_path / "f.csv")
    assert list(written.columns) == ["id", "time", "forecast", "q0.1", "q0.5", "q0.9"]
    assert written["time"].tolist() == list(range(96, 102)) * 2  # positions go on
    assert len(written) == 2 * 6 and (tmp_path / "f.png").read_bytes()[:4] == b"\x89PNG"
    np.testing.assert_allclose(table["forecast"], table["q0.5"])  # the point is the median
    assert (table["q0.1"] <= table["q0.5"]).all() and (table["q0.5"] <= table["q0.9"]).all()
    assert table["forecast"].between(20, 80).all()  # back in the series' units
    scores = evaluate_forecasts(tmp_path / "run", series, baselines=["naive"])
    assert 0.0 <= scores.loc["model", "coverage"] <= 1.0
    assert np.isnan(scores.loc["naive", "coverage"])


# --------------------------------------------------------------------------- covariates


def phase(positions: np.ndarray, period: int) -> np.ndarray:
    """The calendar features by hand: (n,) positions -> (n, 2) sin and cos of the phase."""
    angle = 2 * np.pi * (positions % period) / period
    return np.stack([np.sin(angle), np.cos(angle)], axis=1)


class Recorder:
    """Stands in for a trained model: records what it is given, forecasts zeros."""

    network = SimpleNamespace(quantiles=(), point_index=0)

    def __init__(self, forecast: ForecastConfig) -> None:
        self.config = SimpleNamespace(forecast=forecast)

    def predict(self, sources, steps=None, covariates=None):
        self.sources, self.covariates = sources, covariates
        return [np.zeros((len(c), 1)) for c in covariates]


def test_calendar_and_user_covariates_continue_into_the_future():
    cfg = ForecastConfig(horizon=3, lookback=5, period=4, calendar=True)
    y, promo = np.arange(1.0, 31.0), 100.0 + np.arange(33.0)  # 30 values, 3 future promo rows
    series = SeriesSet.from_arrays({"s": y}, covariates={"s": promo}, covariate_names=["promo"])
    cov_scales = covariate_scales(series, cfg)
    mean, std = cov_scales["s"]  # the training part only: positions 0..23
    np.testing.assert_allclose([mean[0], std[0]], [111.5, np.arange(24.0).std()])
    src, tgt, cov = make_windows(series, cfg, {}, cov_scales=cov_scales)["test"][0]  # t = 27
    assert src.shape == (5, 1 + 3) and tgt.shape == (3, 1) and cov.shape == (3, 3)
    np.testing.assert_allclose(src[:, 1:3], phase(np.arange(22, 27), 4), atol=1e-12)
    np.testing.assert_allclose(cov[:, :2], phase(np.arange(27, 30), 4), atol=1e-12)
    np.testing.assert_allclose(cov[:, 2], (promo[27:30] - mean[0]) / std[0])  # not window-scaled
    model = Recorder(cfg)
    fitted = Fitted(Columns(covariates=["promo"]), ["x0"], {}, {}, cov_scales)
    fc = Forecaster(model, fitted)
    predict_next(fc, series.values, series.covariates)  # the 3 steps after position 29
    np.testing.assert_allclose(model.sources[0][:, 1:3], phase(np.arange(25, 30), 4), atol=1e-12)
    np.testing.assert_allclose(model.covariates[0][:, :2], phase(np.arange(30, 33), 4), atol=1e-12)
    np.testing.assert_allclose(model.covariates[0][:, 2], (promo[30:] - mean[0]) / std[0])
    with pytest.raises(DataError, match="series 's' has 2 rows of covariates after its last"):
        predict_next(fc, series.values, {"s": promo[:32]})
    with pytest.raises(ConfigError, match="forecast.calendar"):
        ForecastConfig(horizon=3, calendar=True)  # period 1: no phase


def test_future_rows_have_empty_targets_and_come_last():
    df = long_frame(8)
    df["promo"] = np.arange(16.0)
    df.loc[[6, 7], "target"] = np.nan  # series 'a': its last two rows are future rows
    series = read_series(df, Columns(covariates=["promo"]))
    assert series.values["a"].shape == (6, 1) and series.covariates["a"].shape == (8, 1)
    assert series.values["b"].shape == (8, 1) and series.covariate_names == ["promo"]
    with pytest.raises(DataError, match=r"series 'a', position 6 .*'target' is nan"):
        read_series(df)  # without covariates there is no future: an empty target is an error
    df.loc[3, "target"] = np.nan
    with pytest.raises(DataError, match=r"series 'a', position 3 .*'target' is nan"):
        read_series(df, Columns(covariates=["promo"]))
    df = long_frame(8)
    df["promo"] = 1.0
    df.loc[8 + 2, "promo"] = np.nan
    with pytest.raises(DataError, match=r"series 'b', position 2 .*'promo' is nan"):
        read_series(df, Columns(covariates=["promo"]))
    with pytest.raises(DataError, match="missing column 'price'"):
        read_series(df, Columns(covariates=["price"]))


def test_a_known_covariate_that_drives_the_series_is_used(tmp_path):
    """y = 10 + 5 x with x random but known ahead: without x the future is noise to the model."""
    rng = np.random.default_rng(0)
    xs = {f"s{k}": rng.normal(size=80) for k in range(6)}
    ys = {sid: 10.0 + 5.0 * x for sid, x in xs.items()}
    config = {"forecast": {"horizon": 4, "lookback": 8}, **TINY}
    config["train"] = {**TINY["train"], "max_steps": 150, "eval_every": 50, "lr": 0.01}
    mae = {}
    for name, covariates in (("with", xs), ("without", None)):
        series = SeriesSet.from_arrays(ys, covariates=covariates)
        fit_forecaster(series, config, tmp_path / name, log=lambda _: None)
        mae[name] = evaluate_forecasts(tmp_path / name, series, baselines=[]).loc["model", "mae"]
    assert mae["with"] < 0.4 * mae["without"]


def test_cli_with_covariates_and_their_future_rows(tmp_path, capsys):
    rng = np.random.default_rng(1)
    rows = []
    for sid in ("a", "b"):
        promo = rng.integers(0, 2, size=44).astype(float)
        for i in range(44):  # 40 observed points, then 4 future rows: promo known, sales not
            sales = 20.0 + 10.0 * promo[i] + rng.normal() if i < 40 else None
            rows.append((sid, i, sales, promo[i]))
    table = pd.DataFrame(rows, columns=["shop", "week", "sales", "promo"])
    data = tmp_path / "sales.csv"
    table.to_csv(data, index=False)
    config = {"forecast": {"horizon": 4, "lookback": 8, "period": 4, "calendar": True}, **TINY}
    (tmp_path / "f.yaml").write_text(yaml.safe_dump(config))
    run = str(tmp_path / "run")
    cols = ["--id-col", "shop", "--time-col", "week", "--target", "sales"]
    main(
        [
            "train",
            str(data),
            "--config",
            str(tmp_path / "f.yaml"),
            "--out",
            run,
            *cols,
            "--covariates",
            "promo",
        ]
    )
    meta = json.loads((tmp_path / "run" / "forecast.json").read_text())
    assert meta["columns"]["covariates"] == ["promo"] and set(meta["covariate_scales"]) == {
        "a",
        "b",
    }
    out_csv = tmp_path / "next.csv"
    main(["forecast", run, str(data), "--output", str(out_csv)])  # the run's columns
    forecasts = pd.read_csv(out_csv)
    assert len(forecasts) == 2 * 4 and np.isfinite(forecasts["forecast"]).all()
    capsys.readouterr()
    main(["evaluate", run, str(data), "--baselines", "naive", "--json"])
    assert set(json.loads(capsys.readouterr().out)) == {"model", "naive"}
    table.drop(index=[42, 43]).to_csv(data, index=False)  # series 'a' keeps 2 future rows
    with pytest.raises(SystemExit):
        main(["forecast", run, str(data)])
    err = capsys.readouterr().err
    assert "series 'a' has 2 rows of covariates after its last target value" in err
    assert "forecasting needs 4" in err


def test_window_last_scaling_makes_the_naive_forecast_one():
    y = np.array([2.0, 4.0, 8.0, 5.0, 10.0, 20.0, 0.0, 6.0])
    cfg = ForecastConfig(horizon=1, lookback=2, scale="window_last", validation=False)
    windows = make_windows(SeriesSet.from_arrays({"s": y}), cfg, {})
    for src, _ in windows["train"]:
        assert src[-1, 0] == pytest.approx(1.0)
    src, tgt = windows["test"][0]  # source [20, 0]: last value 0, so mean |x| = 10 instead
    np.testing.assert_allclose(src[:, 0], [2.0, 0.0])
    np.testing.assert_allclose(tgt[:, 0], [0.6])


def test_recent_season_makes_a_flat_forecast_seasonal_naive():
    from hybridseq.baselines import seasonal_naive
    from hybridseq.windows import recent_season

    y = np.array([5.0, 9.0, 4.0, 10.0, 6.0, 11.0, 3.0, 12.0, 7.0, 8.0])[:, None]  # period 4
    adjusted, factors = recent_season(y, 4, 6)
    level = y[-4:].mean()
    np.testing.assert_allclose(adjusted[-4:, 0], level)  # the last season becomes flat
    np.testing.assert_allclose(level * factors[:, 0], seasonal_naive(y[:, 0], 6, 4))
    z = y.copy()
    z[-3] = 0.0  # a zero in the last season: repeated as a zero, still seasonal naive
    adjusted, factors = recent_season(z, 4, 6)
    level = z[-4:].mean()
    np.testing.assert_allclose(adjusted[-4:, 0], level)
    np.testing.assert_allclose(level * factors[:, 0], seasonal_naive(z[:, 0], 6, 4))
    assert np.isfinite(adjusted).all()
    same, ones = recent_season(-y, 4, 6)  # negative: left alone
    np.testing.assert_array_equal(same, -y)
    np.testing.assert_array_equal(ones, 1.0)


def test_a_training_target_at_a_zero_seasonal_factor_is_finite():
    from hybridseq.windows import make_windows

    y = np.array([5.0, 9.0, 4.0, 10.0, 6.0, 11.0, 3.0, 0.0, 7.0, 8.0] + [4.0, 9.0, 5.0, 6.0] * 3)
    cfg = ForecastConfig(horizon=4, lookback=8, period=4, scale="window_last", window_season=True)
    windows = make_windows(SeriesSet.from_arrays({"s": y}), cfg, {})
    assert all(np.isfinite(t).all() for split in windows.values() for _, t in split)


def test_window_season_and_window_last_make_seasonal_naive_a_flat_one():
    from hybridseq.windows import normalise_source

    src = np.random.default_rng(0).uniform(1, 9, size=(12, 2))
    cfg = ForecastConfig(horizon=6, lookback=12, period=4, scale="window_last", window_season=True)
    source, loc, scale, factors = normalise_source("s", src, {}, cfg)
    assert source.shape == (12, 2) and factors.shape == (6, 2)
    naive = np.stack([B.seasonal_naive(src[:, d], 6, 4) for d in range(2)], axis=1)
    np.testing.assert_allclose((naive / factors - loc) / scale, 1.0)  # the model's units
    np.testing.assert_allclose((np.ones((6, 2)) * scale + loc) * factors, naive)  # and back


def test_head_init_one_starts_the_forecaster_at_seasonal_naive(tmp_path):
    # with window_season + window_last a flat 1 is seasonal naive, and head_init 1.0 makes the
    # untrained model output a flat 1 (lr 0: training leaves it untrained)
    rng = np.random.default_rng(0)
    y = 20 + 5 * np.sin(2 * np.pi * np.arange(60) / 4) + rng.uniform(0, 2, 60)
    config = {
        "forecast": {
            "horizon": 6,
            "lookback": 12,
            "period": 4,
            "window_season": True,
            "scale": "window_last",
        },
        "model": {**TINY["model"], "head_init": 1.0},
        "train": {**TINY["train"], "lr": 0.0, "max_steps": 2, "validate_first": True},
    }
    result = fit_forecaster(
        SeriesSet.from_arrays({"s": y}), config, tmp_path / "run", log=lambda _: None
    )
    assert result.history[0]["step"] == 0  # validate_first: the untrained model was scored
    table = forecast(tmp_path / "run", SeriesSet.from_arrays({"s": y}))
    np.testing.assert_allclose(table["forecast"].to_numpy(), B.seasonal_naive(y, 6, 4), rtol=1e-5)


def test_arrays_of_different_widths_are_refused_by_name():
    with pytest.raises(DataError, match=r"series 'b' has 2 columns of values, expected 1"):
        SeriesSet.from_arrays({"a": np.ones(5), "b": np.ones((5, 2))})
    cov = {"a": np.ones((6, 2)), "b": np.ones((6, 3))}
    with pytest.raises(DataError, match=r"series 'b' has 3 columns of covariates, expected 2"):
        SeriesSet.from_arrays({"a": np.ones(5), "b": np.ones(5)}, covariates=cov)


def test_a_forecast_metric_selects_the_checkpoint(tmp_path):
    """select: mase, the name ``forecast evaluate`` prints, picks `best` by the validation
    windows' MASE (their sources are the history); a typo fails before any training."""
    y = 10 + np.sin(np.arange(60) * 2 * np.pi / 12)
    raw = {"forecast": {"horizon": 6, "lookback": 12, "period": 12}, **TINY}
    raw["train"] = {**TINY["train"], "metrics": ["mase", "mae"], "select": "mase"}
    result = fit_forecaster(SeriesSet.from_arrays({"s": y}), raw, tmp_path / "run", log=print)
    assert all(np.isfinite(h["mase"]) for h in result.history)
    assert result.best["mase"] == min(h["mase"] for h in result.history)
    raw["train"]["select"] = "MASE"
    with pytest.raises(ConfigError, match="train.select: unknown metric 'MASE'.*'mase'"):
        fit_forecaster(SeriesSet.from_arrays({"s": y}), raw, tmp_path / "typo", log=print)
    assert not (tmp_path / "typo").exists()


# --------------------------------------------------------------------------- own time and columns


def test_future_times_continue_the_series_own_frequency():
    from hybridseq.series import future_times

    months = pd.date_range("2000-01-01", periods=6, freq="MS").to_numpy()
    expect = pd.to_datetime(["2000-07-01", "2000-08-01"]).to_numpy()
    np.testing.assert_array_equal(future_times(months, 6, 2), expect)
    ends = pd.date_range("2000-01-31", periods=4, freq="ME").to_numpy()
    assert pd.DatetimeIndex(future_times(ends, 4, 2)).strftime("%m-%d").tolist() == [
        "05-31",
        "06-30",
    ]
    weekdays = pd.date_range("2024-01-01", periods=10, freq="B").to_numpy()  # two weeks
    assert pd.DatetimeIndex(future_times(weekdays, 10, 2)).day_name().tolist() == [
        "Monday",
        "Tuesday",
    ]
    assert future_times(np.arange(1990, 2000), 10, 3).tolist() == [2000, 2001, 2002]
    assert future_times(np.arange(0, 20, 5), 2, 3).tolist() == [10, 15, 20]  # own rows first
    assert future_times(np.array([7]), 1, 2).tolist() == [8, 9]
    gaps = pd.to_datetime(["2000-01-01", "2000-01-03", "2000-01-04"]).to_numpy()
    assert pd.DatetimeIndex(future_times(gaps, 3, 1)).day.tolist() == [5]  # the last interval


def nixtla_frame(n: int = 60) -> pd.DataFrame:
    """Two weekly series in NeuralForecast's long format."""
    ds = pd.date_range("2020-01-05", periods=n, freq="W-SUN")
    t = np.arange(n)
    return pd.concat(
        pd.DataFrame({"unique_id": sid, "ds": ds, "y": 10.0 + k + np.sin(t / 3)})
        for k, sid in enumerate(["north", "south"])
    )


def test_unique_id_ds_y_needs_no_columns_and_comes_back(tmp_path):
    frame = nixtla_frame()
    assert read_series(frame).variables == ["y"] and set(read_series(frame).values) == {
        "north",
        "south",
    }
    config = {"forecast": {"horizon": 4, "lookback": 8}, **TINY}
    fit_forecaster(frame, config, tmp_path / "run", log=lambda _: None)
    table = forecast(tmp_path / "run", frame)
    assert list(table.columns) == ["unique_id", "ds", "forecast"]
    ahead = pd.date_range("2021-02-28", periods=4, freq="W-SUN")  # the 4 Sundays after the last
    assert frame["ds"].iloc[-1] == pd.Timestamp("2021-02-21")
    for sid in ("north", "south"):
        rows = table[table["unique_id"] == sid]
        assert pd.DatetimeIndex(rows["ds"]).equals(pd.DatetimeIndex(ahead, name="ds"))


def test_plot_starts_the_forecast_at_the_last_observation_and_honours_tail(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from hybridseq.forecast import Panel, _plot_one, band_label, plot_forecasts

    times = pd.date_range("2001-01-01", periods=23, freq="MS").to_numpy()  # 20 past, 3 ahead
    history = np.arange(20.0)[:, None]
    band = (np.full((3, 1), 18.0), np.full((3, 1), 22.0))
    panel = Panel(history, times, np.full((3, 1), 21.0), band, np.full((3, 1), 20.5))
    panel.baselines["naive"] = np.full((3, 1), 19.0)
    _, ax = plt.subplots()
    _plot_one(ax, panel, ["y"], band_label([0.1, 0.5, 0.9]), tail=5)
    lines = {line.get_label(): line for line in ax.get_lines() if not line.get_label()[0] == "_"}
    assert set(lines) == {"history", "actual", "naive", "forecast"}
    assert len(lines["history"].get_xdata()) == 5  # --tail 5
    for name in ("actual", "naive", "forecast"):  # joined: each starts at the last observation
        x, y = lines[name].get_xdata(), lines[name].get_ydata()
        assert x[0] == times[19] and y[0] == 19.0 and x[-1] == times[22]
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "80 % interval" in labels
    plt.close("all")
    assert band_label([0.05, 0.5, 0.9]) == "q0.05-q0.9 interval"
    with pytest.raises(DataError, match=r"no series 'zz' \(series: s\)"):
        plot_forecasts(tmp_path / "p.png", {"s": panel}, ["y"], series=["zz"])
