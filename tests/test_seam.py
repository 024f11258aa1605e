"""The decoder seam is declared once (``seam.Decodable``) and both a model and an ensemble
satisfy it, so every decoder takes either."""

from __future__ import annotations

import torch
from conftest import tiny_train_dict

from hybridseq.api import as_config
from hybridseq.decode import greedy, max_lengths
from hybridseq.ensemble import Ensemble
from hybridseq.model import build_model
from hybridseq.seam import Decodable


def _model(seed: int):
    torch.manual_seed(seed)
    cfg = as_config(tiny_train_dict()).model
    return build_model(cfg.__class__(**{**cfg.__dict__, "src_vocab": 9, "tgt_vocab": 9})).eval()


def test_a_model_and_an_ensemble_are_decodable_and_decode_alike():
    one, ensemble = _model(0), Ensemble([_model(0), _model(0)]).eval()
    assert isinstance(one, Decodable) and isinstance(ensemble, Decodable)
    src = torch.randint(4, 9, (3, 5))
    mask = torch.ones_like(src, dtype=torch.bool)
    limits = max_lengths(mask, 1.5, 2)
    assert greedy(one, src, mask, limits) == greedy(ensemble, src, mask, limits)
