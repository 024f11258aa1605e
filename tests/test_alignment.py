"""Attention weights out of the decoders: every row sums to 1 over the real source positions
and is exactly zero on padding, beam search keeps the chosen hypothesis's rows, beam 1 equals
greedy weights and all, an ensemble gives its members' mean, and ``predict(attention=True)``
hands back one ``Alignment`` per output."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model_config, tiny_train_dict

from hybridseq import api
from hybridseq.decode import _beams, beam_search, greedy, max_lengths, search
from hybridseq.ensemble import Ensemble
from hybridseq.model import build_model
from hybridseq.predict import Alignment, Prediction


def _batch(family: str, attention: str = "additive"):
    cfg = tiny_model_config(family, src_vocab=9, tgt_vocab=9, attention=attention, dropout=0.0)
    model = build_model(cfg).eval()
    src = torch.randint(4, 9, (5, 7))
    mask = torch.ones(5, 7, dtype=torch.bool)
    mask[1, 4:] = False
    mask[3, 2:] = False
    return model, src, mask, max_lengths(mask, 1.5, 3)


def _check_rows(found, mask) -> None:
    for hyps, m in zip(found, mask, strict=True):
        for h in hyps:
            assert h.attention.shape == (len(h.ids), mask.shape[1])
            if not h.ids:
                continue
            torch.testing.assert_close(h.attention[:, m].sum(-1), torch.ones(len(h.ids)))
            assert (h.attention[:, ~m] == 0).all()


@pytest.mark.parametrize("family", ["lstm_attention", "hybrid"])
@pytest.mark.parametrize("attention", ["additive", "multihead"])
@pytest.mark.parametrize("beam", [1, 3])
def test_weights_sum_to_one_on_real_positions_and_zero_on_padding(family, attention, beam):
    model, src, mask, limits = _batch(family, attention)
    found = search(model, src, mask, limits, beam, n_best=beam, attention=True)
    assert all(1 <= len(hyps) <= beam for hyps in found)
    _check_rows(found, mask)


@pytest.mark.parametrize("family", ["lstm_attention", "hybrid"])
def test_beam_one_equals_greedy_with_scores_and_weights(family):
    model, src, mask, limits = _batch(family)
    by_greedy = search(model, src, mask, limits, attention=True)
    by_beam = _beams(model, src, mask, limits, 1, 0.0, 1, True, cuda_graph=False)
    for (g,), (b,) in zip(by_greedy, by_beam, strict=True):
        assert g.ids == b.ids
        assert g.score == pytest.approx(b.score, abs=1e-5)
        torch.testing.assert_close(g.attention, b.attention)


def test_the_chosen_beam_keeps_its_own_rows():
    """The best hypothesis's weights are those of teacher-forcing it step by step."""
    model, src, mask, limits = _batch("lstm_attention")
    found = search(model, src, mask, limits, beam=4, attention=True)
    for (best,), s, m in zip(found, src, mask, strict=True):
        enc = model.encode(s[m].unsqueeze(0))
        state, prev = model.init_state(enc), model.start_inputs(1, s.device)
        for t, tok in enumerate(best.ids):
            _, state, w = model.decode_step(prev, state, enc, attention=True)
            torch.testing.assert_close(best.attention[t, : int(m.sum())], w[0])
            prev = torch.tensor([tok])


def test_scores_and_ids_match_the_plain_decoders_and_are_ranked():
    model, src, mask, limits = _batch("hybrid")
    assert [h[0].ids for h in search(model, src, mask, limits)] == greedy(model, src, mask, limits)
    found = search(model, src, mask, limits, beam=3, n_best=3)
    assert [h[0].ids for h in found] == beam_search(model, src, mask, limits, 3)
    for hyps in found:
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True) and all(h.attention is None for h in hyps)
    with pytest.raises(ValueError, match="n_best=4: must be between 1 and the beam size 3"):
        search(model, src, mask, limits, beam=3, n_best=4)


def test_ensemble_weights_are_the_members_mean():
    a, src, mask, limits = _batch("lstm_attention")
    b = build_model(tiny_model_config("lstm_attention", src_vocab=9, tgt_vocab=9)).eval()
    twice = Ensemble([a, a]).eval()
    alone, doubled = (search(m, src, mask, limits, attention=True) for m in (a, twice))
    for (x,), (y,) in zip(alone, doubled, strict=True):
        torch.testing.assert_close(x.attention, y.attention)
    pair = Ensemble([a, b]).eval()
    enc = pair.encode(src, mask)
    prev = pair.start_inputs(5, src.device)
    _, _, w = pair.decode_step(prev, pair.init_state(enc), enc, attention=True)
    each = [
        m.decode_step(prev, m.init_state(e), e, attention=True)[2]
        for m, e in zip((a, b), enc, strict=True)
    ]
    torch.testing.assert_close(w, (each[0] + each[1]) / 2)


def test_a_model_without_attention_refuses_to_give_weights():
    model, src, mask, limits = _batch("hybrid", attention="none")
    with pytest.raises(ValueError, match="no attention"):
        search(model, src, mask, limits, attention=True)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    torch.manual_seed(0)
    api.train(tiny_train_dict("reverse", "lstm_attention", steps=30), out, log=lambda m: None)
    return api.load(out)


@pytest.mark.parametrize("beam", [1, 3])
def test_predict_gives_an_alignment_per_output(trained, beam):
    sources = ["4 5 6", "7 5", "4 4 9 5"]  # 9 is not in the vocabulary: <unk>
    plain = trained.predict(sources, beam=beam)
    detailed = trained.predict(sources, beam=beam, n_best=beam, attention=True)
    for text, src, preds in zip(plain, sources, detailed, strict=True):
        assert isinstance(preds[0], Prediction) and preds[0].output == text
        for p in preds:
            al = p.alignment
            assert isinstance(al, Alignment) and al.source == src.split()
            assert al.weights.shape == (len(al.output), len(al.source))
            assert al.output == p.output.split() or not al.output
            torch.testing.assert_close(
                torch.from_numpy(al.weights).sum(-1), torch.ones(len(al.output))
            )
            assert set(al.to_dict()) == {"source", "output", "weights"}
