"""Token vocabulary: a fixed list of strings whose positions are the ids the model sees.

The first four entries are always the special tokens, so their ids are the same constants in every
vocabulary: padding 0, begin-of-sequence 1, end-of-sequence 2, unknown 3.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3
SPECIALS = [PAD, BOS, EOS, UNK]


class Vocab:
    """A bijection between token strings and ids 0..len-1, specials first.

    Args:
        tokens: every token in id order; must start with ``<pad>, <bos>, <eos>, <unk>`` and hold
            no duplicates.
    """

    def __init__(self, tokens: list[str]) -> None:
        tokens = list(tokens)
        if tokens[: len(SPECIALS)] != SPECIALS:
            raise ValueError(
                f"vocabulary must start with the special tokens {SPECIALS}, "
                f"got {tokens[: len(SPECIALS)]}"
            )
        self.tokens = tokens
        self._ids = {tok: i for i, tok in enumerate(tokens)}
        if len(self._ids) != len(tokens):
            duplicates = sorted(tok for tok, n in Counter(tokens).items() if n > 1)
            raise ValueError(f"vocabulary has duplicate tokens: {duplicates[:10]}")

    @classmethod
    def build(
        cls,
        sequences: Iterable[list[str]],
        *,
        max_size: int | None = None,
        min_freq: int = 1,
    ) -> Vocab:
        """Count tokens and keep the frequent ones.

        Order: specials, then descending frequency, ties alphabetical (so the same data always
        gives the same ids). ``max_size`` counts the four specials; ``min_freq`` drops rarer tokens.
        """
        counts = Counter(tok for seq in sequences for tok in seq)
        return cls.from_counts(counts, max_size=max_size, min_freq=min_freq)

    @classmethod
    def from_counts(
        cls, counts: Counter, *, max_size: int | None = None, min_freq: int = 1
    ) -> Vocab:
        """``build`` from token counts already made (a corpus read as a stream)."""
        if max_size is not None and max_size < len(SPECIALS):
            raise ValueError(
                f"max_size must be at least {len(SPECIALS)} (the specials), got {max_size}"
            )
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        counts = Counter(counts)
        for special in SPECIALS:
            counts.pop(special, None)
        ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
        kept = [tok for tok, n in ranked if n >= min_freq]
        if max_size is not None:
            kept = kept[: max_size - len(SPECIALS)]
        return cls(SPECIALS + kept)

    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocab) and self.tokens == other.tokens

    def __repr__(self) -> str:
        return f"Vocab(size={len(self)})"

    def encode(self, tokens: list[str]) -> list[int]:
        """Map tokens to ids; a token not in the vocabulary becomes ``UNK_ID``."""
        return [self._ids.get(tok, UNK_ID) for tok in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """Map ids back to tokens, stopping at the first EOS and skipping PAD and BOS."""
        out = []
        for i in ids:
            i = int(i)
            if i == EOS_ID:
                break
            if i in (PAD_ID, BOS_ID):
                continue
            if not 0 <= i < len(self.tokens):
                raise ValueError(f"id {i} is outside the vocabulary (size {len(self)})")
            out.append(self.tokens[i])
        return out

    def to_dict(self) -> dict:
        """A JSON-serialisable form: ``{"tokens": [...]}``."""
        return {"tokens": list(self.tokens)}

    @classmethod
    def from_dict(cls, d: dict) -> Vocab:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict) or not isinstance(d.get("tokens"), list):
            raise ValueError('vocabulary dict must look like {"tokens": [...]}')
        return cls(d["tokens"])
