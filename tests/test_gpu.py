"""CUDA paths: skipped without a GPU (CI has none); run on a GPU machine with
``pytest tests/test_gpu.py``. Greedy and beam decoding's CUDA-graph replay gives the eager
loop's output, graphed training steps give eager ones' weights, and training (float32,
bfloat16, scheduled sampling), resuming, checkpoints and prediction work on the device."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model_config, tiny_train_dict

from hybridseq import api
from hybridseq.config import TrainConfig
from hybridseq.cudagraph import GraphedBackward
from hybridseq.data import collate
from hybridseq.decode import beam_search, greedy, max_lengths
from hybridseq.ensemble import Ensemble
from hybridseq.model import build_model
from hybridseq.training import batch_loss
from hybridseq.vocab import EOS_ID

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def _batch(b: int = 6, s: int = 7):
    src = torch.randint(4, 12, (b, s))
    mask = torch.ones(b, s, dtype=torch.bool)
    for row in range(b):  # lengths 2..s
        mask[row, 2 + row % (s - 1) :] = False
    return src.cuda(), mask.cuda()


def _model(family: str, eos_bias: float):
    torch.manual_seed(3)
    cfg = tiny_model_config(family, src_vocab=12, tgt_vocab=12, decoder_init="bridge")
    model = build_model(cfg).cuda().eval()
    with torch.no_grad():  # -1e4: no EOS before the limit, so rows end at their limits
        model.head.bias[EOS_ID] += eos_bias
    return model


# name -> decode(model, src, mask, limits, cuda_graph)
DECODERS = {
    "greedy": lambda m, s, k, lim, g: greedy(m, s, k, lim, cuda_graph=g),
    "beam 4": lambda m, s, k, lim, g: beam_search(m, s, k, lim, 4, cuda_graph=g),
    "beam 4, length penalty": lambda m, s, k, lim, g: beam_search(m, s, k, lim, 4, 1.0, g),
}


@pytest.mark.parametrize("family", ["lstm_attention", "hybrid"])
@pytest.mark.parametrize("eos_bias", [0.0, -1e4])
@pytest.mark.parametrize("decoder", list(DECODERS))
def test_graphed_decoding_equals_eager(family, eos_bias, decoder):
    model, decode = _model(family, eos_bias), DECODERS[decoder]
    src, mask = _batch()
    limits = max_lengths(mask, 1.0, 3)
    eager = decode(model, src, mask, limits, False)
    assert decode(model, src, mask, limits, True) == eager
    if eos_bias < 0:
        assert [len(h) for h in eager] == (limits - 1).tolist()  # rows of different lengths


@pytest.mark.parametrize("decoder", list(DECODERS))
def test_graphed_decoding_of_an_ensemble_equals_eager(decoder):
    members = [
        build_model(tiny_model_config("lstm_attention", src_vocab=12, tgt_vocab=12)).cuda().eval()
        for _ in range(2)
    ]
    model, decode = Ensemble(members), DECODERS[decoder]
    src, mask = _batch()
    limits = max_lengths(mask, 1.5, 4)
    assert decode(model, src, mask, limits, True) == decode(model, src, mask, limits, False)


def _batches(n: int):
    """n batches of 4 token pairs cycling over three length shapes."""
    g = torch.Generator().manual_seed(1)
    out = []
    for i in range(n):
        s, t = (5, 3, 11)[i % 3], (4, 9, 2)[i % 3]
        items = [
            (
                torch.randint(4, 12, (s - j % 2,), generator=g),
                torch.randint(4, 12, (t,), generator=g),
            )
            for j in range(4)
        ]
        out.append(collate(items, range(4)).to("cuda"))
    return out


@pytest.mark.parametrize("family", ["lstm_attention", "hybrid"])
def test_graphed_training_steps_equal_eager_ones(family):
    """The same 9 SGD steps with the forward and backward replayed from CUDA graphs (shapes
    recorded on their second occurrence) and eagerly end with the same weights (SGD, so that
    rounding differences stay rounding-sized; bfloat16 is exercised by the training test)."""
    cfg = tiny_model_config(family, src_vocab=12, tgt_vocab=12, dropout=0.0, bidirectional=True)
    tc = TrainConfig(label_smoothing=0.1)
    models = []
    for graphed in (False, True):
        torch.manual_seed(0)
        model = build_model(cfg).cuda().train()
        opt = torch.optim.SGD(model.parameters(), lr=0.5)
        params = list(model.parameters())
        graphs = GraphedBackward(
            params, lambda b, c, m=model: batch_loss(m, b, tc, "ce", capturing=c)
        )
        for batch in _batches(9):
            if graphed:
                graphs(batch)
            else:
                opt.zero_grad()
                batch_loss(model, batch, tc, "ce").backward()
            torch.nn.utils.clip_grad_norm_(params, 1.0)
            opt.step()
        models.append(model)
        if graphed:
            assert len(graphs.recorded) == 3  # each shape recorded once, then replayed
    for a, b in zip(models[0].parameters(), models[1].parameters(), strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)
    torch.manual_seed(0)
    start = build_model(cfg).cuda()
    moved = max(
        (a - s).abs().max().item()
        for a, s in zip(models[0].parameters(), start.parameters(), strict=True)
    )
    assert moved > 1e-2  # the steps did train


@pytest.mark.parametrize(
    "options", [{"precision": "float32"}, {"precision": "bfloat16"}, {"teacher_forcing": 0.5}]
)
def test_training_and_prediction_on_cuda(tmp_path, options):
    cfg = tiny_train_dict("reverse", "lstm_attention", steps=60)
    cfg["train"].update(device="cuda", **options)
    api.train(cfg, tmp_path, log=lambda m: None)
    model = api.load(tmp_path, device="cuda")
    assert next(model.network.parameters()).is_cuda
    on_gpu = model.predict(["1 2 3", "4 5"])
    on_cpu = api.load(tmp_path, device="cpu").predict(["1 2 3", "4 5"])
    assert on_gpu == on_cpu and all(isinstance(p, str) for p in on_gpu)


def test_resume_on_cuda_continues_where_it_stopped(tmp_path):
    """20 steps straight against 10, stop, resume to 20, on the GPU with graphs (which record
    at different steps in the two runs): the same weights."""
    from safetensors.torch import load_file

    def raw(steps):
        cfg = tiny_train_dict(steps=steps)
        cfg["train"]["device"] = "cuda"
        return cfg

    api.train(raw(20), tmp_path / "a", log=lambda m: None)
    api.train(raw(10), tmp_path / "b", log=lambda m: None)
    api.train(raw(20), tmp_path / "b", resume=True, log=lambda m: None)
    wa = load_file(str(tmp_path / "a" / "last" / "model.safetensors"))
    wb = load_file(str(tmp_path / "b" / "last" / "model.safetensors"))
    for k in wa:
        torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0)
