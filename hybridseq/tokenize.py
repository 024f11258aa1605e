"""Text to token strings and back: characters, whitespace-separated words, or BPE subwords.

A :class:`Tokenizer` only splits and joins strings; mapping tokens to ids is :class:`Vocab`'s job.
The subword kind wraps a BPE model from the HuggingFace ``tokenizers`` library, trained on the
training texts and stored inside :meth:`Tokenizer.to_dict` so a checkpoint carries it.
"""

from __future__ import annotations

from tokenizers import Tokenizer as HFTokenizer
from tokenizers import decoders, models, pre_tokenizers, trainers

from hybridseq.vocab import UNK

KINDS = ("char", "whitespace", "subword")
SPACE = "▁"  # U+2581, stands in for " " so a space is a visible token


class Tokenizer:
    """Splits text into token strings and joins them back.

    Args:
        kind: one of ``"char"``, ``"whitespace"``, ``"subword"``.
        model: the trained BPE model; required for ``"subword"`` (use :meth:`train`), refused
            otherwise.

    Round trips: ``char`` is exact for text without ``"▁"``; ``whitespace`` normalises runs of
    whitespace to one space; ``subword`` is exact for text without leading whitespace whose
    characters were seen in training (unseen characters come back as ``"<unk>"``).
    """

    def __init__(self, kind: str, model: HFTokenizer | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown tokenizer kind {kind!r}; valid kinds: {', '.join(KINDS)}")
        if kind == "subword" and model is None:
            raise ValueError("a subword tokenizer needs a trained model; use Tokenizer.train")
        if kind != "subword" and model is not None:
            raise ValueError(f"a {kind} tokenizer takes no model")
        self.kind = kind
        self.model = model

    def __repr__(self) -> str:
        return f"Tokenizer({self.kind!r})"

    @classmethod
    def train(cls, kind: str, texts: list[str], vocab_size: int = 8000) -> Tokenizer:
        """Build a tokenizer for ``kind``; only ``"subword"`` learns anything from ``texts``."""
        if kind != "subword":
            return cls(kind)
        if not texts:
            raise ValueError("cannot train a subword tokenizer on no texts")
        return cls("subword", _train_bpe(texts, vocab_size))

    def tokenize(self, text: str) -> list[str]:
        """Split ``text`` into token strings."""
        if self.kind == "char":
            return [SPACE if ch == " " else ch for ch in text]
        if self.kind == "whitespace":
            return text.split()
        return self.model.encode(text).tokens

    def detokenize(self, tokens: list[str]) -> str:
        """Join token strings back into text (inverse of :meth:`tokenize`, see class notes)."""
        if self.kind == "char":
            return "".join(" " if tok == SPACE else tok for tok in tokens)
        if self.kind == "whitespace":
            return " ".join(tokens)
        return self.model.decoder.decode(list(tokens))

    def to_dict(self) -> dict:
        """A JSON-serialisable form; the subword model is embedded as the library's JSON string."""
        if self.kind == "subword":
            return {"kind": self.kind, "model": self.model.to_str()}
        return {"kind": self.kind}

    @classmethod
    def from_dict(cls, d: dict) -> Tokenizer:
        """Inverse of :meth:`to_dict`."""
        if not isinstance(d, dict) or "kind" not in d:
            raise ValueError('tokenizer dict must look like {"kind": ..., ["model": ...]}')
        if d["kind"] == "subword":
            if not isinstance(d.get("model"), str):
                raise ValueError("subword tokenizer dict is missing its 'model' JSON string")
            return cls("subword", HFTokenizer.from_str(d["model"]))
        return cls(d["kind"])


def _train_bpe(texts: list[str], vocab_size: int) -> HFTokenizer:
    """Train a BPE model whose Metaspace pre-tokenizer and decoder make spaces round-trip."""
    model = HFTokenizer(models.BPE(unk_token=UNK))
    model.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPACE)
    model.decoder = decoders.Metaspace(replacement=SPACE)
    # Only <unk> may appear in the BPE output; the other specials are added by Vocab and the
    # batching code, never produced from text.
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=[UNK], show_progress=False)
    model.train_from_iterator(texts, trainer=trainer)
    return model
