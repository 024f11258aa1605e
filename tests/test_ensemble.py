"""Ensembles decode through the same seam: a model ensembled with itself decodes as the model,
greedy output is the argmax of the members' mean teacher-forced probabilities, and a vector
ensemble's rollout is the members' mean forward fed its own predictions."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model_config

from hybridseq.decode import beam_search, greedy, max_lengths, rollout
from hybridseq.ensemble import Ensemble
from hybridseq.model import build_model
from hybridseq.vocab import BOS_ID, EOS_ID


def _tokens(family: str = "lstm_attention"):
    model = build_model(tiny_model_config(family, src_vocab=9, tgt_vocab=9)).eval()
    src = torch.randint(4, 9, (5, 6))
    mask = torch.ones(5, 6, dtype=torch.bool)
    mask[2, 4:] = False
    return model, src, mask, max_lengths(mask, 1.5, 3)


@pytest.mark.parametrize("beam", [1, 3])
def test_a_model_ensembled_with_itself_decodes_as_the_model(beam):
    model, src, mask, limits = _tokens()
    twice = Ensemble([model, model]).eval()
    if beam == 1:
        assert greedy(twice, src, mask, limits) == greedy(model, src, mask, limits)
    else:
        assert beam_search(twice, src, mask, limits, beam) == beam_search(
            model, src, mask, limits, beam
        )


@pytest.mark.parametrize("family", ["lstm_attention", "hybrid"])
def test_greedy_ensemble_output_is_the_argmax_of_the_mean_probabilities(family):
    a, src, mask, limits = _tokens(family)
    b = build_model(tiny_model_config(family, src_vocab=9, tgt_vocab=9)).eval()
    hyps = greedy(Ensemble([a, b]).eval(), src, mask, limits)
    for hyp, s, m, limit in zip(hyps, src, mask, limits, strict=True):
        s = s[m].unsqueeze(0)
        tgt_in = torch.tensor([[BOS_ID] + hyp])
        mean = (a(s, tgt_in).softmax(-1) + b(s, tgt_in).softmax(-1)) / 2  # (1, T, V)
        pred = mean.argmax(-1)[0].tolist()
        assert pred[: len(hyp)] == hyp
        if len(hyp) < int(limit) - 1:  # ended by choice, not by the limit
            assert pred[len(hyp)] == EOS_ID


def test_vector_ensemble_rollout_is_the_mean_forward_fed_its_own_output():
    cfg = tiny_model_config("hybrid", src_dim=3, tgt_dim=2)
    a, b = build_model(cfg).eval(), build_model(cfg).eval()
    src, mask = torch.randn(4, 6, 3), torch.ones(4, 6, dtype=torch.bool)
    pred = rollout(Ensemble([a, b]).eval(), src, mask, 5)  # (B, 5, 2)
    tgt_in = torch.cat([torch.zeros(4, 1, 2), pred[:, :-1]], dim=1)
    mean = (a(src, tgt_in, mask) + b(src, tgt_in, mask)) / 2
    torch.testing.assert_close(mean, pred, atol=1e-5, rtol=1e-5)


def test_members_of_different_kinds_are_refused():
    tokens = build_model(tiny_model_config("hybrid", src_vocab=9, tgt_vocab=9))
    other = build_model(tiny_model_config("hybrid", src_vocab=9, tgt_vocab=11))
    with pytest.raises(ValueError, match="member 1 and member 2 differ"):
        Ensemble([tokens, other])
    with pytest.raises(ValueError, match="at least 2"):
        Ensemble([tokens])
