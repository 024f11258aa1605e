"""From the data config to encoded splits: read files or generate a synthetic task, fit the
codec on the training side only, and fill the model's data-derived sizes."""

from __future__ import annotations

import dataclasses
import random
from dataclasses import dataclass
from typing import Any

from torch import Tensor

from hybridseq import synthetic
from hybridseq.codec import Codec, Side
from hybridseq.config import Config, ConfigError, DataConfig
from hybridseq.data import DataError, read_pairs_located

SPLITS = ("train", "valid", "test")


@dataclass
class Split:
    """Raw pairs (text or arrays) and their encoded tensors, index-aligned."""

    pairs: list[tuple[Any, ...]]  # (source, target), or (source, target, covariates)
    items: list[tuple[Tensor, ...]]


def parse_paths(spec: str) -> str | tuple[str, str]:
    """ "a.tsv" -> "a.tsv"; "src.txt,tgt.txt" -> a parallel pair."""
    parts = [p.strip() for p in spec.split(",")]
    return (parts[0], parts[1]) if len(parts) == 2 else spec


def _synthetic(cfg: DataConfig) -> dict[str, list]:
    """Train, valid and test from the synthetic task, with held-out sources unseen in train."""
    s = cfg.synth
    sizes = {"train": s.n_train, "valid": s.n_valid, "test": s.n_test}
    out: dict[str, list] = {}
    if s.task in synthetic.VECTOR_TASKS:
        for i, name in enumerate(SPLITS):
            kw = dict(src_len=s.src_len, tgt_len=s.tgt_len, dim=s.dim, noise=s.noise)
            out[name] = synthetic.make_vector_pairs(s.task, sizes[name], seed=s.seed + i, **kw)
        return out
    if s.task not in synthetic.TOKEN_TASKS:
        valid = ", ".join(synthetic.TOKEN_TASKS + synthetic.VECTOR_TASKS)
        raise ConfigError(f"data.synth.task: unknown task {s.task!r} (valid: {valid})")
    seen: set[str] = set()
    for i, name in enumerate(SPLITS):
        kw = dict(min_len=s.min_len, max_len=s.max_len, vocab=s.vocab)
        # draw extra so that dropping sources already used still leaves the requested count
        pairs = synthetic.make_token_pairs(s.task, 2 * sizes[name] + 10, seed=s.seed + i, **kw)
        fresh = [p for p in pairs if p[0] not in seen]
        fresh = list(dict(fresh).items())[: sizes[name]]  # unique sources
        seen.update(src for src, _ in fresh)
        out[name] = fresh
    return out


def side_length(value: Any, tokenize: str) -> int:
    """The length of one side of an example before its codec exists: tokens for ``char`` and
    ``whitespace``, words for ``subword`` (a lower bound: a word is one subword or more),
    rows for vectors."""
    if not isinstance(value, str):
        return len(value)
    return len(value) if tokenize == "char" else len(value.split())


def check_lengths(pairs: list[tuple[Any, ...]], where: list[str], cfg: DataConfig) -> None:
    """Refuse, naming its ``path:line``, the first example with a side longer than
    ``data.max_len``: found when the data is read, not at the training step that meets it."""
    for loc, pair in zip(where, pairs, strict=True):
        for side, value, kind in (
            ("source", pair[0], cfg.src_tokenize),
            ("target", pair[1], cfg.tgt_tokenize),
        ):
            n = side_length(value, kind)
            if n > cfg.max_len:
                unit = "vectors" if not isinstance(value, str) else "tokens"
                raise DataError(
                    f"{loc}: the {side} has {n:,} {unit}, more than data.max_len "
                    f"({cfg.max_len:,}); shorten or drop the line, or raise data.max_len"
                )


def _read_checked(spec: str, cfg: DataConfig) -> list:
    pairs, where = read_pairs_located(parse_paths(spec))
    check_lengths(pairs, where, cfg)
    return pairs


def read_splits(cfg: DataConfig, seed: int) -> dict[str, list]:
    """Raw pairs per split, each side at most ``data.max_len`` long. Without a validation
    file, 5 % of train (at most 1,000 pairs, chosen with ``seed``) is held out for
    validation."""
    if cfg.train is None:
        return _synthetic(cfg)
    out = {"train": _read_checked(cfg.train, cfg)}
    for name in ("valid", "test"):
        spec = getattr(cfg, name)
        out[name] = _read_checked(spec, cfg) if spec else []
    if not out["valid"]:
        pairs = out["train"]
        order = list(range(len(pairs)))
        random.Random(seed).shuffle(order)
        n = min(1000, max(1, len(pairs) // 20)) if len(pairs) > 1 else 0
        held = set(order[:n])
        out["valid"] = [pairs[i] for i in sorted(held)]
        out["train"] = [p for i, p in enumerate(pairs) if i not in held]
    return out


def fit_codec(cfg: DataConfig, train_pairs: list, copy: bool = False) -> Codec:
    """Tokenizers and vocabularies from the training pairs (or widths for vectors and for the
    covariates of triples); with ``data.share_vocab`` one tokenizer and vocabulary for both
    sides; ``copy``: a codec for a copy model (``model.copy``)."""

    def side(values: list, kind: str) -> Side:
        if isinstance(values[0], str):
            return Side.fit_tokens(kind, values, cfg.subword_vocab, cfg.max_vocab, cfg.min_freq)
        return Side(dim=int(values[0].shape[1]))

    if not train_pairs:
        raise ConfigError("data.train: no training pairs")
    first = train_pairs[0]
    sources, targets = [p[0] for p in train_pairs], [p[1] for p in train_pairs]
    if cfg.share_vocab:
        if not (isinstance(first[0], str) and isinstance(first[1], str)):
            raise ConfigError("data.share_vocab: only for token sources and targets")
        shared = side(sources + targets, cfg.src_tokenize)
        return Codec(shared, shared, None, copy)
    return Codec(
        side(sources, cfg.src_tokenize),
        side(targets, cfg.tgt_tokenize),
        Side(dim=int(first[2].shape[1])) if len(first) > 2 else None,
        copy,
    )


def with_data_sizes(cfg: Config, codec: Codec, train: list[tuple[Tensor, ...]]) -> Config:
    """A copy of ``cfg`` with vocabulary sizes / vector widths (and the vector rollout length)
    taken from the data; a size the user set that disagrees with the data is an error."""
    m = cfg.model
    sizes = {
        "src_vocab": len(codec.source.vocab) if codec.source.is_tokens else None,
        "src_dim": codec.source.dim,
        "tgt_vocab": len(codec.target.vocab) if codec.target.is_tokens else None,
        "tgt_dim": codec.target.dim,
        "tgt_cov_dim": codec.covariates.dim if codec.covariates is not None else None,
    }
    for key, value in sizes.items():
        given = getattr(m, key)
        if given is not None and value is not None and given != value:
            raise ConfigError(f"model.{key}: config says {given}, the data has {value}")
    model = dataclasses.replace(m, **sizes)
    decode = cfg.decode
    if not codec.target.is_tokens and decode.steps is None:
        decode = dataclasses.replace(decode, steps=max(len(item[1]) for item in train))
    return dataclasses.replace(cfg, model=model, decode=decode)


def filter_lengths(split: Split, cfg: DataConfig) -> Split:
    """Drop training pairs longer than data.max_src_len / max_tgt_len."""
    keep = [
        i
        for i, (s, t, *_) in enumerate(split.items)
        if (cfg.max_src_len is None or len(s) <= cfg.max_src_len)
        and (cfg.max_tgt_len is None or len(t) <= cfg.max_tgt_len)
    ]
    return Split([split.pairs[i] for i in keep], [split.items[i] for i in keep])
