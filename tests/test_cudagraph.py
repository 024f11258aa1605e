"""Padding batches to fixed length multiples (what lets CUDA graphs replay) leaves the training
loss and every gradient unchanged; runs on the CPU. The graph replay itself is checked in
``test_gpu.py``."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model_config

from hybridseq.config import TrainConfig
from hybridseq.cudagraph import GraphedBackward, pad_to_multiple
from hybridseq.data import collate
from hybridseq.model import build_model
from hybridseq.training import batch_loss

# (source tokens, target tokens, model options, loss kind)
CASES = {
    "tokens, bidirectional, bridge": (
        True,
        True,
        {"bidirectional": True, "decoder_init": "bridge"},
        "ce",
    ),
    "tokens, final states": (True, True, {"decoder_init": "final", "enc_hidden": 12}, "ce"),
    "vectors with covariates": (False, False, {"tgt_cov_dim": 2}, "mse"),
    "quantiles": (False, False, {"quantiles": [0.1, 0.5, 0.9]}, "quantile"),
}


def _items(tokens_src: bool, tokens_tgt: bool, cov: bool, n: int = 5):
    g = torch.Generator().manual_seed(0)
    items = []
    for i in range(n):
        s, t = 3 + i, 2 + (i * 2) % 5
        src = (
            torch.randint(4, 11, (s,), generator=g)
            if tokens_src
            else torch.randn(s, 4, generator=g)
        )
        tgt = (
            torch.randint(4, 13, (t,), generator=g)
            if tokens_tgt
            else torch.randn(t, 3, generator=g)
        )
        items.append((src, tgt, torch.randn(t, 2, generator=g)) if cov else (src, tgt))
    return items


@pytest.mark.parametrize("family", ["lstm_attention", "hybrid"])
@pytest.mark.parametrize("case", list(CASES))
def test_padding_to_a_multiple_changes_no_loss_or_gradient(family, case):
    tokens_src, tokens_tgt, options, kind = CASES[case]
    if family == "hybrid" and options.get("decoder_init") == "final":
        pytest.skip("final states need an LSTM encoder")
    sizes = {"src_vocab": 11} if tokens_src else {"src_dim": 4}
    sizes.update({"tgt_vocab": 13} if tokens_tgt else {"tgt_dim": 3})
    model = build_model(tiny_model_config(family, dropout=0.0, **sizes, **options)).train()
    batch = collate(_items(tokens_src, tokens_tgt, "tgt_cov_dim" in options), range(5))
    tc = TrainConfig(label_smoothing=0.1)
    results = []
    for b in (batch, pad_to_multiple(batch, 8)):
        model.zero_grad()
        loss = batch_loss(model, b, tc, kind)
        loss.backward()
        results.append((loss.detach(), [p.grad.clone() for p in model.parameters()]))
    padded = pad_to_multiple(batch, 8)
    assert padded.src.shape[1] % 8 == 0 and padded.tgt_in.shape[1] % 8 == 0
    assert padded.src.shape[1] > batch.src.shape[1]  # it did pad
    (loss, grads), (loss_p, grads_p) = results
    torch.testing.assert_close(loss_p, loss)
    for g, g_p in zip(grads, grads_p, strict=True):
        torch.testing.assert_close(g_p, g, rtol=1e-4, atol=1e-6)


def test_graphed_backward_keeps_the_grad_tensors_and_gives_plain_gradients():
    """Its eager path (every shape's first occurrence; the only one on a CPU) zeroes the kept
    ``.grad`` tensors in place and leaves the same gradients as a plain backward."""
    model = build_model(
        tiny_model_config("lstm_attention", src_vocab=11, tgt_vocab=13, dropout=0.0)
    )
    params, tc = list(model.parameters()), TrainConfig()
    graphs = GraphedBackward(params, lambda b, c: batch_loss(model, b, tc, "ce", capturing=c))
    batches = [collate(_items(True, True, False, n), range(n)) for n in (5, 3)]
    kept = None
    for batch in batches:
        loss = graphs.eager(pad_to_multiple(batch, 8))
        got = [p.grad.clone() for p in params]
        kept = kept or [p.grad for p in params]
        assert all(p.grad is k for p, k in zip(params, kept, strict=True))  # never reallocated
        model.zero_grad(set_to_none=True)
        plain = batch_loss(model, batch, tc, "ce")
        plain.backward()
        torch.testing.assert_close(loss, plain.detach())
        for g, p in zip(got, params, strict=True):
            torch.testing.assert_close(g, p.grad, rtol=1e-4, atol=1e-6)
        for p, k in zip(params, kept, strict=True):  # hand the kept tensors back
            p.grad = k
