"""Config errors name the key (and the closest valid key); overrides apply by dotted path."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from hybridseq.config import ConfigError, config_from_dict, load_config

CONFIGS = Path(__file__).parent.parent / "hybridseq" / "configs"
BASE = {"data": {"synth": {"task": "reverse"}}}


def _with(section: str, **values) -> dict:
    raw = {"data": {"synth": {"task": "reverse"}}}
    raw.setdefault(section, {}).update(values)
    return raw


def test_unknown_key_names_it_and_the_closest_valid_key():
    with pytest.raises(ConfigError, match=r"'train\.learning_rat'.*") as err:
        config_from_dict(_with("train", learning_rat=0.1))
    assert "unknown config key" in str(err.value)
    with pytest.raises(ConfigError, match=r"did you mean 'dec_hidden'"):
        config_from_dict(_with("model", dec_hiden=32))
    with pytest.raises(ConfigError, match=r"unknown config key 'trian'.*did you mean 'train'"):
        config_from_dict({**BASE, "trian": {}})


def test_wrong_types_name_the_key():
    with pytest.raises(ConfigError, match=r"train\.batch_size: expected an integer"):
        config_from_dict(_with("train", batch_size="big"))
    with pytest.raises(ConfigError, match=r"model\.bidirectional: expected true or false"):
        config_from_dict(_with("model", bidirectional="yes"))
    with pytest.raises(ConfigError, match=r"data\.synth\.n_train: expected an integer"):
        config_from_dict({"data": {"synth": {"n_train": 1.5}}})
    with pytest.raises(ConfigError, match=r"train\.lr: expected float"):
        config_from_dict(_with("train", lr="fast"))


def test_bad_values_and_missing_data_are_refused():
    with pytest.raises(ConfigError, match=r"train\.optimizer: 'sgd' is not one of"):
        config_from_dict(_with("train", optimizer="sgd"))
    with pytest.raises(ConfigError, match=r"data: give data.train"):
        config_from_dict({"data": {}})
    with pytest.raises(ConfigError, match="teacher_forcing"):
        config_from_dict(_with("train", teacher_forcing=1.5))


def test_ints_are_accepted_for_floats_and_overrides_apply(tmp_path):
    cfg = config_from_dict(_with("train", lr=1))
    assert cfg.train.lr == 1.0 and isinstance(cfg.train.lr, float)
    path = tmp_path / "c.yaml"
    path.write_text("data:\n  synth: {task: copy}\ntrain:\n  lr: 0.5\n")
    cfg = load_config(path, ["train.lr=0.01", "model.family=lstm_attention", "decode.beam=3"])
    assert (cfg.train.lr, cfg.model.family, cfg.decode.beam) == (0.01, "lstm_attention", 3)
    with pytest.raises(ConfigError, match="train.nope"):
        load_config(path, ["train.nope=1"])
    with pytest.raises(ConfigError, match="expected key=value"):
        load_config(path, ["train.lr"])


def test_missing_or_invalid_config_files(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("data: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_parse(path):
    raw = yaml.safe_load(path.read_text())
    if "forecast" in raw:  # a forecasting config: the forecaster writes its data section
        assert raw.pop("forecast")["horizon"] >= 1
        raw["data"] = {"train": "windows.jsonl"}
    cfg = config_from_dict(raw)
    assert cfg.to_dict()["model"]["family"] in ("lstm_attention", "hybrid")


@pytest.mark.parametrize("levels", [[0.5, 0.1], [0.1, 0.1], [0.0, 0.5], [0.5, 1.0], []])
def test_quantile_levels_must_increase_strictly_inside_0_1(levels):
    with pytest.raises(ConfigError, match=r"model\.quantiles"):
        config_from_dict(_with("model", quantiles=levels))


def test_quantile_loss_and_quantile_model_go_together():
    with pytest.raises(ConfigError, match=r"train\.loss: 'quantile' needs model\.quantiles"):
        config_from_dict(_with("train", loss="quantile"))
    raw = _with("model", quantiles=[0.1, 0.5, 0.9])
    raw["train"] = {"loss": "mae"}
    with pytest.raises(ConfigError, match=r"train\.loss: 'mae' cannot fit model\.quantiles"):
        config_from_dict(raw)
    with pytest.raises(ConfigError, match=r"model\.quantiles: only for a vector target"):
        config_from_dict(_with("model", quantiles=[0.5], tgt_vocab=10))


# --------------------------------------------------------------------------- metrics, forecast


@pytest.mark.parametrize(
    ("section", "values", "named"),
    [
        ("train", {"select": "foo"}, "train.select: unknown metric 'foo'"),
        ("train", {"metrics": ["foo"]}, "train.metrics: unknown metric 'foo'"),
        ("train", {"metrics": ["exact_mach"]}, "did you mean 'exact_match'"),
        ("train", {"select": "mse"}, "train.select: 'mse' does not score tokens outputs"),
        ("train", {"metrics": ["mase"]}, "does not score tokens outputs"),
    ],
)
def test_metrics_and_select_are_checked_when_the_config_loads(section, values, named):
    with pytest.raises(ConfigError, match=named):
        config_from_dict(_with(section, **values))


def test_vector_configs_get_vector_metrics_and_refuse_token_ones():
    raw = {"data": {"synth": {"task": "sines"}}}
    assert config_from_dict(raw).train.metrics == ["mse", "mae", "mape", "smape"]
    raw["train"] = {"select": "exact_match"}
    with pytest.raises(ConfigError, match="'exact_match' does not score vectors"):
        config_from_dict(raw)
    raw["train"] = {"metrics": ["mase"]}  # needs each output's history: a forecast's
    with pytest.raises(ConfigError, match="only for a forecast config"):
        config_from_dict(raw)


def test_a_forecast_section_is_typed_like_every_other():
    forecast = {"forecast": {"horizon": 4, "period": 12}, "train": {"select": "mase"}}
    cfg = config_from_dict(forecast)
    assert cfg.forecast.lookback == 12 and cfg.train.select == "mase"
    assert cfg.target_kind == "vectors"
    with pytest.raises(ConfigError, match="unknown config key 'forecast.perod'.*'period'"):
        config_from_dict({"forecast": {"horizon": 4, "perod": 12}})
    with pytest.raises(ConfigError, match="forecast.scale"):
        config_from_dict({"forecast": {"horizon": 4, "scale": "windwo"}})
    with pytest.raises(ConfigError, match="data.train: a forecast config's data are the windows"):
        config_from_dict({"forecast": {"horizon": 4}, "data": {"train": "x.jsonl"}})
