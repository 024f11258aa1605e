"""The hybrid's source-side options: learned positions and the scaled source embedding."""

from __future__ import annotations

import pytest
import torch

from hybridseq.config import ConfigError, ModelConfig
from hybridseq.encoders import LearnedPositions, PositionalEncoding, ScaledEmbedding
from hybridseq.export import TraceableTransformer
from hybridseq.model import build_model

SIZES = dict(d_model=32, heads=4, ff_dim=64, enc_layers=2, dec_hidden=32, dec_layers=1)


def _hybrid(**options) -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = ModelConfig(family="hybrid", norm_first=True, src_vocab=11, tgt_vocab=9, **SIZES)
    for key, value in options.items():
        setattr(cfg, key, value)
    return build_model(cfg).eval()


def test_learned_positions_start_as_the_sinusoids_and_are_trained():
    learned, fixed = LearnedPositions(16, 20), PositionalEncoding(16, 20)
    x = torch.randn(2, 7, 16)
    assert torch.equal(learned(x), fixed(x))
    learned(x).sum().backward()
    assert learned.table.grad is not None and learned.table.grad[:7].abs().sum() > 0
    assert learned.table.grad[7:].abs().sum() == 0  # positions past the source get nothing
    with pytest.raises(ValueError, match="max_positions"):
        learned(torch.randn(1, 21, 16))


def test_learned_positions_add_one_vector_per_position_and_nothing_else():
    base = sum(p.numel() for p in _hybrid().parameters())
    learned = sum(p.numel() for p in _hybrid(positions="learned", max_positions=24).parameters())
    assert learned - base == 24 * SIZES["d_model"]


def test_scaled_embedding_starts_near_unit_variance_and_scales_its_table():
    torch.manual_seed(0)
    emb = ScaledEmbedding(500, 64)
    with torch.no_grad():
        out = emb(torch.arange(500))
    assert 0.9 < float(out.std()) < 1.1
    assert float(emb.weight.detach().std()) == pytest.approx(64**-0.5, rel=0.1)
    assert torch.allclose(out, emb.weight * 8.0)


@pytest.mark.parametrize(
    "options", [{"positions": "learned", "max_positions": 30}, {"positions": "relative"}, {}]
)
def test_the_traceable_encoder_computes_the_same_memory(options):
    model = _hybrid(embed_scale=True, **options)
    with torch.no_grad():
        table = model.encoder.positions.table
        table.add_(0.1 * torch.randn_like(table))
    src = torch.randint(4, 11, (3, 9))
    mask = torch.arange(9)[None] < torch.tensor([[9], [4], [6]])
    with torch.no_grad():
        x = model.src_input(src)
        want = model.encoder(x, mask)
        got = TraceableTransformer(model.encoder)(x, mask)
    assert torch.allclose(want[mask], got[mask], atol=1e-5)


def test_unknown_positions_are_refused_with_the_key():
    with pytest.raises(ConfigError, match="model.positions"):
        ModelConfig(family="hybrid", positions="rotary")


def test_relative_positions_bias_by_offset_and_see_no_absolute_place():
    model = _hybrid(positions="relative")
    with torch.no_grad():
        model.encoder.positions.table.normal_()
    src = torch.randint(4, 11, (2, 8))
    mask = torch.ones(2, 8, dtype=torch.bool)
    with torch.no_grad():
        x = model.src_input(src)
        memory = model.encoder(x, mask)
        alone = model.encoder(x[:1, 2:], mask[:1, 2:])
        bias = model.encoder.positions.bias(8, torch.device("cpu"))
    assert bias.shape == (4, 8, 8)
    assert torch.equal(bias[:, 0, 1], bias[:, 5, 6])  # one value per offset
    assert not torch.allclose(memory[:1, 2:], alone)  # the dropped tokens were attended to
    flipped = model.encoder(x.flip(1), mask)
    assert not torch.allclose(flipped.flip(1), memory, atol=1e-4)  # order is seen


def test_relative_positions_train_and_pad_like_the_others():
    model = _hybrid(positions="relative")
    src = torch.randint(4, 11, (3, 9))
    mask = torch.arange(9)[None] < torch.tensor([[9], [4], [6]])
    with torch.no_grad():
        memory = model.encode(src, mask).memory
        alone = model.encode(src[1:2, :4], mask[1:2, :4]).memory
    assert not memory.isnan().any()
    assert torch.allclose(memory[1, :4], alone[0], atol=1e-5)
    model.train()
    model.encode(src, mask).memory.sum().backward()
    assert model.encoder.positions.table.grad.abs().sum() > 0
