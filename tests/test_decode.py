"""Decoders: scripted beams give known hypotheses, beam 1 equals greedy, and greedy / rollout
outputs are fixed points of the teacher-forced forward."""

from __future__ import annotations

import math
from dataclasses import dataclass

import pytest
import torch
from conftest import tiny_model_config

from hybridseq.decode import beam_search, greedy, max_lengths, rollout
from hybridseq.model import build_model
from hybridseq.vocab import BOS_ID, EOS_ID

A, B = 4, 5
# next-token probabilities after each prefix (BOS excluded); anything else: EOS for sure
SCRIPT = {
    (): {A: 0.5, B: 0.4, EOS_ID: 0.1},
    (A,): {EOS_ID: 0.4, A: 0.35, B: 0.25},
    (B,): {EOS_ID: 0.9, A: 0.05, B: 0.05},
}


@dataclass
class Prefixes:
    """Decoder 'state' of the scripted model: the tokens emitted so far, (B, t)."""

    h: torch.Tensor

    def select(self, index):
        return Prefixes(self.h.index_select(0, index))


@dataclass
class NoEncoding:
    rows: int

    def select(self, index):
        return NoEncoding(len(index))


class ScriptedModel:
    token_target = True

    def encode(self, src, mask):
        return NoEncoding(src.shape[0])

    def init_state(self, enc):
        return Prefixes(torch.empty(enc.rows, 0, dtype=torch.long))

    def start_inputs(self, b, device):
        return torch.full((b,), BOS_ID, dtype=torch.long)

    def decode_step(self, prev, state, enc):
        h = state.h if prev[0] == BOS_ID else torch.cat([state.h, prev.unsqueeze(1)], 1)
        logits = torch.full((len(prev), 6), -1e9)
        for row, prefix in enumerate(h.tolist()):
            for tok, p in SCRIPT.get(tuple(prefix), {EOS_ID: 1.0}).items():
                logits[row, tok] = math.log(p)
        return logits, Prefixes(h)


def _run(beam, alpha=0.0):
    src = torch.zeros(2, 3, dtype=torch.long)
    mask = torch.ones(2, 3, dtype=torch.bool)
    limits = torch.tensor([10, 10])
    if beam == 0:
        return greedy(ScriptedModel(), src, mask, limits)
    return beam_search(ScriptedModel(), src, mask, limits, beam, alpha)


def test_scripted_beams_give_known_hypotheses():
    # greedy: A (0.5) then EOS (0.4) -> p = 0.20
    assert _run(0) == [[A], [A]]
    # beam 2 keeps B (0.4), whose EOS (0.9) gives p = 0.36 > 0.20
    assert _run(2) == [[B], [B]]
    # beam 3 also keeps A A (0.175, three tokens with EOS); a strong length penalty
    # (alpha 5: lp(3)/lp(2) = (8/7)^5 = 1.95 > log .175 / log .36 = 1.71) prefers it
    assert _run(3, alpha=5.0) == [[A, A], [A, A]]
    assert _run(3, alpha=0.0) == [[B], [B]]


def test_beam_one_equals_greedy_on_a_real_model():
    cfg = tiny_model_config("lstm_attention", src_vocab=9, tgt_vocab=9, dropout=0.0)
    model = build_model(cfg).eval()
    src = torch.randint(4, 9, (6, 7))
    mask = torch.ones(6, 7, dtype=torch.bool)
    mask[3, 3:] = False
    limits = max_lengths(mask, 1.5, 3)
    assert beam_search(model, src, mask, limits, beam=1) == greedy(model, src, mask, limits)


@pytest.mark.parametrize("family", ["lstm_attention", "hybrid"])
def test_greedy_output_is_the_argmax_of_the_teacher_forced_forward(family):
    model = build_model(tiny_model_config(family, src_vocab=9, tgt_vocab=9)).eval()
    src = torch.randint(4, 9, (4, 6))
    mask = torch.ones(4, 6, dtype=torch.bool)
    limits = torch.full((4,), 8)
    for hyp, s in zip(greedy(model, src, mask, limits), src, strict=True):
        tgt_in = torch.tensor([[BOS_ID] + hyp])
        pred = model(s.unsqueeze(0), tgt_in).argmax(-1)[0].tolist()
        assert pred[: len(hyp)] == hyp
        if len(hyp) < 7:  # ended by choice, not by the limit (8 with EOS)
            assert pred[len(hyp)] == EOS_ID


def test_beam_outputs_respect_the_length_limit():
    model = build_model(tiny_model_config("lstm_attention", src_vocab=9, tgt_vocab=9)).eval()
    src = torch.randint(4, 9, (3, 4))
    mask = torch.ones(3, 4, dtype=torch.bool)
    limits = torch.tensor([1, 2, 3])
    for hyp, limit in zip(beam_search(model, src, mask, limits, 3), limits, strict=True):
        assert len(hyp) <= int(limit) - 1  # EOS takes the last position


@pytest.mark.parametrize("family", ["lstm_attention", "hybrid"])
@pytest.mark.parametrize("quantiles", [None, [0.1, 0.5, 0.9]])
@pytest.mark.parametrize("cov_dim", [None, 2])
def test_rollout_is_the_forward_fed_its_own_predictions(family, quantiles, cov_dim):
    cfg = tiny_model_config(family, src_dim=3, tgt_dim=2, quantiles=quantiles, tgt_cov_dim=cov_dim)
    model = build_model(cfg).eval()
    src = torch.randn(4, 6, 3)
    mask = torch.ones(4, 6, dtype=torch.bool)
    cov = torch.randn(4, 5, cov_dim) if cov_dim else None  # (B, steps, C)
    pred = rollout(model, src, mask, 5, cov)  # (B, 5, 2), or (B, 5, 2, 3) with quantiles
    assert pred.shape == (4, 5, 2) + ((3,) if quantiles else ())
    fed = model.point(pred)[:, :-1]  # the point forecasts went back in
    tgt_in = torch.cat([torch.zeros(4, 1, 2), fed], dim=1)
    torch.testing.assert_close(model(src, tgt_in, mask, tgt_cov=cov), pred, atol=1e-5, rtol=1e-5)


def test_rollout_needs_covariates_for_every_step():
    model = build_model(tiny_model_config("hybrid", src_dim=3, tgt_dim=2, tgt_cov_dim=2)).eval()
    src, mask = torch.randn(4, 6, 3), torch.ones(4, 6, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"expected shape \(4, 5, 2\), got shape \(4, 3, 2\)"):
        rollout(model, src, mask, 5, torch.randn(4, 3, 2))


def test_greedy_step_on_fixed_buffers_equals_greedy():
    """The step that a CUDA graph records (state copied into fixed tensors, the step counter
    on the device) gives greedy's output, here run eagerly on the CPU."""
    from hybridseq.decode import _GreedyLoop, _tree

    model = build_model(tiny_model_config("lstm_attention", src_vocab=9, tgt_vocab=9)).eval()
    src = torch.randint(4, 9, (5, 6))
    mask = torch.ones(5, 6, dtype=torch.bool)
    mask[2, 2:] = False
    limits = max_lengths(mask, 1.0, 2)
    with torch.no_grad():
        enc = model.encode(src, mask)
        loop = _GreedyLoop(model, enc, model.init_state(enc), limits)
        loop.state, loop.in_place = _tree(torch.clone, loop.state), True
        for _ in range(loop.steps):
            loop.step()
    assert [r[: r.index(EOS_ID)] for r in loop.ids.tolist()] == greedy(model, src, mask, limits)
