"""forecast.combine: the model combined with baselines, chosen on the validation windows only;
saved with the run and used by forecast, evaluate and the server."""

from __future__ import annotations

import json

import numpy as np
import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("statsforecast")

from hybridseq import combine as C  # noqa: E402
from hybridseq.checkpoint import CheckpointError  # noqa: E402
from hybridseq.cli import main as cli_main  # noqa: E402
from hybridseq.config import CombineConfig, ConfigError, config_from_dict  # noqa: E402
from hybridseq.forecast import (  # noqa: E402
    choose_combination,
    evaluate_forecasts,
    fit_forecaster,
    forecast,
    load_fitted,
    load_forecaster,
    save_fitted,
)
from hybridseq.series import SeriesSet  # noqa: E402

H, M = 4, 4
MODEL = {"family": "lstm_attention", "emb_dim": 8, "enc_hidden": 8, "dec_hidden": 8, "dropout": 0.0}
TRAIN = {"batch_size": 16, "max_steps": 10, "eval_every": 5, "lr": 0.005, "loss": "mae"}
TRAIN.update(metrics=["smape"], select="smape", threads=1, progress=False)


def periodic(n: int = 40) -> SeriesSet:
    """Six purely seasonal series (period 4) at different levels: seasonal naive is exact."""
    shape = np.array([0.7, 1.3, 1.1, 0.9])
    return SeriesSet.from_arrays(
        {f"s{i}": (10 + 5 * i) * shape[np.arange(n) % M] for i in range(6)}
    )


def config(**combine) -> dict:
    members = ["naive", "seasonal_naive"]
    section = {"horizon": H, "lookback": 8, "period": M, "combine": {"members": members, **combine}}
    return {"forecast": section, "model": MODEL, "train": TRAIN}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("combine") / "run"
    fit_forecaster(periodic(), config(by="series"), out, log=lambda _: None)
    return out


def test_the_obviously_best_baseline_is_chosen(run):
    comb = load_fitted(run).combination
    assert comb.by == "series" and comb.metric == "smape"  # auto: train.select
    assert comb.run.members == ["seasonal_naive"] and comb.run.weights == [1.0]
    assert {sid: w.members for sid, w in comb.series.items()} == {
        f"s{i}": ["seasonal_naive"] for i in range(6)
    }
    assert comb.validation["seasonal_naive"] == 0.0 < comb.validation["naive"]


def test_forecast_and_server_use_the_combination(run):
    from hybridseq.serve_forecast import run_forecast

    series = periodic()
    table = forecast(run, series)
    want = series.values["s1"][-M:, 0]  # the last season, repeated (h = m)
    np.testing.assert_allclose(table.loc[table["id"] == "s1", "forecast"], want)
    fc = load_forecaster(run, device="cpu")
    served = run_forecast(fc, series.values, series.times, {})
    rows = [r["forecast"] for r in served["rows"] if r["series"] == "s1"]
    np.testing.assert_allclose(rows, want)


def test_the_test_part_is_never_read(run):
    fc = load_forecaster(run, device="cpu")
    clean = periodic()
    corrupt = SeriesSet.from_arrays({s: y.copy() for s, y in clean.values.items()})
    for y in corrupt.values.values():
        y[-H:] = 1e6 * np.arange(1, H + 1)[:, None]  # where naive would now look far better
    assert (
        choose_combination(fc, clean, "smape").to_dict()
        == choose_combination(fc, corrupt, "smape").to_dict()
    )


def test_evaluate_shows_model_baselines_and_combination(run, tmp_path, capsys):
    frame = periodic().values
    rows = [(s, t, float(v)) for s, y in frame.items() for t, v in enumerate(y[:, 0])]
    path = tmp_path / "s.csv"
    pd.DataFrame(rows, columns=["id", "time", "target"]).to_csv(path, index=False)
    cli_main(["forecast", "evaluate", str(run), str(path), "--baselines", "naive2"])
    out = capsys.readouterr().out
    table = [line.split()[0] for line in out.splitlines()[1:5]]
    assert table == ["model", "naive2", "naive", "seasonal_naive"]
    assert "combination " in out and "combination: by series, best on validation smape" in out
    scores = evaluate_forecasts(run, periodic(), baselines=[])
    assert list(scores.index) == ["model", "naive", "seasonal_naive", "combination"]
    assert scores.loc["combination", "smape"] == pytest.approx(0.0, abs=1e-9)


def test_round_trip_and_malformed_weights(run, tmp_path):
    fitted = load_fitted(run)
    save_fitted(tmp_path, fitted)
    assert load_fitted(tmp_path).combination == fitted.combination
    meta = json.loads((tmp_path / "forecast.json").read_text())
    meta["combination"]["series"]["s0"]["weights"] = [0.5]
    (tmp_path / "forecast.json").write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="combination of series 's0'"):
        load_fitted(tmp_path)


def synthetic_members(seed: int = 0, series: int = 5) -> tuple[dict, dict, dict]:
    """Validation forecasts of three members with errors of 10 %, 20 % and 40 % (random
    signs), their targets and histories."""
    rng = np.random.default_rng(seed)
    actuals = {f"s{i}": rng.uniform(50, 100, (H, 1)) for i in range(series)}
    histories = {sid: np.full((8, 1), 75.0) for sid in actuals}
    forecasts = {
        name: {sid: y * (1 + e * rng.choice([-1, 1], y.shape)) for sid, y in actuals.items()}
        for name, e in (("model", 0.1), ("ets", 0.2), ("theta", 0.4))
    }
    return forecasts, actuals, histories


@pytest.mark.parametrize("by", ["run", "series"])
@pytest.mark.parametrize("method", ["best", "mean", "inverse"])
def test_weights_sum_to_one(method, by):
    forecasts, actuals, histories = synthetic_members()
    cfg = CombineConfig(members=["ets", "theta"], method=method, by=by)
    comb = C.choose(forecasts, actuals, histories, cfg, "mape")
    for w in [comb.run, *comb.series.values()]:
        assert sum(w.weights) == pytest.approx(1.0) and len(w.weights) == len(w.members)
    assert comb.run.members[0] == "model"  # the lowest error comes first
    assert len(comb.series) == (5 if by == "series" else 0)


def test_inverse_weights_and_fixed_k():
    forecasts, actuals, histories = synthetic_members()
    cfg = CombineConfig(members=["ets", "theta"], method="inverse", top_k=2)
    comb = C.choose(forecasts, actuals, histories, cfg, "mape")
    e = comb.validation
    assert comb.run.members == ["model", "ets"]
    ratio = comb.run.weights[0] / comb.run.weights[1]
    assert ratio == pytest.approx(e["ets"] / e["model"])


def test_config_errors_name_the_key():
    with pytest.raises(ConfigError, match="forecast.combine.methd"):
        config_from_dict({"forecast": {"horizon": 2, "combine": {"methd": "best"}}})
    with pytest.raises(ConfigError, match="forecast.combine.members: 'prophet'"):
        config_from_dict({"forecast": {"horizon": 2, "combine": {"members": ["prophet"]}}})
    with pytest.raises(ConfigError, match="needs forecast.validation"):
        config_from_dict({"forecast": {"horizon": 2, "validation": False, "combine": {}}})
    with pytest.raises(ConfigError, match="top_k"):
        config_from_dict({"forecast": {"horizon": 2, "combine": {"top_k": 0}}})


def test_an_exported_forecaster_applies_the_combination(run, tmp_path):
    pytest.importorskip("onnxruntime")
    from hybridseq.forecast import predict_next

    cli_main(["export", str(run), "--out", str(tmp_path / "export")])
    exported = load_forecaster(tmp_path / "export")
    assert exported.fitted.combination == load_fitted(run).combination
    series = periodic()
    torch_model = predict_next(load_forecaster(run, device="cpu"), series.values)
    onnx_model = predict_next(exported, series.values)
    np.testing.assert_allclose(onnx_model["s2"], torch_model["s2"], rtol=1e-4, atol=1e-4)
    table = forecast(tmp_path / "export", series)
    want = series.values["s1"][-M:, 0]  # the combination chose seasonal naive
    np.testing.assert_allclose(table.loc[table["id"] == "s1", "forecast"], want)
