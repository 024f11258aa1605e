"""Decoding with the decoder side's weights in a half precision (``api.load(dtype=...)``,
``--dtype``): the same model, its probabilities within half-precision rounding of float32's."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import tiny_train_dict

from hybridseq import api
from hybridseq.cli import main as cli_main
from hybridseq.data import pad_batch
from hybridseq.vocab import PAD_ID

# name, dtype, largest probability difference allowed (measured: ~1e-3 and ~1e-4; scaling
# every weight by 1.05 moves the probabilities by ~0.012)
HALF = [("bfloat16", torch.bfloat16, 0.005), ("float16", torch.float16, 0.001)]


@pytest.fixture(scope="module", params=["lstm_attention", "hybrid"])
def token_run(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(request.param)
    api.train(tiny_train_dict("reverse", request.param, steps=40), out, log=lambda m: None)
    return out


def first_steps(model: api.Model, sources: list[str], steps: int = 3) -> torch.Tensor:
    """Next-token probabilities (steps, B, V) of the first decoding steps, fed the greedy
    choices of the model itself, over a padded batch of ``sources``."""
    net = model.network.eval()
    encoded = [model.codec.source.encode(s, "test") for s in sources]
    src, mask = pad_batch(encoded, PAD_ID)
    src, mask = src.to(model.device), mask.to(model.device)  # cuda where auto found one
    with torch.no_grad():
        enc = net.encode(src, mask)
        state, prev, probs = net.init_state(enc), net.start_inputs(len(sources), src.device), []
        for _ in range(steps):
            logits, state = net.decode_step(prev, state, enc)
            probs.append(torch.softmax(logits.float(), dim=-1))
            prev = logits.argmax(-1)
    return torch.stack(probs)


@pytest.mark.parametrize("name,dtype,tolerance", HALF)
def test_half_precision_tokens_follow_float32(token_run, name, dtype, tolerance):
    full, half = api.load(token_run), api.load(token_run, dtype=name)
    net = half.network
    assert {p.dtype for p in net.decoder.parameters()} | {net.head.weight.dtype} == {dtype}
    assert {p.dtype for p in net.encoder.parameters()} == {torch.float32}  # runs once: kept
    sources = ["1 2 3 4 5", "2 3", "5 1 4"]  # different lengths: padding and masks in half
    expected = first_steps(full, sources)
    got = first_steps(half, sources)
    assert (got - expected).abs().max() < tolerance
    pair = api.load([token_run, token_run], dtype=name)  # an ensemble: every member halved
    assert [m.step_dtype for m in pair.network.members] == [dtype, dtype]
    for beam in (1, 3):
        outputs = half.predict(sources, beam=beam)
        assert len(outputs) == 3 and all(isinstance(o, str) for o in outputs)
        assert pair.predict(sources, beam=beam) == outputs  # two equal members: one model


@pytest.mark.parametrize("name", ["bfloat16", "float16"])
def test_half_precision_vectors_follow_float32(tmp_path, name):
    raw = tiny_train_dict("sines", "hybrid", steps=20)
    api.train(raw, tmp_path, log=lambda m: None)
    full, half = api.load(tmp_path), api.load(tmp_path, dtype=name)
    sources = [np.sin(np.linspace(0, 3, n))[:, None] for n in (6, 4)]
    expected, got = full.predict(sources, steps=5), half.predict(sources, steps=5)
    for e, g in zip(expected, got, strict=True):
        assert g.dtype == np.float32 and g.shape == e.shape == (5, 1)
        assert np.abs(g - e).max() < 0.05 * max(1.0, np.abs(e).max())


def test_unknown_precision_names_the_choices(token_run):
    with pytest.raises(ValueError, match="expected one of float32, bfloat16, float16"):
        api.load(token_run, dtype="int8")


def test_command_line_decodes_in_half_precision(token_run, tmp_path):
    (tmp_path / "in.txt").write_text("1 2 3\n4 5\n")
    out = tmp_path / "out.txt"
    cli_main(
        ["predict", str(token_run), str(tmp_path / "in.txt"), "--dtype", "float16"]
        + ["--output", str(out)]
    )
    assert len(out.read_text().splitlines()) == 2
    with pytest.raises(SystemExit):  # argparse lists the choices
        cli_main(["predict", str(token_run), str(tmp_path / "in.txt"), "--dtype", "half"])
