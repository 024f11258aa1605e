"""CUDA paths: skipped without a GPU (CI has none); run on a GPU machine with
``pytest tests/test_gpu.py``. Greedy and beam decoding's CUDA-graph replay gives the eager
loop's output, and training, checkpoints and prediction work on the device, in float32 and
under bfloat16."""

from __future__ import annotations

import pytest
import torch
from conftest import tiny_model_config, tiny_train_dict

from hybridseq import api
from hybridseq.decode import beam_search, greedy, max_lengths
from hybridseq.ensemble import Ensemble
from hybridseq.model import build_model
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


@pytest.mark.parametrize("family", ["lstm_attention", "hybrid"])
@pytest.mark.parametrize("eos_bias", [0.0, -1e4])
def test_graphed_greedy_equals_eager(family, eos_bias):
    model = _model(family, eos_bias)
    src, mask = _batch()
    limits = max_lengths(mask, 1.0, 3)
    eager = greedy(model, src, mask, limits, cuda_graph=False)
    assert greedy(model, src, mask, limits, cuda_graph=True) == eager
    if eos_bias < 0:
        assert [len(h) for h in eager] == (limits - 1).tolist()  # different lengths


@pytest.mark.parametrize("family", ["lstm_attention", "hybrid"])
@pytest.mark.parametrize("eos_bias", [0.0, -1e4])
def test_graphed_beam_search_equals_eager(family, eos_bias):
    model = _model(family, eos_bias)
    src, mask = _batch()
    limits = max_lengths(mask, 1.0, 3)
    for alpha in (0.0, 1.0):
        eager = beam_search(model, src, mask, limits, 4, alpha, cuda_graph=False)
        assert beam_search(model, src, mask, limits, 4, alpha, cuda_graph=True) == eager
    if eos_bias < 0:
        assert [len(h) for h in eager] == (limits - 1).tolist()


def test_graphed_decoding_of_an_ensemble_equals_eager():
    members = [
        build_model(tiny_model_config("lstm_attention", src_vocab=12, tgt_vocab=12)).cuda().eval()
        for _ in range(2)
    ]
    model = Ensemble(members)
    src, mask = _batch()
    limits = max_lengths(mask, 1.5, 4)
    eager = greedy(model, src, mask, limits, cuda_graph=False)
    assert greedy(model, src, mask, limits, cuda_graph=True) == eager
    eager = beam_search(model, src, mask, limits, 3, cuda_graph=False)
    assert beam_search(model, src, mask, limits, 3, cuda_graph=True) == eager


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_training_and_prediction_on_cuda(tmp_path, precision):
    cfg = tiny_train_dict("reverse", "lstm_attention", steps=60)
    cfg["train"].update(device="cuda", precision=precision)
    api.train(cfg, tmp_path, log=lambda m: None)
    model = api.load(tmp_path, device="cuda")
    assert next(model.network.parameters()).is_cuda
    on_gpu = model.predict(["1 2 3", "4 5"])
    on_cpu = api.load(tmp_path, device="cpu").predict(["1 2 3", "4 5"])
    assert on_gpu == on_cpu and all(isinstance(p, str) for p in on_gpu)
