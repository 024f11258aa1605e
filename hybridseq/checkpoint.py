"""Checkpoints: one directory that needs nothing else to load.

    config.yaml        the full config, data-derived sizes filled in
    codec.json         tokenizers and vocabularies (or vector widths)
    model.safetensors  the weights
    trainer.pt         optimizer, scheduler, step, RNG (tensors and plain types only)
    metrics.json       the validation metrics at save time, for people
    manifest.json      the SHA-256 of each file above, checked when it is loaded

A training run keeps ``best`` and ``last``, and with ``train.keep_checkpoints: N`` the weights
of its last N validations as ``step-<N>``; ``average_checkpoints`` writes their mean as one
checkpoint (checkpoint averaging, as in Vaswani et al. 2017).

Nothing is unpickled on load: weights come from safetensors and the trainer state through
``torch.load(weights_only=True)``. A save writes a sibling temporary directory and swaps it in
with renames, so a crash mid-save leaves the previous checkpoint whole; a save that fails (a
full disk, a read-only directory) removes its temporary directory and raises CheckpointError.

A load trusts nothing it reads: a file whose SHA-256 differs from the manifest (an edited
``config.yaml``, flipped bits in the weights), a truncated or unreadable file, and a config,
vocabulary and weights that do not describe one model are each a CheckpointError naming the
file. Checkpoints saved before manifests existed load without the hash check.
"""

from __future__ import annotations

import hashlib
import json
import os
import pickle
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch
import yaml
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from hybridseq.codec import Codec
from hybridseq.config import Config, ConfigError, config_from_dict, parse_yaml, save_config
from hybridseq.model import Seq2Seq, build_model

FILES = ("config.yaml", "codec.json", "model.safetensors")
MANIFEST = "manifest.json"


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
    """Write a checkpoint directory atomically (write aside, then rename into place).

    Raises:
        CheckpointError: the directory could not be written (no space, no permission); the
            previous checkpoint at ``path``, if any, is left as it was.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        _write(tmp, cfg, model, codec, trainer, metrics)
        _swap_in(tmp, path)
    except BaseException as err:  # Ctrl-C too: no half-written .tmp is left behind
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(err, (OSError, RuntimeError, SafetensorError)):
            reason = err.strerror if isinstance(err, OSError) and err.strerror else err
            raise CheckpointError(f"{path}: cannot save the checkpoint ({reason})") from err
        raise


def _write(
    tmp: Path,
    cfg: Config,
    model: Seq2Seq,
    codec: Codec,
    trainer: dict[str, Any] | None,
    metrics: dict[str, Any] | None,
) -> None:
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    save_config(cfg, tmp / "config.yaml")
    (tmp / "codec.json").write_text(json.dumps(codec.to_dict()))
    aliases = tied_names(model)
    weights = {
        k: v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
        if k not in aliases  # a tied weight is saved once, under its first name
    }
    save_file(weights, str(tmp / "model.safetensors"))
    if trainer is not None:
        torch.save(trainer, tmp / "trainer.pt")
    (tmp / "metrics.json").write_text(json.dumps(metrics or {}, indent=2))
    write_manifest(tmp)
    _sync_dir(tmp)


def _swap_in(tmp: Path, path: Path) -> None:
    old = path.with_name(path.name + ".old")
    if path.exists():
        shutil.rmtree(old, ignore_errors=True)
        os.replace(path, old)
    os.replace(tmp, path)
    shutil.rmtree(old, ignore_errors=True)


def _sha256(file: Path) -> str:
    digest = hashlib.sha256()
    with open(file, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(directory: Path) -> None:
    """Record the SHA-256 of every file of a checkpoint directory in its manifest."""
    files = sorted(f.name for f in directory.iterdir() if f.is_file() and f.name != MANIFEST)
    sums = {name: _sha256(directory / name) for name in files}
    (directory / MANIFEST).write_text(json.dumps({"sha256": sums}, indent=2))


def verify(directory: Path, names: Iterable[str]) -> None:
    """Check files of a checkpoint against its manifest (none: a checkpoint saved before
    manifests, accepted as it is).

    Raises:
        CheckpointError: naming the first file that is missing or differs from what was saved.
    """
    manifest = directory / MANIFEST
    if not manifest.is_file():
        return
    try:
        sums = json.loads(manifest.read_text())["sha256"]
        sums = {str(k): str(v) for k, v in sums.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise CheckpointError(f"{manifest}: unreadable manifest") from None
    for name in names:
        file = directory / name
        if name not in sums:
            raise CheckpointError(f"{file}: not listed in {MANIFEST}; it was not saved here")
        if not file.is_file():
            raise CheckpointError(f"checkpoint {directory} is missing {name}")
        if _sha256(file) != sums[name]:
            raise CheckpointError(
                f"{file} has changed since the checkpoint was saved (its SHA-256 differs "
                f"from {MANIFEST}); restore it, or retrain"
            )


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
    """Rebuild config, model (on ``device``, eval mode) and codec from a checkpoint directory.

    Raises:
        CheckpointError: a file is missing, changed since the save, unreadable, or the config,
            vocabulary and weights do not agree; the message names the file.
    """
    path = resolve(path)
    verify(path, FILES)
    cfg = _read_config(path / "config.yaml")
    codec = _read_codec(path / "codec.json")
    check_agreement(cfg, codec, path)
    model = build_model(cfg.model, cfg.data.share_vocab)
    state = with_tied(model, _read_weights(path / "model.safetensors"))
    check_shapes(model, state, path / "model.safetensors")
    model.load_state_dict(state)
    return cfg, model.to(device).eval(), codec


def _read_config(file: Path) -> Config:
    try:
        return config_from_dict(parse_yaml(file.read_text(encoding="utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError):
        raise CheckpointError(f"{file}: not valid YAML") from None
    except ConfigError as err:
        raise CheckpointError(f"{file}: {err}") from None


def _read_codec(file: Path) -> Codec:
    try:
        return Codec.from_dict(json.loads(file.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError, AttributeError, IndexError) as err:
        raise CheckpointError(f"{file}: not a readable codec ({type(err).__name__})") from None


def _read_weights(file: Path) -> dict[str, torch.Tensor]:
    try:
        return load_file(str(file), device="cpu")
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise CheckpointError(f"{file}: not a readable safetensors file ({err})") from None


def tied_names(model: torch.nn.Module) -> dict[str, str]:
    """Names of ``model``'s state that are a weight already named earlier (tied embeddings):
    alias -> first name."""
    first: dict[int, str] = {}
    aliases = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        key = id(tensor)
        if key in first:
            aliases[name] = first[key]
        else:
            first[key] = name
    return aliases


def with_tied(model: torch.nn.Module, state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``state`` with the names of ``model``'s tied weights filled from the first name, as
    ``save_checkpoint`` left them out."""
    for alias, name in tied_names(model).items():
        if alias not in state and name in state:
            state[alias] = state[name]
    return state


def check_agreement(cfg: Config, codec: Codec, path: Path) -> None:
    """The vocabulary sizes and vector widths of ``codec.json`` are those of ``config.yaml``."""
    m = cfg.model
    sides = [("src", codec.source), ("tgt", codec.target)]
    for prefix, side in sides:
        if side.is_tokens:
            key, have = f"{prefix}_vocab", len(side.vocab)
        else:
            key, have = f"{prefix}_dim", side.dim
        if getattr(m, key) != have:
            raise CheckpointError(
                f"{path}: codec.json and config.yaml disagree: model.{key} is "
                f"{getattr(m, key)}, the codec's {have}; they come from different models"
            )
    if codec.copy != m.copy:
        raise CheckpointError(
            f"{path}: codec.json and config.yaml disagree: model.copy is {m.copy}, the "
            f"codec's {codec.copy}"
        )
    cov = codec.covariates.dim if codec.covariates is not None else None
    if m.tgt_cov_dim != cov:
        raise CheckpointError(
            f"{path}: codec.json and config.yaml disagree: model.tgt_cov_dim is "
            f"{m.tgt_cov_dim}, the codec's covariates {cov}"
        )


def check_shapes(model: Seq2Seq, state: dict[str, torch.Tensor], file: Path) -> None:
    """Every tensor the config's model needs is in the weights, with its shape, and no other."""
    want = model.state_dict()
    for name, tensor in want.items():
        if name not in state:
            raise CheckpointError(f"{file}: no tensor {name!r}, which config.yaml's model has")
        if tuple(state[name].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{file}: tensor {name!r} has shape {tuple(state[name].shape)}, config.yaml's "
                f"model needs {tuple(tensor.shape)}; the weights are another model's"
            )
    extra = sorted(set(state) - set(want))
    if extra:
        raise CheckpointError(f"{file}: tensor {extra[0]!r} is not part of config.yaml's model")


def load_trainer_state(path: str | Path) -> dict[str, Any]:
    """The trainer state saved beside the weights (tensors and plain Python values only)."""
    file = resolve(path) / "trainer.pt"
    if not file.is_file():
        raise CheckpointError(f"checkpoint {file.parent} has no trainer state (trainer.pt)")
    verify(file.parent, ["trainer.pt"])
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, OSError, ValueError, pickle.UnpicklingError) as err:
        said = str(err).strip().splitlines()[0].split(". ")[0] if str(err).strip() else ""
        reason = said or type(err).__name__  # torch's first sentence; its advice follows
        raise CheckpointError(f"{file}: not a readable trainer state ({reason})") from None


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
