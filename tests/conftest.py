"""Shared tiny configurations: hidden sizes 8-16, CPU, a few hundred examples at most."""

from __future__ import annotations

import pytest
import torch

from hybridseq.config import ModelConfig


def tiny_model_config(family: str = "hybrid", **overrides) -> ModelConfig:
    """A small model config for either family; sizes that the data decides must be given."""
    base = dict(
        family=family,
        emb_dim=8,
        enc_hidden=12,
        enc_layers=2,
        d_model=16,
        heads=2,
        ff_dim=24,
        dec_hidden=12,
        dec_layers=2,
        attn_heads=2,
        dropout=0.1,
    )
    base.update(overrides)
    return ModelConfig(**base)


def tiny_train_dict(task: str = "reverse", family: str = "lstm_attention", steps: int = 30) -> dict:
    """A whole run's config as a dict, small enough to train in a second or two."""
    return {
        "data": {
            "synth": {
                "task": task,
                "n_train": 200,
                "n_valid": 20,
                "n_test": 20,
                "min_len": 2,
                "max_len": 5,
                "vocab": 6,
                "src_len": 6,
                "tgt_len": 3,
            }
        },
        "model": {
            "family": family,
            "emb_dim": 8,
            "enc_hidden": 16,
            "enc_layers": 1,
            "d_model": 16,
            "heads": 2,
            "ff_dim": 16,
            "dec_hidden": 16,
            "dec_layers": 1,
            "dropout": 0.1,
        },
        "train": {
            "batch_size": 16,
            "max_steps": steps,
            "eval_every": 10,
            "lr": 0.01,
            "eval_max": 20,
            "progress": False,
            "device": "cpu",  # also on a GPU machine (tests/test_gpu.py sets cuda)
        },
    }


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
