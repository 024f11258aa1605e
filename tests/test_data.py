"""Tests for hybridseq.vocab, hybridseq.tokenize and hybridseq.data."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridseq.codec import Codec, Side
from hybridseq.data import (
    DataError,
    batch_indices,
    collate,
    pad_fraction,
    read_pairs,
    read_parallel,
    read_tsv,
    read_vectors_jsonl,
)
from hybridseq.tokenize import Tokenizer
from hybridseq.vocab import BOS_ID, EOS_ID, PAD_ID, UNK, UNK_ID, Vocab

SENTENCES = [
    "the cat sat on the mat",
    "a dog ran after the cat",
    "birds sing in the morning",
    "the sun rises in the east",
    "she reads a book every night",
    "we walked along the river",
    "he plays the piano well",
    "rain fell on the quiet town",
] * 4


def write(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def at(path, lineno: int) -> str:
    """Regex for an error message that starts with ``path:lineno:``."""
    return "^" + re.escape(f"{path}:{lineno}: ")


def jsonl(tmp_path, records: list[dict]):
    return write(tmp_path, "vec.jsonl", "".join(json.dumps(r) + "\n" for r in records))


# --------------------------------------------------------------------------- vocab


def test_vocab_round_trip_and_unknown():
    vocab = Vocab.build([["b", "a", "b"], ["c", "b", "a"]])
    assert vocab.tokens[4:] == ["b", "a", "c"]  # by frequency, ties alphabetical
    ids = vocab.encode(["a", "b", "zzz"])
    assert ids[2] == UNK_ID
    assert vocab.decode(ids) == ["a", "b", UNK]
    assert vocab.decode([BOS_ID, *vocab.encode(["c", "a"]), EOS_ID, 5, PAD_ID]) == ["c", "a"]


def test_vocab_min_freq_and_max_size():
    seqs = [["x"] * 3 + ["y"] * 2 + ["z"]]
    assert Vocab.build(seqs, min_freq=2).tokens[4:] == ["x", "y"]
    assert Vocab.build(seqs, max_size=5).tokens[4:] == ["x"]
    assert len(Vocab.build(seqs, max_size=5)) == 5


def test_vocab_to_dict_is_json_and_rejects_bad_lists():
    vocab = Vocab.build([["hello", "world"]])
    assert Vocab.from_dict(json.loads(json.dumps(vocab.to_dict()))) == vocab
    with pytest.raises(ValueError, match="special"):
        Vocab(["a", "b"])
    with pytest.raises(ValueError, match="duplicate"):
        Vocab(vocab.tokens + ["hello"])


# --------------------------------------------------------------------------- tokenizers


@given(st.text(alphabet=st.characters(blacklist_characters="▁")))
def test_char_tokenizer_round_trip(text):
    tok = Tokenizer("char")
    assert tok.detokenize(tok.tokenize(text)) == text
    assert " " not in tok.tokenize(text)


@given(st.text())
def test_whitespace_tokenizer_round_trip(text):
    tok = Tokenizer.train("whitespace", [])
    tokens = tok.tokenize(text)
    assert tok.detokenize(tokens) == " ".join(text.split())
    assert tok.tokenize(tok.detokenize(tokens)) == tokens


def test_subword_tokenizer_round_trip_and_serialises():
    tok = Tokenizer.train("subword", SENTENCES, vocab_size=120)
    restored = Tokenizer.from_dict(json.loads(json.dumps(tok.to_dict())))
    for text in SENTENCES[:8] + ["the dog sat  by the river"]:
        tokens = tok.tokenize(text)
        assert tok.detokenize(tokens) == text
        assert restored.tokenize(text) == tokens


def test_tokenizer_unknown_kind_names_valid_kinds():
    with pytest.raises(ValueError, match="char, whitespace, subword"):
        Tokenizer("bytes")


# --------------------------------------------------------------------------- text readers


def test_read_tsv_reads_pairs_and_skips_blank_lines(tmp_path):
    path = write(tmp_path, "d.tsv", "hello\tbonjour\n\ncat\tchat\r\n")
    assert read_tsv(path) == [("hello", "bonjour"), ("cat", "chat")]


def test_read_tsv_wrong_column_count_names_file_and_line(tmp_path):
    path = write(tmp_path, "d.tsv", "a\tb\n\nc\td\te\n")
    with pytest.raises(DataError, match=at(path, 3) + r"expected 2 tab-separated columns.*got 3"):
        read_tsv(path)


@pytest.mark.parametrize("line, side", [("  \tb", "source"), ("a\t ", "target")])
def test_read_tsv_empty_side(tmp_path, line, side):
    path = write(tmp_path, "d.tsv", f"x\ty\n{line}\n")
    with pytest.raises(DataError, match=at(path, 2) + rf"empty {side}$"):
        read_tsv(path)


def test_missing_file_names_path(tmp_path):
    with pytest.raises(DataError, match="nope.tsv"):
        read_pairs(tmp_path / "nope.tsv")


def test_read_parallel(tmp_path):
    src = write(tmp_path, "a.src", "one\ntwo\n")
    tgt = write(tmp_path, "a.tgt", "un\ndeux\n")
    assert read_pairs([src, tgt]) == [("one", "un"), ("two", "deux")]
    short = write(tmp_path, "b.tgt", "un\n")
    with pytest.raises(DataError, match=re.escape(f"{src} has 2 lines but {short} has 1")):
        read_parallel(src, short)
    hole = write(tmp_path, "c.tgt", "un\n \n")
    with pytest.raises(DataError, match=at(hole, 2) + "empty target"):
        read_parallel(src, hole)


def test_read_pairs_unknown_extension(tmp_path):
    with pytest.raises(DataError, match=r"\.csv.*\.tsv.*\.jsonl"):
        read_pairs(tmp_path / "d.csv")


# --------------------------------------------------------------------------- vector reader


def test_read_vectors_jsonl_shapes_and_flat_lists(tmp_path):
    path = jsonl(tmp_path, [{"source": [[1, 2], [3, 4], [5, 6]], "target": [0.5, 1.5]}])
    [(src, tgt)] = read_vectors_jsonl(path)
    assert src.shape == (3, 2) and tgt.shape == (2, 1)
    assert src.dtype == np.float32 and tgt.dtype == np.float32


def test_read_vectors_jsonl_wrong_width(tmp_path):
    good = {"source": [[1, 2, 3, 4]], "target": [[1.0]]}
    path = jsonl(tmp_path, [good, {"source": [[1, 2, 3]], "target": [[1.0]]}])
    with pytest.raises(DataError, match=at(path, 2) + "source vectors have width 3, expected 4"):
        read_vectors_jsonl(path)
    path = jsonl(tmp_path, [good])
    with pytest.raises(DataError, match=at(path, 1) + "target vectors have width 1, expected 2"):
        read_vectors_jsonl(path, tgt_dim=2)


def test_read_vectors_jsonl_refuses_nan_with_position(tmp_path):
    path = write(
        tmp_path,
        "v.jsonl",
        '{"source": [[1]], "target": [[1]]}\n{"source": [[1]], "target": [[1], [2], [NaN]]}\n',
    )
    with pytest.raises(DataError, match=at(path, 2) + "target row 2, column 0 is nan"):
        read_vectors_jsonl(path)


def test_read_vectors_jsonl_ragged_rows_and_bad_json(tmp_path):
    rows = [[1, 2, 3, 4]] * 3 + [[1, 2]]
    path = jsonl(tmp_path, [{"source": rows, "target": [[1]]}])
    with pytest.raises(DataError, match=at(path, 1) + "source row 3 has width 2, expected 4"):
        read_vectors_jsonl(path)
    path = write(tmp_path, "bad.jsonl", '{"source": [[1]]}\n')
    with pytest.raises(DataError, match=at(path, 1) + "missing key 'target'"):
        read_vectors_jsonl(path)
    path = write(tmp_path, "bad2.jsonl", '{"source": [[1]], \n')
    with pytest.raises(DataError, match=at(path, 1) + "invalid JSON"):
        read_vectors_jsonl(path)


def test_read_vectors_jsonl_covariates(tmp_path):
    line = {"source": [[1], [2]], "target": [[3], [4], [5]], "covariates": [[0, 1], [1, 0], [2, 2]]}
    [(src, tgt, cov)] = read_vectors_jsonl(jsonl(tmp_path, [line]))
    assert cov.shape == (3, 2) and cov.dtype == np.float32 and tgt.shape == (3, 1)
    short = {**line, "covariates": [[0, 1], [1, 0]]}
    path = jsonl(tmp_path, [line, short])
    with pytest.raises(DataError, match=at(path, 2) + "covariates have 2 rows, the target 3"):
        read_vectors_jsonl(path)
    path = jsonl(tmp_path, [line, {**line, "covariates": [[0], [1], [2]]}])
    with pytest.raises(DataError, match=at(path, 2) + "covariates vectors have width 1, expected"):
        read_vectors_jsonl(path)
    path = jsonl(tmp_path, [line, {"source": [[1]], "target": [[1]]}])
    with pytest.raises(DataError, match=at(path, 2) + 'line 1 has "covariates"; all lines or none'):
        read_vectors_jsonl(path)
    path = jsonl(tmp_path, [{**line, "covariates": [[0, 1], [1, 0], [2, float("inf")]]}])
    with pytest.raises(DataError, match=at(path, 1) + "covariates row 2, column 1 is inf"):
        read_vectors_jsonl(path)


def test_codec_checks_covariates_against_the_model():
    codec = Codec(Side(dim=1), Side(dim=1), Side(dim=2))
    src, tgt = np.zeros((2, 1)), np.zeros((3, 1))
    (item,) = codec.encode_pairs([(src, tgt, np.zeros((3, 2)))])
    assert [tuple(x.shape) for x in item] == [(2, 1), (3, 1), (3, 2)]
    with pytest.raises(DataError, match="example 1: no covariates; the model needs"):
        codec.encode_pairs([(src, tgt)])
    with pytest.raises(DataError, match=r"example 1 covariates: expected vectors of shape"):
        codec.encode_pairs([(src, tgt, np.zeros((3, 1)))])
    with pytest.raises(DataError, match="has covariates, but the model takes none"):
        Codec(Side(dim=1), Side(dim=1)).encode_pairs([(src, tgt, np.zeros((3, 2)))])
    assert Codec.from_dict(codec.to_dict()).covariates.dim == 2


# --------------------------------------------------------------------------- collate


def token_items():
    src_tok = tgt_tok = Tokenizer("whitespace")
    pairs = [("a b c", "x y"), ("a", "y x z w")]
    src_vocab = Vocab.build(src_tok.tokenize(s) for s, _ in pairs)
    tgt_vocab = Vocab.build(tgt_tok.tokenize(t) for _, t in pairs)
    codec = Codec(Side(src_tok, src_vocab), Side(tgt_tok, tgt_vocab))
    return codec.encode_pairs(pairs)


def test_collate_tokens_shapes_masks_and_shift():
    items = token_items()
    batch = collate(items, [7, 3])
    assert batch.src.shape == (2, 3) and batch.tgt_in.shape == (2, 5)
    assert batch.tgt_out.shape == (2, 5) and batch.index == [7, 3]
    assert batch.src_mask.tolist() == [[True] * 3, [True, False, False]]
    assert batch.tgt_mask.tolist() == [[True] * 3 + [False] * 2, [True] * 5]
    assert (batch.src[~batch.src_mask] == PAD_ID).all()
    assert (batch.tgt_in[:, 0] == BOS_ID).all()
    for b, (_, tgt) in enumerate(items):
        n = len(tgt)
        assert batch.tgt_in[b, 1 : n + 1].tolist() == tgt.tolist()
        assert batch.tgt_out[b, :n].tolist() == tgt.tolist()
        assert batch.tgt_out[b, n] == EOS_ID
        # decoder input at step t+1 is the target at step t
        assert batch.tgt_in[b, 1 : n + 1].tolist() == batch.tgt_out[b, :n].tolist()
    assert batch.n_tokens == 3 + 5
    assert batch.to("cpu").src.equal(batch.src)


def test_collate_vectors_start_with_zero_and_pad_with_zero():
    rng = np.random.default_rng(0)
    shapes = [((4, 3), (2, 2)), ((1, 3), (3, 2))]
    pairs = [(rng.normal(size=s), rng.normal(size=t)) for s, t in shapes]
    items = Codec(Side(dim=3), Side(dim=2)).encode_pairs(pairs)
    batch = collate(items, [0, 1])
    assert batch.src.shape == (2, 4, 3) and batch.tgt_in.shape == (2, 3, 2)
    assert batch.src.dtype == torch.float32
    assert batch.src_mask.tolist() == [[True] * 4, [True, False, False, False]]
    assert batch.tgt_mask.tolist() == [[True, True, False], [True, True, True]]
    assert (batch.tgt_in[:, 0] == 0).all()
    assert (batch.src[~batch.src_mask] == 0).all() and (batch.tgt_out[~batch.tgt_mask] == 0).all()
    for b, (_, tgt) in enumerate(items):
        assert torch.equal(batch.tgt_out[b, : len(tgt)], tgt)
        assert torch.equal(batch.tgt_in[b, 1 : len(tgt)], tgt[:-1])
    assert batch.n_tokens == 5


def test_collate_pads_covariates_like_the_target():
    items = [
        (torch.zeros(2, 1), torch.zeros(1, 1), torch.ones(1, 2)),
        (torch.zeros(2, 1), torch.zeros(3, 1), torch.full((3, 2), 2.0)),
    ]
    batch = collate(items, [0, 1])
    assert batch.tgt_cov.shape == (2, 3, 2)  # (B, T, C)
    assert batch.tgt_cov[0].tolist() == [[1.0, 1.0], [0.0, 0.0], [0.0, 0.0]]
    assert (batch.tgt_cov[1] == 2.0).all() and batch.to("cpu").tgt_cov.equal(batch.tgt_cov)
    assert collate(items[:1], [0]).tgt_cov.shape == (1, 1, 2)
    assert collate([(torch.zeros(2, 1), torch.zeros(1, 1))], [0]).tgt_cov is None


def test_collate_rejects_mixed_widths():
    items = [(torch.zeros(2, 3), torch.zeros(2, 1)), (torch.zeros(2, 4), torch.zeros(2, 1))]
    with pytest.raises(ValueError, match="source items mix"):
        collate(items, [0, 1])


# --------------------------------------------------------------------------- batching

lengths_strategy = st.lists(st.integers(min_value=0, max_value=50), max_size=300)


@settings(max_examples=60, deadline=None)
@given(
    lengths_strategy,
    st.integers(1, 20),
    st.booleans(),
    st.booleans(),
    st.integers(0, 10),
    st.one_of(st.none(), st.integers(1, 200)),
)
def test_batch_indices_is_a_partition(lengths, batch_size, bucket, shuffle, seed, max_tokens):
    batches = batch_indices(
        lengths, batch_size, bucket=bucket, shuffle=shuffle, seed=seed, max_tokens=max_tokens
    )
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert 1 <= len(b) <= batch_size
        if max_tokens is not None and len(b) > 1:
            assert len(b) * max(lengths[i] for i in b) <= max_tokens


def test_bucketing_reduces_padding():
    rng = random.Random(1)
    lengths = [rng.randint(1, 100) for _ in range(2000)]
    plain = batch_indices(lengths, 32, bucket=False, shuffle=True, seed=0)
    bucketed = batch_indices(lengths, 32, bucket=True, shuffle=True, seed=0)
    assert pad_fraction(bucketed, lengths) < 0.1 < 0.3 < pad_fraction(plain, lengths)


def test_batch_indices_deterministic_given_seed():
    rng = random.Random(2)
    lengths = [rng.randint(1, 30) for _ in range(500)]
    first = batch_indices(lengths, 16, shuffle=True, seed=3)
    assert first == batch_indices(lengths, 16, shuffle=True, seed=3)
    assert first != batch_indices(lengths, 16, shuffle=True, seed=4)
