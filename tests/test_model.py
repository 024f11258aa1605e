"""Model properties: decoding step by step equals the teacher-forced forward, padding gets
exactly zero attention, and the seed architectures have the seeds' parameter counts."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model_config
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from hybridseq.attention import AdditiveAttention, MultiHeadAttention
from hybridseq.config import ConfigError, ModelConfig
from hybridseq.decoder import DecoderState, LSTMDecoder
from hybridseq.encoders import LSTMEncoder
from hybridseq.model import build_model

FAMILIES = ["lstm_attention", "hybrid"]
ATTENTIONS = ["additive", "multihead", "none"]


def _inputs(tokens_src: bool, tokens_tgt: bool, b=3, s=7, t=5, d_in=4, d_out=3):
    src = torch.randint(4, 11, (b, s)) if tokens_src else torch.randn(b, s, d_in)
    mask = torch.ones(b, s, dtype=torch.bool)
    mask[1, 4:] = False  # a padded sequence
    mask[2, 2:] = False
    tgt = torch.randint(1, 13, (b, t)) if tokens_tgt else torch.randn(b, t, d_out)
    return src, mask, tgt


def _sizes(tokens_src: bool, tokens_tgt: bool) -> dict:
    sizes = {"src_vocab": 11} if tokens_src else {"src_dim": 4}
    sizes.update({"tgt_vocab": 13} if tokens_tgt else {"tgt_dim": 3})
    return sizes


# (source is tokens, target is tokens, extra model options)
VARIANTS = {
    "tokens->tokens": (True, True, {}),
    "vectors->vectors": (False, False, {}),
    "tokens->vectors": (True, False, {}),
    "quantiles": (False, False, {"quantiles": [0.1, 0.5, 0.9]}),
    "covariates": (False, False, {"tgt_cov_dim": 2}),
    "tokens+covariates": (True, True, {"tgt_cov_dim": 2}),
    "quantiles+covariates": (False, False, {"quantiles": [0.2, 0.8], "tgt_cov_dim": 2}),
    "tokens, no input feed": (True, True, {"input_feed": False}),
    "covariates, no input feed": (False, False, {"tgt_cov_dim": 2, "input_feed": False}),
}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("attention", ATTENTIONS)
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_step_by_step_equals_teacher_forced(family, attention, variant):
    tokens_src, tokens_tgt, options = VARIANTS[variant]
    sizes = _sizes(tokens_src, tokens_tgt)
    cfg = tiny_model_config(family, attention=attention, **sizes, **options)
    model = build_model(cfg).eval()
    src, mask, tgt = _inputs(tokens_src, tokens_tgt)
    cov = torch.randn(*tgt.shape[:2], 2) if "tgt_cov_dim" in options else None  # (B, T, C)
    full = model(src, tgt, mask, tgt_cov=cov)  # (B, T, V|D), or (B, T, D, Q)
    enc = model.encode(src, mask)
    state = model.init_state(enc)
    steps = []
    for t in range(tgt.shape[1]):
        out, state = model.decode_step(tgt[:, t], state, enc, None if cov is None else cov[:, t])
        steps.append(out)
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-5)


def test_covariates_change_the_output_and_must_fit():
    model = build_model(tiny_model_config("hybrid", src_dim=4, tgt_dim=3, tgt_cov_dim=2)).eval()
    src, mask, tgt = _inputs(False, False)
    cov = torch.randn(3, 5, 2)
    assert not torch.allclose(
        model(src, tgt, mask, tgt_cov=cov), model(src, tgt, mask, tgt_cov=-cov)
    )
    with pytest.raises(ValueError, match=r"expected shape \(3, 5, 2\), got none"):
        model(src, tgt, mask)
    with pytest.raises(ValueError, match=r"expected shape \(3, 5, 2\), got shape \(3, 5, 1\)"):
        model(src, tgt, mask, tgt_cov=cov[..., :1])
    plain = build_model(tiny_model_config("hybrid", src_dim=4, tgt_dim=3))
    with pytest.raises(ValueError, match="expected none .the model takes no covariates"):
        plain(src, tgt, mask, tgt_cov=cov)


@pytest.mark.parametrize("family", FAMILIES)
def test_quantiles_are_shaped_ordered_and_the_point_is_nearest_the_median(family):
    cfg = tiny_model_config(family, src_dim=4, tgt_dim=3, quantiles=[0.05, 0.3, 0.6, 0.9])
    model = build_model(cfg).eval()
    assert model.head.out_features == 3 * 4 and model.point_index == 2  # 0.6 is nearest 0.5
    with torch.no_grad():
        for p in model.head.parameters():
            p.normal_(0.0, 3.0)  # wild weights: raw outputs in every order
    src, mask, tgt = _inputs(False, False)
    out = model(src, tgt, mask)
    assert out.shape == (3, 5, 3, 4)
    assert (out.diff(dim=-1) >= 0).all()
    torch.testing.assert_close(model.point(out), out[..., 2])
    ties = build_model(tiny_model_config(family, src_dim=4, tgt_dim=3, quantiles=[0.25, 0.75]))
    assert ties.point_index == 0


def test_prenorm_hybrid_steps_match_and_differ_from_postnorm():
    torch.manual_seed(0)
    pre = build_model(tiny_model_config("hybrid", norm_first=True, src_vocab=11, tgt_vocab=13))
    pre.eval()
    src, mask, tgt = _inputs(True, True)
    full = pre(src, tgt, mask)
    enc = pre.encode(src, mask)
    state, steps = pre.init_state(enc), []
    for t in range(tgt.shape[1]):
        out, state = pre.decode_step(tgt[:, t], state, enc)
        steps.append(out)
    torch.testing.assert_close(torch.stack(steps, 1), full, atol=1e-5, rtol=1e-5)
    post = build_model(tiny_model_config("hybrid", src_vocab=11, tgt_vocab=13)).eval()
    post.load_state_dict(pre.state_dict(), strict=False)  # same weights, but no final norm
    assert set(pre.state_dict()) - set(post.state_dict()) == {
        "encoder.layers.norm.weight",
        "encoder.layers.norm.bias",
    }
    assert not torch.allclose(post(src, tgt, mask), full)


@pytest.mark.parametrize("init", ["bridge", "zeros"])
def test_bidirectional_and_bridges_also_match(init):
    cfg = tiny_model_config(
        "lstm_attention", bidirectional=True, decoder_init=init, src_vocab=11, tgt_vocab=13
    )
    model = build_model(cfg).eval()
    src, mask, tgt = _inputs(True, True)
    full = model(src, tgt, mask)
    enc = model.encode(src, mask)
    state = model.init_state(enc)
    out, _ = model.decode_step(tgt[:, 0], state, enc)
    torch.testing.assert_close(out, full[:, 0], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "options",
    [{"family": "lstm_attention", "bidirectional": True}, {"family": "hybrid", "norm_first": True}],
    ids=["bilstm", "prenorm-hybrid"],
)
def test_padding_does_not_change_outputs(options):
    """A sequence padded in a batch decodes exactly as it does alone."""
    model = build_model(tiny_model_config(**options, src_vocab=11, tgt_vocab=13)).eval()
    src, mask, tgt = _inputs(True, True)
    batched = model(src, tgt, mask)[2]
    alone = model(src[2:3, :2], tgt[2:3])[0]
    torch.testing.assert_close(batched, alone, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize(
    "attn", [AdditiveAttention(6, 5, 7), MultiHeadAttention(6, 5, 2)], ids=["additive", "mh"]
)
def test_t_queries_at_once_equal_one_at_a_time(attn):
    memory, queries = torch.randn(3, 9, 5), torch.randn(3, 4, 6)  # (B, S, E), (B, T, Q)
    mask = torch.rand(3, 9) > 0.4
    mask[:, 0] = True
    cache = attn.precompute(memory)
    context, weights = attn(queries, cache, mask)
    for t in range(4):
        c, w = attn(queries[:, t], cache, mask)
        torch.testing.assert_close(context[:, t], c)
        torch.testing.assert_close(weights[:, t], w)


@pytest.mark.parametrize("bidirectional", [False, True], ids=["uni", "bi"])
def test_masked_lstm_encoder_equals_packed_sequences_with_gradients(bidirectional):
    """The CPU step loop over a padded batch gives nn.LSTM's packed-sequence results: memory
    (zero at padding), final states at each real end, and the same gradients."""
    torch.manual_seed(0)
    enc = LSTMEncoder(5, 6, 2, bidirectional, dropout=0.0)
    x = torch.randn(4, 7, 5, requires_grad=True)
    mask = torch.arange(7) < torch.tensor([7, 3, 5, 1]).unsqueeze(1)  # (B, S)
    memory, (h, c) = enc(x, mask)
    packed = pack_padded_sequence(x, mask.sum(1), batch_first=True, enforce_sorted=False)
    out, (h_ref, c_ref) = enc.lstm(packed)
    memory_ref, _ = pad_packed_sequence(out, batch_first=True, total_length=7)
    torch.testing.assert_close(memory, memory_ref)
    h_ref, c_ref = enc._merge_directions(h_ref), enc._merge_directions(c_ref)
    torch.testing.assert_close((h, c), (h_ref, c_ref))
    grads = torch.autograd.grad((memory.sum() + h.sum() + c.sum()), [x, *enc.parameters()])
    total_ref = memory_ref.sum() + h_ref.sum() + c_ref.sum()
    grads_ref = torch.autograd.grad(total_ref, [x, *enc.parameters()])
    torch.testing.assert_close(grads, grads_ref)


@pytest.mark.parametrize("skip", [0, 3], ids=["fused", "input-projected-ahead"])
def test_decoder_steps_equal_nn_lstm_with_gradients(skip):
    """The written-out step (its weight gradient formed once over all steps) gives nn.LSTM's
    outputs and gradients, with or without the leading input columns projected ahead."""
    torch.manual_seed(0)
    dec = LSTMDecoder(5, 6, 2, dropout=0.0)
    x = torch.randn(3, 4, 5, requires_grad=True)  # (B, T, I)
    h0 = torch.randn(2, 3, 6, requires_grad=True)  # (L, B, H)
    c0 = torch.randn(2, 3, 6, requires_grad=True)
    ref, _ = dec.run(x, DecoderState(h0, c0))
    state, outs, weights = DecoderState(h0, c0), [], dec.step_weights(skip)
    x_proj = dec.project_input(x[..., :skip], skip) if skip else None
    for t in range(4):
        rest = x[:, t, skip:]
        out, state = dec.step(state, rest, weights, None if x_proj is None else x_proj[:, t])
        outs.append(out)
    stepped = torch.stack(outs, 1)  # (B, T, H)
    torch.testing.assert_close(stepped, ref)
    wrt = [x, h0, c0, *dec.parameters()]
    g = torch.randn_like(ref)
    grads = torch.autograd.grad((stepped * g).sum(), wrt)
    torch.testing.assert_close(grads, torch.autograd.grad((ref * g).sum(), wrt))


def test_training_step_runs_under_bf16_autocast():
    model = build_model(tiny_model_config("lstm_attention", src_vocab=11, tgt_vocab=13))
    src, mask, tgt = _inputs(True, True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(src, tgt, mask)
    out.float().sum().backward()
    assert all(p.grad is not None for p in model.decoder.parameters())


def test_without_input_feed_the_decoder_reads_only_the_target():
    feed = build_model(tiny_model_config("lstm_attention", src_vocab=11, tgt_vocab=13))
    plain = build_model(
        tiny_model_config("lstm_attention", src_vocab=11, tgt_vocab=13, input_feed=False)
    )
    width = feed.attention.context_dim
    assert feed.decoder.lstm.input_size == plain.decoder.lstm.input_size + width
    assert plain.decoder.lstm.input_size == plain.tgt_embedding.embedding_dim


@pytest.mark.parametrize(
    "attn", [AdditiveAttention(6, 5, 7), MultiHeadAttention(6, 5, 2)], ids=["additive", "mh"]
)
def test_masked_positions_get_exactly_zero_attention(attn):
    memory = torch.randn(3, 9, 5)
    mask = torch.rand(3, 9) > 0.4
    mask[:, 0] = True  # every sequence has at least one real position
    memory_junk = memory.masked_fill(~mask.unsqueeze(-1), 1e6)  # padding content is irrelevant
    context, weights = attn(torch.randn(3, 6), attn.precompute(memory), mask)
    assert torch.all(weights[~mask] == 0.0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    query = torch.randn(3, 6)
    a, _ = attn(query, attn.precompute(memory), mask)
    b, _ = attn(query, attn.precompute(memory_junk), mask)
    torch.testing.assert_close(a, b)


def test_seed_002_parameter_count():
    cfg = ModelConfig(
        family="lstm_attention",
        emb_dim=256,
        enc_hidden=512,
        dec_hidden=512,
        enc_layers=2,
        dec_layers=2,
        dropout=0.5,
        src_vocab=1000,
        tgt_vocab=1000,
    )
    model = build_model(cfg)
    assert sum(p.numel() for p in model.parameters()) == 10_467_304


def test_seed_000_counts_and_example_shape():
    cfg = ModelConfig(
        family="hybrid",
        d_model=512,
        heads=8,
        enc_layers=6,
        ff_dim=2048,
        dec_hidden=512,
        dec_layers=2,
        attention="none",
        decoder_init="last",
        src_dim=512,
        tgt_dim=512,
    )
    model = build_model(cfg)
    assert sum(p.numel() for p in model.encoder.parameters()) == 18_914_304
    assert sum(p.numel() for p in model.decoder.parameters()) == 4_202_496
    out = model(torch.rand(32, 10, 512), torch.rand(32, 20, 512))
    assert out.shape == (32, 20, 512)


def test_hybrid_multilayer_decoder_gets_state_for_every_layer():
    """The seed passed a one-layer state to a two-layer LSTM; every init here fills all layers."""
    for init in ("bridge", "last", "zeros"):
        cfg = tiny_model_config(
            "hybrid", d_model=12, dec_layers=3, decoder_init=init, src_dim=4, tgt_dim=3
        )
        model = build_model(cfg)
        enc = model.encode(torch.randn(2, 5, 4))
        state = model.init_state(enc)
        assert state.h.shape == state.c.shape == (3, 2, 12)


def test_bad_model_configs_name_the_key():
    with pytest.raises(ConfigError, match="decoder_init"):
        ModelConfig(family="lstm_attention", bidirectional=True, decoder_init="final")
    with pytest.raises(ConfigError, match="model.heads"):
        ModelConfig(family="hybrid", d_model=10, heads=3)
    with pytest.raises(ConfigError, match="model.family"):
        ModelConfig(family="gru")
    with pytest.raises(ConfigError, match="src_vocab"):
        build_model(ModelConfig(tgt_vocab=5))


def test_head_init_makes_every_output_that_constant():
    model = build_model(tiny_model_config("hybrid", src_dim=3, tgt_dim=2, head_init=1.0)).eval()
    out = model(torch.randn(4, 6, 3), torch.randn(4, 5, 2))
    torch.testing.assert_close(out, torch.ones(4, 5, 2))


@pytest.mark.parametrize(
    "sizes, message",
    [
        (dict(src_vocab=9, tgt_vocab=9), "only for a vector target"),
        (dict(src_dim=3, tgt_dim=2, quantiles=[0.1, 0.5, 0.9]), "not with model.quantiles"),
    ],
)
def test_head_init_is_refused_where_it_has_no_meaning(sizes, message):
    with pytest.raises(ConfigError, match=message):
        tiny_model_config("hybrid", head_init=1.0, **sizes)


@pytest.mark.parametrize("family", FAMILIES)
def test_source_embedding_is_dropped_out_once(family):
    """In training, what reaches the encoder's layers is the (position-added) source embedding
    dropped out once: each value 0 or the clean one over (1 - p), never over (1 - p)**2."""
    torch.manual_seed(0)
    model = build_model(tiny_model_config(family, dropout=0.5, src_vocab=11, tgt_vocab=13))
    model.train()
    src, mask, tgt = _inputs(True, True, b=8, s=7)
    hybrid = family == "hybrid"
    inner = model.encoder.layers if hybrid else model.encoder
    seen = []
    inner.register_forward_pre_hook(lambda _m, args: seen.append(args[0].detach()))
    model(src, tgt, mask)
    with torch.no_grad():
        clean = model.src_input(src)
        clean = model.encoder.positions(clean) if hybrid else clean
    got = seen[0]
    kept = got != 0
    assert 0.3 < kept.float().mean() < 0.7  # about half: dropped once, not twice (a quarter)
    torch.testing.assert_close(got[kept], 2 * clean[kept])
