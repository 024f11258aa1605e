"""Data-parallel training: two processes take the same steps as one, a missing data file is
reported as in one process, and a stop request ends the run with ``last`` saved."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.distributed as dist
from conftest import tiny_train_dict
from safetensors.torch import load_file

from hybridseq import api, training
from hybridseq.config import ConfigError
from hybridseq.data import DataError
from hybridseq.parallel import World


def _weights(path):
    return load_file(str(path / "last" / "model.safetensors"))


def test_two_processes_take_the_steps_of_one(tmp_path):
    """Same batches, shards of them, token-weighted gradient sum: the same weights (up to the
    order of float additions). Batches of 199 and 1 pairs: one rank's shard is then empty."""
    raw = tiny_train_dict(steps=4)
    raw["model"]["dropout"] = 0.0
    raw["train"].update(batch_size=199, eval_every=2, threads=1)
    one = api.train(raw, tmp_path / "one", log=lambda m: None)
    lines: list[str] = []
    raw["train"]["processes"] = 2
    two = api.train(raw, tmp_path / "two", log=lines.append)
    assert two.step == one.step == 4 and not two.interrupted
    assert [h["step"] for h in two.history] == [h["step"] for h in one.history] == [2, 4]
    assert two.history[-1]["loss"] == pytest.approx(one.history[-1]["loss"], rel=1e-4)
    assert any("2 processes" in line for line in lines)
    w1, w2 = _weights(tmp_path / "one"), _weights(tmp_path / "two")
    for k in w1:
        torch.testing.assert_close(w2[k], w1[k], rtol=1e-4, atol=1e-5)


def test_a_worker_error_reaches_the_caller_as_it_would_in_one_process(tmp_path):
    raw = tiny_train_dict(steps=4)
    raw["data"] = {"train": str(tmp_path / "missing.tsv")}
    raw["train"]["processes"] = 2
    with pytest.raises(DataError, match="missing.tsv"):
        api.train(raw, tmp_path / "run", log=lambda m: None)


def test_processes_must_be_positive():
    raw = tiny_train_dict()
    raw["train"]["processes"] = 0
    with pytest.raises(ConfigError, match="train.processes"):
        api.as_config(raw)


def test_a_stop_request_ends_the_run_after_the_step_with_last_saved(tmp_path):
    """Rank 0 of a one-process group, its launcher's interrupt already set (Ctrl-C)."""
    dist.init_process_group(
        "gloo", init_method=(tmp_path / "rendezvous").as_uri(), rank=0, world_size=1
    )
    try:
        interrupt = threading.Event()
        interrupt.set()
        cfg = api.as_config(tiny_train_dict(steps=20))
        result = training.run(cfg, tmp_path / "run", False, lambda m: None, World(0, 1, interrupt))
    finally:
        dist.destroy_process_group()
    assert result.interrupted and result.step == 1
    assert torch.load(tmp_path / "run" / "last" / "trainer.pt", weights_only=True)["step"] == 1
