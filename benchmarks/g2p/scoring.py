"""Scoring shared by the G2P recipe (``run.py``) and the Phonetisaurus baseline: the test words
with all their references, WER and PER from ``hybridseq.metrics``, and the predictions file.

A word listed on several lines of the test TSV counts once, with every listed pronunciation as
a reference (the same grouping as ``Model.evaluate``).
"""

from __future__ import annotations

from pathlib import Path

from hybridseq import metrics
from hybridseq.data import read_tsv
from hybridseq.predict import group_references

Phones = list[str]


def read_references(path: str | Path) -> tuple[list[str], list[list[Phones]]]:
    """Unique words of a ``word<TAB>phones`` file in first-seen order, and per word its
    reference phone sequences."""
    words, refs = group_references(read_tsv(path))
    return words, [[ref.split() for ref in alternatives] for alternatives in refs]


def score(hyps: list[str], refs: list[list[Phones]]) -> dict[str, float]:
    """WER and PER (percent) of hypotheses (space-separated phones) against their references."""
    tokens = [h.split() for h in hyps]
    return {"wer": metrics.wer(tokens, refs), "per": metrics.per(tokens, refs)}


def write_predictions(path: str | Path, words: list[str], hyps: list[str]) -> None:
    """``word<TAB>phones``, one line per word, in the given order."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{w}\t{h}\n" for w, h in zip(words, hyps, strict=True)))
