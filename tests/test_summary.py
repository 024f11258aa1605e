"""``summary``: the sizes a config's data give (not a 1,000-token guess), a trained run's own
model, and placeholders named where no data can decide."""

from __future__ import annotations

import pytest
from conftest import tiny_train_dict

from hybridseq import api
from hybridseq.cli import main


def test_a_config_is_sized_by_its_data_as_training_sizes_it(tmp_path, capsys):
    raw = tiny_train_dict(steps=2)
    config = api.summary(raw)
    assert config["placeholders"] == [] and config["sizes_from"] == "data.synth (reverse)"
    api.train(raw, tmp_path / "run", log=lambda _: None)
    trained = api.summary(tmp_path / "run")
    assert trained["parameters"] == config["parameters"]
    assert trained["source"] == config["source"] == "vocab 10"  # 6 symbols + pad, bos, eos, unk
    assert trained["sizes_from"].startswith("the checkpoint")
    main(["summary", str(tmp_path / "run")])
    assert f"{trained['parameters']:,}" in capsys.readouterr().out
    with pytest.raises(ValueError, match="--set is for configs"):
        api.summary(tmp_path / "run", ["model.dropout=0.2"])


def test_data_files_give_the_vocabularies(tmp_path):
    (tmp_path / "train.tsv").write_text("a b\tx\nb c\ty z\n")
    (tmp_path / "valid.tsv").write_text("a\tx\n")
    raw = tiny_train_dict()
    raw["data"] = {"train": str(tmp_path / "train.tsv"), "valid": str(tmp_path / "valid.tsv")}
    info = api.summary(raw)
    assert info["source"] == "vocab 7" and info["target"] == "vocab 7"  # 3 symbols + 4
    raw["data"] = {"train": str(tmp_path / "missing.tsv")}
    info = api.summary(raw)
    assert info["placeholders"] == ["src_vocab", "tgt_vocab"]
    assert "could not be read" in info["sizes_from"] and "missing.tsv" in info["sizes_from"]


def test_a_forecasting_config_names_its_placeholders():
    info = api.summary("forecast_hybrid", ["forecast.calendar=true", "forecast.period=12"])
    assert info["placeholders"] == ["src_dim", "tgt_dim"]
    assert info["source"] == "vectors of 3"  # the value, and the phase's sin and cos
