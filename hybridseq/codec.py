"""How each side of a pair turns into tensors and back: a tokenizer and a vocabulary for a token
side, a fixed width for a vector side (and for the covariates of the target steps, when the
examples carry them). A checkpoint saves the codec (as JSON) with the model, so a loaded model
reads and writes text exactly as it did in training.

A codec for a copy model (``copy``, ``model.copy``) also gives each source token its id in the
*extended* target vocabulary: its target id where the target vocabulary holds its string, else
V + j, j its place among the source's distinct other tokens (its "OOVs", first seen first).
Targets are encoded in that extended vocabulary too, and ids >= V decode to the source's OOVs,
so a copy model can write a source symbol that neither vocabulary holds."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from hybridseq.data import DataError, refuse_non_finite
from hybridseq.tokenize import Tokenizer
from hybridseq.vocab import BOS_ID, EOS_ID, PAD_ID, SPECIALS, UNK, UNK_ID, Vocab


@dataclass
class Side:
    """One side: ``tokenizer`` and ``vocab`` for tokens, or ``dim`` for vectors."""

    tokenizer: Tokenizer | None = None
    vocab: Vocab | None = None
    dim: int | None = None

    @property
    def is_tokens(self) -> bool:
        return self.vocab is not None

    @classmethod
    def fit_tokens(
        cls,
        kind: str,
        texts: Sequence[str],
        subword_vocab: int,
        max_size: int | None,
        min_freq: int,
    ) -> Side:
        """Train the tokenizer (subword only) and build the vocabulary from training texts."""
        tokenizer = Tokenizer.train(kind, list(texts), subword_vocab)
        vocab = Vocab.build(
            (tokenizer.tokenize(t) for t in texts), max_size=max_size, min_freq=min_freq
        )
        return cls(tokenizer=tokenizer, vocab=vocab)

    def encode(self, item: str | np.ndarray, where: str = "input") -> Tensor:
        """Text -> ids (S,) or array -> float (S, D), with a clear error for a wrong width."""
        if self.is_tokens:
            if not isinstance(item, str):
                raise DataError(f"{where}: expected text for a token model, got {type(item)}")
            ids = self.vocab.encode(self.tokenizer.tokenize(item))
            if not ids:
                raise DataError(f"{where}: empty input")
            return torch.tensor(ids, dtype=torch.long)
        arr = np.asarray(item, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise DataError(
                f"{where}: expected vectors of shape (length, {self.dim}), got {arr.shape}"
            )
        refuse_non_finite(arr, arr, "vectors", where, "values must be finite")
        return torch.from_numpy(np.ascontiguousarray(arr))

    def tokens(self, ids: Sequence[int]) -> list[str]:
        """Ids -> token strings (stops at EOS, drops PAD/BOS)."""
        return self.vocab.decode(ids)

    def text(self, ids: Sequence[int]) -> str:
        """Ids -> detokenised text."""
        return self.tokenizer.detokenize(self.tokens(ids))

    def to_dict(self) -> dict:
        if self.is_tokens:
            return {"tokenizer": self.tokenizer.to_dict(), "vocab": self.vocab.to_dict()}
        return {"dim": self.dim}

    @classmethod
    def from_dict(cls, d: dict) -> Side:
        if "vocab" in d:
            return cls(Tokenizer.from_dict(d["tokenizer"]), Vocab.from_dict(d["vocab"]))
        return cls(dim=int(d["dim"]))


@dataclass
class Codec:
    """Source and target sides, the width of the target steps' covariates if any, and whether
    targets are encoded for a copy model (``copy``: examples become (source, target in the
    extended vocabulary, the source's extended ids) triples; see the module docstring)."""

    source: Side
    target: Side
    covariates: Side | None = None
    copy: bool = False

    def source_oovs(self, text: str) -> list[str]:
        """The source's distinct tokens that the target vocabulary lacks (its special tokens
        included, so a literal "<eos>" in the text is copied as text), first seen first: the
        extended ids V, V + 1, ... in order."""
        tokens = self.source.tokenizer.tokenize(text)
        ids = self.target.vocab.encode(tokens)
        return list(dict.fromkeys(t for t, i in zip(tokens, ids, strict=True) if i < len(SPECIALS)))

    def copy_ids(self, text: str, where: str = "input") -> Tensor:
        """A source text -> each token's id in the extended target vocabulary (S,)."""
        tokens = self.source.tokenizer.tokenize(text)
        if not tokens:
            raise DataError(f"{where}: empty input")
        return torch.tensor(self._extended(tokens, self.source_oovs(text)), dtype=torch.long)

    def _extended(self, tokens: list[str], oovs: list[str]) -> list[int]:
        """Tokens -> extended target ids: the target id, else V + place in ``oovs``, else UNK."""
        v, slot = len(self.target.vocab), {tok: j for j, tok in enumerate(oovs)}
        ids = self.target.vocab.encode(tokens)
        return [
            i if i >= len(SPECIALS) else v + slot[t] if t in slot else UNK_ID
            for t, i in zip(tokens, ids, strict=True)
        ]

    def output_tokens(self, ids: Sequence[int], source: str | None = None) -> list[str]:
        """Output ids -> target token strings (stops at EOS, drops PAD and BOS); a copy
        model's ids >= V are ``source``'s OOVs (``<unk>`` past them)."""
        v = len(self.target.vocab)
        if not self.copy or all(int(i) < v for i in ids):
            return self.target.tokens(ids)
        oovs = self.source_oovs(source or "")
        out = []
        for i in map(int, ids):
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                out.append(self.target.vocab.tokens[i] if i < v else _at(oovs, i - v))
        return out

    def output_text(self, ids: Sequence[int], source: str | None = None) -> str:
        """Output ids -> detokenised text (``output_tokens``)."""
        return self.target.tokenizer.detokenize(self.output_tokens(ids, source))

    def encode_pairs(self, pairs: Sequence[tuple], where: str = "data") -> list[tuple[Tensor, ...]]:
        """(source, target) pairs, or (source, target, covariates) triples for a codec with
        covariates, as tensors."""
        return [self.encode_pair(p, f"{where}: example {i + 1}") for i, p in enumerate(pairs)]

    def encode_pair(self, pair: tuple, where: str) -> tuple[Tensor, ...]:
        """One example; ``where`` starts its error messages. A copy codec gives (source ids,
        target ids in the extended vocabulary, the source's extended ids)."""
        src = self.source.encode(pair[0], f"{where} source")
        if self.copy:
            tgt = self.target.encode(pair[1], f"{where} target")  # checks the target
            tokens = self.target.tokenizer.tokenize(pair[1])
            tgt = torch.tensor(self._extended(tokens, self.source_oovs(pair[0])))
            return src, tgt, self.copy_ids(pair[0], f"{where} source")
        tgt = self.target.encode(pair[1], f"{where} target")
        if self.covariates is None:
            if len(pair) > 2:
                raise DataError(f"{where}: has covariates, but the model takes none")
            return src, tgt
        if len(pair) < 3:
            raise DataError(
                f"{where}: no covariates; the model needs (target length, "
                f"{self.covariates.dim}) covariates with each example"
            )
        cov = self.covariates.encode(pair[2], f"{where} covariates")
        if len(cov) != len(tgt):
            raise DataError(
                f"{where}: covariates have {len(cov)} rows, the target {len(tgt)}; "
                "one row per target step"
            )
        return src, tgt, cov

    def to_dict(self) -> dict:
        d = {"source": self.source.to_dict(), "target": self.target.to_dict()}
        if self.covariates is not None:
            d["covariates"] = self.covariates.to_dict()
        if self.copy:  # left out otherwise: codecs saved before copy models read the same
            d["copy"] = True
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Codec:
        cov = Side.from_dict(d["covariates"]) if "covariates" in d else None
        copy = bool(d.get("copy", False))
        return cls(Side.from_dict(d["source"]), Side.from_dict(d["target"]), cov, copy)


def _at(oovs: list[str], j: int) -> str:
    """The j-th OOV of a source; ``<unk>`` for a slot past them (it has probability 0)."""
    return oovs[j] if j < len(oovs) else UNK
