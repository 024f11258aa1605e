"""Metric properties and hand-worked examples."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from hybridseq.metrics import (
    TABLE,
    bleu,
    chrf,
    compute,
    edit_distance,
    exact_match,
    mae,
    mse,
    per,
    token_accuracy,
    wer,
    word_wer,
)

tokens = st.lists(st.sampled_from("abc"), max_size=7)

# Three items, two with several references.
HYPS = [["a", "b", "c"], ["a", "x"], ["p", "q"]]
REFS = [
    [["a", "b", "c"], ["a", "b", "d"]],
    [["a", "b", "c"], ["a", "x", "y", "z"]],
    [["p", "r"]],
]
# Item 1 matches its first reference: distance 0, closest reference length 3.
# Item 2 matches neither: "a x" -> "a b c" is 1 substitution + 1 insertion = 2, and
#   "a x" -> "a x y z" is 2 insertions = 2; the tie goes to the first reference (length 3).
# Item 3: one substitution, distance 1, reference length 2.
# exact_match = 1/3; WER = 2/3 * 100 = 66.67; PER = (0 + 2 + 1) / (3 + 3 + 2) * 100 = 37.5.
# token_accuracy against first references: (3 + 1 + 1) / (3 + 3 + 2) = 0.625.


@settings(max_examples=100, deadline=None)
@given(a=tokens, b=tokens, c=tokens)
def test_edit_distance_is_a_metric(a, b, c):
    assert edit_distance(a, a) == 0
    assert edit_distance(a, b) == edit_distance(b, a)
    assert edit_distance(a, c) <= edit_distance(a, b) + edit_distance(b, c)
    assert abs(len(a) - len(b)) <= edit_distance(a, b) <= max(len(a), len(b))
    assert (edit_distance(a, b) == 0) == (a == b)


def test_edit_distance_known_value():
    assert edit_distance(list("kitten"), list("sitting")) == 3


def test_hand_worked_example():
    assert exact_match(HYPS, REFS) == pytest.approx(1 / 3)
    assert wer(HYPS, REFS) == pytest.approx(200 / 3)
    assert per(HYPS, REFS) == pytest.approx(37.5)
    assert token_accuracy(HYPS, REFS) == pytest.approx(0.625)


def test_exact_match_accepts_any_reference():
    refs = [[["x"], ["y"]], [["x"], ["y"]]]
    assert exact_match([["y"], ["x"]], refs) == 1.0
    assert exact_match([["y"], ["z"]], refs) == 0.5


def test_token_accuracy_counts_missing_positions_as_wrong():
    assert token_accuracy([["a"]], [[["a", "b", "c", "d"]]]) == pytest.approx(0.25)
    assert token_accuracy([["a", "b", "z", "z"]], [[["a", "b"]]]) == 1.0


def test_bleu_and_chrf_of_identical_text_is_100():
    hyps = ["the cat sat on the mat", "a quick brown fox jumps"]
    refs = [[hyps[0]], [hyps[1], "an unrelated second reference"]]  # uneven reference counts
    assert bleu(hyps, refs) == pytest.approx(100.0)
    assert chrf(hyps, refs) == pytest.approx(100.0)


def test_compute_dispatches_and_requires_text_for_bleu():
    result = compute(["wer", "per", "exact_match"], HYPS, REFS)
    assert result == pytest.approx({"wer": 200 / 3, "per": 37.5, "exact_match": 1 / 3})
    with pytest.raises(ValueError, match="detok_hyps"):
        compute(["bleu"], HYPS, REFS)
    texts = [" ".join(h) for h in HYPS]
    refs = [[" ".join(r) for r in alts] for alts in REFS]
    token_metrics = [n for n, m in TABLE.items() if m.tokens is not None]
    assert set(compute(token_metrics, HYPS, REFS, detok_hyps=texts, detok_refs=refs)) == set(
        token_metrics
    )


def test_ser_is_the_share_of_wrong_sequences_and_wer_its_g2p_name():
    result = compute(["ser", "wer"], HYPS, REFS)
    assert result == pytest.approx({"ser": 200 / 3, "wer": 200 / 3})
    assert TABLE["wer"].tokens is TABLE["ser"].tokens and "G2P" in TABLE["wer"].about


def test_word_wer_by_hand_against_the_closest_reference():
    pytest.importorskip("jiwer")
    hyps = ["the cat sat", "a b"]
    refs = [
        ["the dog sat down", "the cat sat on"],  # 2 edits / 4 words, then 1 / 4: the second
        ["a b"],  # 0 edits / 2 words
    ]
    assert word_wer(hyps, refs) == pytest.approx(100 * (1 + 0) / (4 + 2))
    tied = [["x y", "x y z w"]]  # "x" -> "x y": 1 deletion; -> "x y z w": 3; the first wins
    assert word_wer(["x"], tied) == pytest.approx(50.0)
    assert word_wer(["a  b\t"], [["a b"]]) == 0.0  # whitespace is not a word
    assert word_wer(["p q r s"], [["p"]]) == pytest.approx(300.0)  # insertions count
    texts = [" ".join(h) for h in HYPS]
    ref_texts = [[" ".join(r) for r in alts] for alts in REFS]
    got = compute(["word_wer"], HYPS, REFS, detok_hyps=texts, detok_refs=ref_texts)
    assert got["word_wer"] == pytest.approx(37.5)  # one character per word: the PER example


def test_word_wer_without_jiwer_names_the_extra(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_jiwer(name, *args, **kwargs):
        if name == "jiwer":
            raise ImportError("No module named 'jiwer'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_jiwer)
    with pytest.raises(ValueError, match=r"word_wer.*jiwer.*hybridseq\[text\]"):
        word_wer(["a"], [["a"]])


def test_unknown_metric_names_closest():
    with pytest.raises(ValueError, match=r"'exact_mach'.*did you mean 'exact_match'"):
        compute(["exact_mach"], HYPS, REFS)


def test_empty_and_mismatched_input():
    with pytest.raises(ValueError, match="empty"):
        compute(["wer"], [], [])
    with pytest.raises(ValueError, match="2 hypotheses but 1"):
        wer([["a"], ["b"]], [[["a"]]])
    with pytest.raises(ValueError, match="item 0 has no reference"):
        per([["a"]], [[]])


def test_mse_mae_over_arrays_and_tensors():
    hyps = [np.zeros((2, 1)), torch.ones(3)]
    refs = [np.array([[1.0], [3.0]]), torch.zeros(3)]
    # squared errors 1, 9, 1, 1, 1 over 5 elements; absolute errors 1, 3, 1, 1, 1.
    assert mse(hyps, refs) == pytest.approx(13 / 5)
    assert mae(hyps, refs) == pytest.approx(7 / 5)
    with pytest.raises(ValueError, match="shape"):
        mse([np.zeros(2)], [np.zeros(3)])


def test_vector_percentage_errors_by_hand():
    from hybridseq import metrics as M

    hyp, ref = [np.array([[1.5], [0.5]])], [np.array([[1.0], [1.0]])]
    assert M.mape(hyp, ref) == pytest.approx(50.0)
    assert M.smape(hyp, ref) == pytest.approx((200 * 0.5 / 2.5 + 200 * 0.5 / 1.5) / 2)
    assert M.mape([np.array([1.0, 5.0])], [np.array([2.0, 0.0])]) == pytest.approx(50.0)
    with pytest.raises(ValueError, match="shape"):
        M.mape([np.ones(2)], [np.ones(3)])
