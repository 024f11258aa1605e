"""Data-parallel training: two processes take the same steps as one, a missing data file is
reported as in one process, and a stop request ends the run with ``last`` saved."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import torch
import yaml
from conftest import tiny_train_dict
from safetensors.torch import load_file

from hybridseq import api
from hybridseq.config import ConfigError
from hybridseq.data import DataError


def _weights(path):
    return load_file(str(path / "last" / "model.safetensors"))


def test_two_processes_take_the_steps_of_one(tmp_path):
    """Same batches, shards of them, token-weighted gradient sum: the same weights (up to the
    order of float additions). Batches of 199 and 1 pairs, accumulated into one step: one
    rank's shard of the second is empty, and DDP exchanges gradients after it only."""
    raw = tiny_train_dict(steps=4)
    raw["model"]["dropout"] = 0.0
    raw["train"].update(batch_size=199, eval_every=2, threads=1, accumulate=2)
    one = api.train(raw, tmp_path / "one", log=lambda m: None)
    lines: list[str] = []
    raw["train"]["processes"] = 2
    two = api.train(raw, tmp_path / "two", log=lines.append)
    assert two.step == one.step == 4 and not two.interrupted
    assert [h["step"] for h in two.history] == [h["step"] for h in one.history] == [2, 4]
    assert two.history[-1]["loss"] == pytest.approx(one.history[-1]["loss"], rel=1e-4)
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


def _rank_pid(tag: str, rank: int) -> int | None:
    """The pid of the torchrun worker of ``rank`` whose environment carries ``tag``."""
    for proc in Path("/proc").iterdir():
        try:
            env = (proc / "environ").read_bytes().split(b"\0")
        except (OSError, ValueError):
            continue
        if f"HYBRIDSEQ_TEST_TAG={tag}".encode() in env and f"RANK={rank}".encode() in env:
            return int(proc.name)
    return None


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="finds the workers through /proc")
def test_torchrun_ctrl_c_of_one_rank_stops_both_and_resumes_in_one_process(tmp_path):
    """torchrun with 2 CPU ranks (gloo); SIGINT to rank 1 alone: both stop after the same
    step, rank 0 saves ``last``, and one process resumes the 2-process run."""
    raw = tiny_train_dict(steps=100_000)
    raw["train"].update(eval_every=100_000, log_every=5, threads=1)
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(raw))
    tag, out = uuid.uuid4().hex, tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"]
    cmd += ["-m", "hybridseq", "train", str(tmp_path / "c.yaml"), "--out", str(out)]
    env = {**os.environ, "HYBRIDSEQ_TEST_TAG": tag, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for _ in range(600):  # until the ranks have trained a few steps (at most 60 s)
            curves = out / "metrics.jsonl"
            if curves.is_file() and curves.read_text().count('"train"') >= 2:
                break
            time.sleep(0.1)
        pid = _rank_pid(tag, 1)
        assert pid is not None, proc.stdout.read().decode() if proc.poll() is not None else ""
        os.kill(pid, signal.SIGINT)
        output = proc.communicate(timeout=120)[0].decode()
    finally:
        proc.kill()
    step = torch.load(out / "last" / "trainer.pt", weights_only=True)["step"]
    assert 10 <= step < 100_000, output
    assert f"stopped at step {step}" in output
    raw["train"].update(max_steps=step + 4, eval_every=2)
    resumed = api.train(raw, out, resume=True, log=lambda m: None)
    assert resumed.step == step + 4 and not resumed.interrupted
