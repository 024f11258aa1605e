"""Learning curves: training writes metrics.jsonl (and TensorBoard events) with the training
steps and every validation; ``hybridseq plot`` draws them; a resumed run keeps one history."""

from __future__ import annotations

import json

import pytest
from conftest import tiny_train_dict

from hybridseq import api
from hybridseq.cli import main
from hybridseq.curves import read_curves


def test_training_writes_its_curves_and_plot_draws_them(tmp_path, capsys):
    raw = tiny_train_dict(steps=30)
    raw["train"].update(eval_every=10, log_every=5)
    api.train(raw, tmp_path / "run", log=lambda m: None)
    rows = read_curves(tmp_path / "run")
    train = [r for r in rows if r["kind"] == "train"]
    valid = [r for r in rows if r["kind"] == "valid"]
    assert [r["step"] for r in train] == [5, 10, 15, 20, 25, 30]
    assert [r["step"] for r in valid] == [10, 20, 30]
    assert set(train[0]) == {
        "kind",
        "step",
        "loss",
        "lr",
        "tokens_per_s",
        "grad_norm",
        "teacher_forcing",
    }
    assert all(r["loss"] > 0 and r["tokens_per_s"] > 0 and r["grad_norm"] > 0 for r in train)
    assert {"loss", "exact_match", "token_accuracy"} <= set(valid[0])
    pytest.importorskip("tensorboard")
    assert list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    pytest.importorskip("matplotlib")
    main(["plot", str(tmp_path / "run"), "--out", str(tmp_path / "c.png")])
    assert (tmp_path / "c.png").read_bytes()[:4] == b"\x89PNG"


def test_a_resumed_run_keeps_one_history(tmp_path):
    raw = tiny_train_dict(steps=20)
    raw["train"].update(eval_every=10, log_every=5)
    api.train(raw, tmp_path, log=lambda m: None)
    with (tmp_path / "metrics.jsonl").open("a") as f:  # written after `last`, then killed
        f.write(json.dumps({"kind": "train", "step": 25, "loss": 1.0}) + "\n" + '{"kind": "tr')
    raw["train"]["max_steps"] = 30
    api.train(raw, tmp_path, resume=True, log=lambda m: None)
    steps = [r["step"] for r in read_curves(tmp_path) if r["kind"] == "train"]
    assert steps == [5, 10, 15, 20, 25, 30]  # the lost step 25 replaced by the resumed one
