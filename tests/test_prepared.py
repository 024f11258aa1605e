"""Prepared corpora: tokenised once into memory-mapped arrays, then trained on batch by batch
with the same items, codec and steps as the text file gives."""

from __future__ import annotations

import pytest
import torch
import yaml
from conftest import tiny_train_dict
from safetensors.torch import load_file

from hybridseq import api
from hybridseq.cli import main
from hybridseq.corpus import fit_codec
from hybridseq.data import DataError, read_tsv
from hybridseq.prepared import MappedItems, load_prepared


def _corpus(tmp_path):
    api.synth("reverse", 300, out=tmp_path / "train.tsv", seed=1, min_len=2, max_len=6, vocab=6)
    api.synth("reverse", 30, out=tmp_path / "valid.tsv", seed=2, min_len=2, max_len=6, vocab=6)
    raw = tiny_train_dict(steps=6)
    raw["data"] = {"train": str(tmp_path / "train.tsv"), "valid": str(tmp_path / "valid.tsv")}
    raw["model"]["dropout"] = 0.0
    return raw


def test_prepared_items_and_codec_equal_the_text_files(tmp_path):
    raw = _corpus(tmp_path)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    main(["prepare", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "bin")])
    codec, items = load_prepared(tmp_path / "bin")
    pairs = read_tsv(tmp_path / "train.tsv")
    fitted = fit_codec(api.as_config(raw).data, pairs)
    assert codec.to_dict() == fitted.to_dict()
    encoded = fitted.encode_pairs(pairs)
    assert len(items) == len(encoded)
    for (s1, t1), (s2, t2) in zip(items, encoded, strict=True):
        assert torch.equal(s1, s2) and torch.equal(t1, t2)
    short = items.within(3, None)
    assert len(short) == sum(len(s) <= 3 for s, _ in encoded) and isinstance(short, MappedItems)


def test_training_on_a_prepared_corpus_takes_the_steps_of_the_text_file(tmp_path):
    raw = _corpus(tmp_path)
    text = api.train(raw, tmp_path / "text", log=lambda m: None)
    from hybridseq.prepared import prepare

    prepare(api.as_config(raw).data, tmp_path / "bin", log=lambda m: None)
    raw["data"]["train"] = str(tmp_path / "bin")
    mapped = api.train(raw, tmp_path / "mapped", log=lambda m: None)
    assert mapped.step == text.step
    w1 = load_file(str(tmp_path / "text" / "last" / "model.safetensors"))
    w2 = load_file(str(tmp_path / "mapped" / "last" / "model.safetensors"))
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_prepare_names_the_line_of_a_bad_example(tmp_path):
    (tmp_path / "bad.tsv").write_text("a b\tb a\nno tab here\n")
    raw = tiny_train_dict()
    raw["data"] = {"train": str(tmp_path / "bad.tsv")}
    from hybridseq.prepared import prepare

    with pytest.raises(DataError, match="bad.tsv:2: expected 2 tab-separated columns"):
        prepare(api.as_config(raw).data, tmp_path / "bin")


def test_prepare_refuses_a_shared_vocabulary_it_would_not_build(tmp_path):
    raw = _corpus(tmp_path)
    raw["data"]["share_vocab"] = True
    from hybridseq.config import ConfigError
    from hybridseq.prepared import prepare

    with pytest.raises(ConfigError, match="data.share_vocab"):
        prepare(api.as_config(raw).data, tmp_path / "bin")
