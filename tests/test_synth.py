"""Properties of the synthetic data generators."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridseq.synthetic import (
    TOKEN_TASKS,
    VECTOR_TASKS,
    make_token_pairs,
    make_vector_pairs,
    symbol,
    write_jsonl,
    write_tsv,
)

SYMBOL_INDEX = {symbol(i): i for i in range(40)}


@pytest.mark.parametrize("task", TOKEN_TASKS)
def test_token_pairs_are_deterministic(task):
    assert make_token_pairs(task, 20, seed=3) == make_token_pairs(task, 20, seed=3)
    assert make_token_pairs(task, 20, seed=3) != make_token_pairs(task, 20, seed=4)


@pytest.mark.parametrize("task", VECTOR_TASKS)
def test_vector_pairs_are_deterministic(task):
    a, b, c = (make_vector_pairs(task, 5, seed=s) for s in (1, 1, 2))
    assert all(
        np.array_equal(x[0], y[0]) and np.array_equal(x[1], y[1]) for x, y in zip(a, b, strict=True)
    )
    assert not np.array_equal(a[0][0], c[0][0])


@settings(max_examples=25, deadline=None)
@given(
    task=st.sampled_from(("copy", "reverse", "sort")),
    min_len=st.integers(1, 6),
    extra=st.integers(0, 6),
    vocab=st.integers(2, 40),
    seed=st.integers(0, 1000),
)
def test_symbol_tasks_define_their_target(task, min_len, extra, vocab, seed):
    max_len = min_len + extra
    for source, target in make_token_pairs(
        task, 10, min_len=min_len, max_len=max_len, vocab=vocab, seed=seed
    ):
        src, tgt = source.split(), target.split()
        assert min_len <= len(src) <= max_len
        assert all(SYMBOL_INDEX[s] < vocab for s in src)
        if task == "copy":
            assert tgt == src
        elif task == "reverse":
            assert tgt == src[::-1]
        else:
            assert sorted(tgt) == sorted(src)  # a permutation
            indices = [SYMBOL_INDEX[s] for s in tgt]
            assert indices == sorted(indices)  # sorted by index, not string order


@settings(max_examples=25, deadline=None)
@given(min_len=st.integers(1, 5), extra=st.integers(0, 5), seed=st.integers(0, 1000))
def test_addition_is_correct(min_len, extra, seed):
    max_len = min_len + extra
    for source, target in make_token_pairs("add", 10, min_len=min_len, max_len=max_len, seed=seed):
        left, right = source.split(" + ")
        for operand in (left.split(), right.split()):
            assert min_len <= len(operand) <= max_len
            assert operand[0] != "0" or len(operand) == 1  # no leading zeros
        as_int = lambda s: int("".join(s.split()))  # noqa: E731
        assert as_int(left) + as_int(right) == as_int(target)
        assert target.split()[0] != "0" or target == "0"


def test_symbols_are_single_tokens():
    assert [symbol(i) for i in (0, 25, 26, 99)] == ["a", "z", "s26", "s99"]


@pytest.mark.parametrize("task", VECTOR_TASKS)
def test_vector_shapes_and_values(task):
    pairs = make_vector_pairs(task, 4, src_len=10, tgt_len=3, dim=2)
    assert len(pairs) == 4
    for source, target in pairs:
        assert source.shape == (10, 2) and target.shape == (3, 2)
        assert source.dtype == np.float32 and target.dtype == np.float32
        assert np.isfinite(source).all() and np.isfinite(target).all()


def test_ar_has_unit_scale():
    pairs = make_vector_pairs("ar", 200, src_len=50, tgt_len=10, noise=0.0, seed=0)
    values = np.concatenate([np.concatenate(p) for p in pairs])
    assert 0.7 < values.std() < 1.3


def test_copy_rare_pairs_copy_and_hold_each_rare_symbol_once():
    pairs = make_token_pairs("copy_rare", 300, min_len=3, max_len=8, vocab=10, seed=4)
    words = [w for s, t in pairs for w in s.split()]
    rare = [w for w in words if w not in SYMBOL_INDEX]
    assert all(s == t for s, t in pairs)
    assert all(any(w not in SYMBOL_INDEX for w in s.split()) for s, _ in pairs)
    assert len(set(rare)) == len(rare) and 0.2 < len(rare) / len(words) < 0.35
    other = make_token_pairs("copy_rare", 300, min_len=3, max_len=8, vocab=10, seed=5)
    assert not set(rare) & {w for s, _ in other for w in s.split()}


def test_unknown_task_names_valid_ones():
    with pytest.raises(ValueError, match=r"'cpy'.*copy, copy_rare, reverse, sort, add"):
        make_token_pairs("cpy", 3)
    with pytest.raises(ValueError, match=r"'sine'.*sines, ar"):
        make_vector_pairs("sine", 3)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"n": 0}, "n"),
        ({"min_len": 0}, "min_len"),
        ({"min_len": 5, "max_len": 4}, "max_len"),
        ({"vocab": 1}, "vocab"),
    ],
)
def test_bad_token_arguments(kwargs, name):
    args = {"n": 3, **kwargs}
    with pytest.raises(ValueError, match=name):
        make_token_pairs("copy", **args)


@pytest.mark.parametrize("name, value", [("src_len", 0), ("tgt_len", 0), ("dim", 0), ("noise", -1)])
def test_bad_vector_arguments(name, value):
    with pytest.raises(ValueError, match=name):
        make_vector_pairs("sines", 3, **{name: value})


def test_writers_round_trip(tmp_path):
    tokens = make_token_pairs("reverse", 3)
    write_tsv(tokens, tmp_path / "data.tsv")
    lines = (tmp_path / "data.tsv").read_text().splitlines()
    assert [tuple(line.split("\t")) for line in lines] == tokens

    vectors = make_vector_pairs("sines", 2, src_len=4, tgt_len=2, dim=3)
    write_jsonl(vectors, tmp_path / "data.jsonl")
    records = [json.loads(line) for line in (tmp_path / "data.jsonl").read_text().splitlines()]
    for record, (source, target) in zip(records, vectors, strict=True):
        np.testing.assert_allclose(np.array(record["source"]), source)
        np.testing.assert_allclose(np.array(record["target"]), target)
