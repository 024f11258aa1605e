"""Corpora larger than memory: a token corpus tokenised once into memory-mapped id arrays, which
training reads batch by batch, so resident memory does not grow with the corpus.

    hybridseq prepare CONFIG --out DIR      # then data.train: DIR

``prepare`` streams ``data.train`` (a TSV or a pair of line-aligned text files) twice: once to
fit the tokenizers and count the vocabularies (with the config's data settings, as training
would), once to write, per side, the int32 ids of every example one after another
(``source.bin``, ``target.bin``) and where each example starts (``source.idx``,
``target.idx``: int64, one more than the examples), as fairseq binarises. ``codec.json`` holds
the tokenizers and vocabularies, ``prepared.json`` the counts and the data section it was
made with. A subword tokenizer is trained on the texts of its side held in memory (the BPE
trainer needs them); character and whitespace tokenizers need no such pass.

Training on a prepared directory takes ``data.valid`` (a file: validation decodes its text)
and maps the arrays with ``numpy.memmap``: an example is read when a batch needs it.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from hybridseq.codec import Codec, Side
from hybridseq.config import ConfigError, DataConfig
from hybridseq.corpus import Split, check_lengths, parse_paths
from hybridseq.data import DataError, input_lines, read_pairs_located
from hybridseq.tokenize import Tokenizer
from hybridseq.vocab import Vocab

MANIFEST = "prepared.json"
SIDES = ("source", "target")


def is_prepared(spec: str | None) -> bool:
    """Whether ``data.train`` names a prepared directory."""
    return spec is not None and (Path(spec) / MANIFEST).is_file()


def _text_pairs(spec: str) -> Iterator[tuple[str, tuple[str, str]]]:
    """``(path:line, (source, target))`` of a TSV or two line-aligned files, as read."""
    paths = parse_paths(spec)
    if isinstance(paths, tuple):
        with input_lines(paths[0]) as src, input_lines(paths[1]) as tgt:
            for lineno, pair in enumerate(zip(src, tgt, strict=False), start=1):
                yield f"{paths[0]}:{lineno}", _sides(pair, f"{paths[0]}:{lineno}")
        return
    if Path(paths).suffix.lower() not in (".tsv", ".txt"):
        raise DataError(f"{paths}: prepare takes token text (.tsv, .txt, or src,tgt files)")
    with input_lines(paths) as lines:
        for lineno, line in enumerate(lines, start=1):
            if line.strip():
                cols = line.split("\t")
                if len(cols) != 2:
                    raise DataError(f"{paths}:{lineno}: expected 2 tab-separated columns")
                yield f"{paths}:{lineno}", _sides(cols, f"{paths}:{lineno}")


def _sides(pair: Sequence[str], where: str) -> tuple[str, str]:
    source, target = pair[0].strip(), pair[1].strip()
    if not source or not target:
        raise DataError(f"{where}: empty {'source' if not source else 'target'}")
    return source, target


def fit_sides(cfg: DataConfig) -> Codec:
    """Tokenizers and vocabularies of ``data.train``, read as a stream (a subword side's
    texts are held for its trainer)."""
    kinds = (cfg.src_tokenize, cfg.tgt_tokenize)
    texts: tuple[list[str], list[str]] = ([], [])
    if "subword" in kinds:
        for _, pair in _text_pairs(cfg.train):
            for k, text in enumerate(pair):
                if kinds[k] == "subword":
                    texts[k].append(text)
    tokenizers = [
        Tokenizer.train(kind, texts[k], cfg.subword_vocab) for k, kind in enumerate(kinds)
    ]
    counts: tuple[Counter, Counter] = (Counter(), Counter())
    for _, pair in _text_pairs(cfg.train):
        for k, text in enumerate(pair):
            counts[k].update(tokenizers[k].tokenize(text))
    sides = [
        Side(
            tokenizer=tok, vocab=Vocab.from_counts(c, max_size=cfg.max_vocab, min_freq=cfg.min_freq)
        )
        for tok, c in zip(tokenizers, counts, strict=True)
    ]
    return Codec(sides[0], sides[1], None)


def prepare(cfg: DataConfig, out: str | Path, log=print) -> Path:
    """Tokenise ``cfg.train`` into ``out``: codec.json, the id arrays and their offsets."""
    if cfg.train is None or is_prepared(cfg.train):
        raise ConfigError("data.train: prepare needs a text file (TSV or src,tgt files)")
    if cfg.share_vocab:
        raise ConfigError("data.share_vocab: prepare fits separate vocabularies; train from text")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    codec = fit_sides(cfg)
    (out / "codec.json").write_text(json.dumps(codec.to_dict()))
    n = _write_ids(cfg, codec, out)
    manifest = {"examples": n, "data": {k: v for k, v in vars(cfg).items() if k != "synth"}}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2))
    log(f"prepared {n:,} pairs of {cfg.train} in {out}")
    return out


def _write_ids(cfg: DataConfig, codec: Codec, out: Path) -> int:
    """Stream the examples' ids into ``{side}.bin`` and their starts into ``{side}.idx``,
    refusing a side longer than ``data.max_len`` with its file and line."""
    files = {s: (out / f"{s}.bin").open("wb") for s in SIDES}
    offsets: dict[str, list[int]] = {s: [0] for s in SIDES}
    sides = (codec.source, codec.target)
    try:
        for where, pair in _text_pairs(cfg.train):
            for s, side, text in zip(SIDES, sides, pair, strict=True):
                ids = side.vocab.encode(side.tokenizer.tokenize(text))
                if cfg.max_len is not None and len(ids) > cfg.max_len:
                    limit = f"more than data.max_len ({cfg.max_len:,})"
                    raise DataError(f"{where}: the {s} has {len(ids):,} tokens, {limit}")
                files[s].write(np.asarray(ids, dtype=np.int32).tobytes())
                offsets[s].append(offsets[s][-1] + len(ids))
    finally:
        for f in files.values():
            f.close()
    for s in SIDES:
        np.asarray(offsets[s], dtype=np.int64).tofile(out / f"{s}.idx")
    return len(offsets["source"]) - 1


class MappedItems(Sequence):
    """A prepared corpus as training's items: item i is (source ids (S,), target ids (T,)),
    long tensors read from the memory maps when asked for; ``keep`` selects examples."""

    def __init__(self, folder: str | Path, keep: np.ndarray | None = None) -> None:
        folder = Path(folder)
        self.ids = {s: np.memmap(folder / f"{s}.bin", dtype=np.int32, mode="r") for s in SIDES}
        self.starts = {s: np.fromfile(folder / f"{s}.idx", dtype=np.int64) for s in SIDES}
        n = len(self.starts["source"]) - 1
        self.keep = np.arange(n, dtype=np.int64) if keep is None else keep

    def __len__(self) -> int:
        return len(self.keep)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        j = int(self.keep[i])
        return tuple(  # type: ignore[return-value]
            torch.from_numpy(
                self.ids[s][self.starts[s][j] : self.starts[s][j + 1]].astype(np.int64)
            )
            for s in SIDES
        )

    def lengths(self, side: str) -> np.ndarray:
        """Every kept example's length on ``side`` (tokens, no BOS/EOS)."""
        return np.diff(self.starts[side])[self.keep]

    def within(self, max_src: int | None, max_tgt: int | None) -> MappedItems:
        """The examples no longer than the limits (data.max_src_len / max_tgt_len)."""
        ok = np.ones(len(self.keep), dtype=bool)
        if max_src is not None:
            ok &= self.lengths("source") <= max_src
        if max_tgt is not None:
            ok &= self.lengths("target") <= max_tgt
        kept = MappedItems.__new__(MappedItems)
        kept.ids, kept.starts, kept.keep = self.ids, self.starts, self.keep[ok]
        return kept


def load_prepared(folder: str | Path) -> tuple[Codec, MappedItems]:
    folder = Path(folder)
    codec = Codec.from_dict(json.loads((folder / "codec.json").read_text()))
    return codec, MappedItems(folder)


def prepared_splits(cfg: DataConfig, codec: Codec | None) -> tuple[Codec, dict[str, Split]]:
    """The codec (the prepared one, unless a resumed run brings its own) and the splits of a
    config whose ``data.train`` is a prepared directory: training mapped, validation and
    test read from their files."""
    prepared_codec, items = load_prepared(cfg.train)
    codec = codec or prepared_codec
    if not cfg.valid:
        raise ConfigError("data.valid: training on a prepared corpus needs a validation file")
    splits = {"train": Split([], items.within(cfg.max_src_len, cfg.max_tgt_len))}
    for name in ("valid", "test"):
        spec = getattr(cfg, name)
        if spec:
            pairs, where = read_pairs_located(parse_paths(spec))
            check_lengths(pairs, where, cfg)
            splits[name] = Split(pairs, codec.encode_pairs(pairs, f"{name} data"))
    return codec, splits
