"""Checkpoints: one directory that needs nothing else to load.

    config.yaml        the full config, data-derived sizes filled in
    codec.json         tokenizers and vocabularies (or vector widths)
    model.safetensors  the weights
    trainer.pt         optimizer, scheduler, step, RNG (tensors and plain types only)
    metrics.json       the validation metrics at save time, for people

A training run keeps ``best`` and ``last``, and with ``train.keep_checkpoints: N`` the weights
of its last N validations as ``step-<N>``; ``average_checkpoints`` writes their mean as one
checkpoint (checkpoint averaging, as in Vaswani et al. 2017).

Nothing is unpickled on load: weights come from safetensors and the trainer state through
``torch.load(weights_only=True)``. A save writes a sibling temporary directory and swaps it in
with renames, so a crash mid-save leaves the previous checkpoint whole.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors.torch import load_file, save_file

from hybridseq.codec import Codec
from hybridseq.config import Config, config_from_dict, save_config
from hybridseq.model import Seq2Seq, build_model

FILES = ("config.yaml", "codec.json", "model.safetensors")


class CheckpointError(FileNotFoundError):
    """A checkpoint directory is missing or incomplete."""


def save_checkpoint(
    path: str | Path,
    cfg: Config,
    model: Seq2Seq,
    codec: Codec,
    trainer: dict[str, Any] | None = None,
    metrics: dict[str, Any] | None = None,
) -> None:
    """Write a checkpoint directory atomically (write aside, then rename into place)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    old = path.with_name(path.name + ".old")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_config(cfg, tmp / "config.yaml")
    (tmp / "codec.json").write_text(json.dumps(codec.to_dict()))
    weights = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    save_file(weights, str(tmp / "model.safetensors"))
    if trainer is not None:
        torch.save(trainer, tmp / "trainer.pt")
    (tmp / "metrics.json").write_text(json.dumps(metrics or {}, indent=2))
    _sync_dir(tmp)
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _sync_dir(path: Path) -> None:
    for f in path.iterdir():
        with open(f, "rb") as fh:
            os.fsync(fh.fileno())


def resolve(path: str | Path) -> Path:
    """The checkpoint directory to read: ``path``, or the previous copy left by an interrupted
    save. Raises CheckpointError naming what is missing."""
    path = Path(path)
    if not path.exists():
        old = path.with_name(path.name + ".old")
        if old.is_dir():
            return old
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.is_dir() and (path / "best").is_dir() and not (path / "config.yaml").exists():
        path = path / "best"  # a training output directory: use its best checkpoint
    for name in FILES:
        if not (path / name).is_file():
            raise CheckpointError(f"checkpoint {path} is missing {name}")
    return path


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu"
) -> tuple[Config, Seq2Seq, Codec]:
    """Rebuild config, model (on ``device``, eval mode) and codec from a checkpoint directory."""
    path = resolve(path)
    cfg = config_from_dict(yaml.safe_load((path / "config.yaml").read_text()))
    codec = Codec.from_dict(json.loads((path / "codec.json").read_text()))
    model = build_model(cfg.model)
    state = load_file(str(path / "model.safetensors"), device="cpu")
    model.load_state_dict(state)
    return cfg, model.to(device).eval(), codec


def load_trainer_state(path: str | Path) -> dict[str, Any]:
    """The trainer state saved beside the weights (tensors and plain Python values only)."""
    file = resolve(path) / "trainer.pt"
    if not file.is_file():
        raise CheckpointError(f"checkpoint {file.parent} has no trainer state (trainer.pt)")
    return torch.load(file, map_location="cpu", weights_only=True)


def step_checkpoints(run_dir: str | Path) -> list[Path]:
    """The ``step-<N>`` checkpoints a run kept (``train.keep_checkpoints``), oldest first."""
    kept = [p for p in Path(run_dir).glob("step-*") if p.is_dir() and p.name[5:].isdigit()]
    return sorted(kept, key=lambda p: int(p.name[5:]))


def prune_step_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the newest ``keep`` step checkpoints of a run."""
    kept = step_checkpoints(run_dir)
    for old in kept[: max(0, len(kept) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


def average_checkpoints(paths: list[str | Path], out: str | Path) -> Path:
    """Write the element-wise mean of the weights of ``paths`` (checkpoints of one model: the
    same architecture and codec) to the checkpoint ``out``; returns ``out``. The config and
    codec are the first one's; ``metrics.json`` lists the averaged checkpoints."""
    if not paths:
        raise CheckpointError("average: no checkpoints given")
    dirs = [resolve(p) for p in paths]
    cfg, model, codec = load_checkpoint(dirs[0])
    arch, vocab = cfg.model, codec.to_dict()
    first = model.state_dict()
    total = {k: v.double() for k, v in first.items()}
    for d in dirs[1:]:
        other_cfg, other, other_codec = load_checkpoint(d)
        if other_cfg.model != arch or other_codec.to_dict() != vocab:
            raise CheckpointError(
                f"average: {d} is another model than {dirs[0]} (its model config or "
                "vocabulary differs); only checkpoints of one training run can be averaged"
            )
        for k, v in other.state_dict().items():
            total[k] += v.double()
    mean = {k: (v / len(dirs)).to(first[k].dtype) for k, v in total.items()}
    model.load_state_dict(mean)
    save_checkpoint(out, cfg, model, codec, None, {"averaged": [str(d) for d in dirs]})
    return Path(out)
