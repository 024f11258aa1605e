"""Evaluation metrics for token and vector outputs.

Token metrics take plain Python lists:

- ``hyps``: ``list[list[str]]``, one hypothesis token list per item;
- ``refs``: ``list[list[list[str]]]``, per item a non-empty list of alternative reference token
  lists. Several references per source are supported everywhere (G2P dictionaries list several
  pronunciations for one word).

``exact_match`` and ``token_accuracy`` return fractions in [0, 1]; ``wer``, ``per``, ``bleu`` and
``chrf`` return percentages in [0, 100] (PER can exceed 100 when hypotheses are much longer than
their references). Vector metrics (``mse``, ``mae``) take lists of arrays or tensors.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np
import sacrebleu
import torch

from hybridseq import forecast_metrics

Tokens = list[str]
Array = np.ndarray | torch.Tensor

METRICS: dict[str, str] = {
    "exact_match": "fraction (0-1) of hypotheses equal to any of their references",
    "token_accuracy": "fraction (0-1) of first-reference positions predicted correctly",
    "wer": "percentage of items whose hypothesis matches none of the references (G2P WER)",
    "per": "token edit distance to the closest reference over its length, in percent",
    "bleu": "corpus BLEU (sacrebleu) on detokenised strings",
    "chrf": "corpus chrF (sacrebleu) on detokenised strings",
}


def edit_distance(a: Sequence[str], b: Sequence[str]) -> int:
    """Levenshtein distance between token sequences: the fewest insertions, deletions and
    substitutions turning ``a`` into ``b``. O(len(a) * len(b)) time, O(len(b)) memory."""
    previous = list(range(len(b) + 1))  # distances from a[:0] to every prefix of b
    for i, token_a in enumerate(a, start=1):
        current = [i]
        for j, token_b in enumerate(b, start=1):
            substitute = previous[j - 1] + (token_a != token_b)
            current.append(min(previous[j] + 1, current[j - 1] + 1, substitute))
        previous = current
    return previous[-1]


def exact_match(hyps: list[Tokens], refs: list[list[Tokens]]) -> float:
    """Fraction (0-1) of hypotheses equal to at least one of their references."""
    _check_token_inputs(hyps, refs)
    return sum(hyp in alternatives for hyp, alternatives in zip(hyps, refs, strict=True)) / len(
        hyps
    )


def token_accuracy(hyps: list[Tokens], refs: list[list[Tokens]]) -> float:
    """Position-wise accuracy (0-1) against each item's first reference.

    Counts positions ``i < len(ref)`` where ``hyp[i] == ref[i]`` and divides by the total
    reference length; positions a short hypothesis lacks count as wrong, and extra hypothesis
    tokens past the reference end are ignored.
    """
    _check_token_inputs(hyps, refs)
    total = sum(len(alternatives[0]) for alternatives in refs)
    if total == 0:
        raise ValueError("token_accuracy is undefined: all first references are empty")
    correct = sum(
        sum(h == r for h, r in zip(hyp, alternatives[0], strict=False))
        for hyp, alternatives in zip(hyps, refs, strict=True)
    )
    return correct / total


def wer(hyps: list[Tokens], refs: list[list[Tokens]]) -> float:
    """Word error rate in the G2P sense: percentage (0-100) of items whose hypothesis matches
    none of the references (one "word" is one item, not one token)."""
    return 100.0 * (1.0 - exact_match(hyps, refs))


def per(hyps: list[Tokens], refs: list[list[Tokens]]) -> float:
    """Phoneme (token) error rate in percent, following Sequitur's convention.

    For each item the closest reference is the one with the smallest edit distance to the
    hypothesis (on ties, the first such reference in ``refs[i]``). PER is the sum of those
    distances divided by the sum of the closest references' lengths, times 100.
    """
    _check_token_inputs(hyps, refs)
    errors = 0
    length = 0
    for hyp, alternatives in zip(hyps, refs, strict=True):
        distances = [edit_distance(hyp, ref) for ref in alternatives]
        best = distances.index(min(distances))  # index() picks the first minimum
        errors += distances[best]
        length += len(alternatives[best])
    if length == 0:
        raise ValueError("per is undefined: every closest reference is empty")
    return 100.0 * errors / length


def bleu(hyp_texts: list[str], ref_texts: list[list[str]]) -> float:
    """Corpus BLEU (sacrebleu defaults, 13a tokenisation) of detokenised strings, 0-100.

    ``ref_texts[i]`` lists the alternative reference strings of item ``i``; see
    ``_reference_streams`` for how differing reference counts are handled.
    """
    _check_text_inputs(hyp_texts, ref_texts)
    return float(sacrebleu.corpus_bleu(hyp_texts, _reference_streams(ref_texts)).score)


def chrf(hyp_texts: list[str], ref_texts: list[list[str]]) -> float:
    """Corpus chrF (sacrebleu defaults) of detokenised strings, 0-100; arguments as ``bleu``."""
    _check_text_inputs(hyp_texts, ref_texts)
    return float(sacrebleu.corpus_chrf(hyp_texts, _reference_streams(ref_texts)).score)


def _reference_streams(ref_texts: list[list[str]]) -> list[list[str]]:
    """Transpose per-item reference lists into sacrebleu's reference streams.

    sacrebleu wants ``streams[k][i]`` = k-th reference of item i, with every stream as long as
    the corpus. Items with fewer references than the maximum are padded by repeating their first
    reference; a duplicate reference changes neither BLEU (clipped counts take the maximum over
    references) nor chrF (best reference per sentence).
    """
    width = max(len(alternatives) for alternatives in ref_texts)
    padded = [alts + [alts[0]] * (width - len(alts)) for alts in ref_texts]
    return [list(stream) for stream in zip(*padded, strict=True)]


def mse(hyps: Sequence[Array], refs: Sequence[Array]) -> float:
    """Mean squared error over all elements of all items (items may differ in shape, but each
    hypothesis must have its reference's shape)."""
    diffs = _differences(hyps, refs)
    return float(sum(np.square(d).sum() for d in diffs) / sum(d.size for d in diffs))


def mae(hyps: Sequence[Array], refs: Sequence[Array]) -> float:
    """Mean absolute error over all elements of all items; arguments as ``mse``."""
    diffs = _differences(hyps, refs)
    return float(sum(np.abs(d).sum() for d in diffs) / sum(d.size for d in diffs))


def mape(hyps: Sequence[Array], refs: Sequence[Array]) -> float:
    """Mean absolute percentage error, in %, over the elements whose reference is not 0
    (where it is undefined; NaN if none is); arguments as ``mse``."""
    h, y = _pooled(hyps, refs)
    kept = y != 0
    return forecast_metrics.mape(y[kept], h[kept]) if kept.any() else float("nan")


def smape(hyps: Sequence[Array], refs: Sequence[Array]) -> float:
    """Symmetric MAPE, in %, over all elements (``forecast_metrics.smape``); arguments as
    ``mse``."""
    h, y = _pooled(hyps, refs)
    return forecast_metrics.smape(y, h)


def _pooled(hyps: Sequence[Array], refs: Sequence[Array]) -> tuple[np.ndarray, np.ndarray]:
    """Every element of every item, flattened: hypotheses and references (M,), (M,), after
    the checks of ``_differences``."""
    _differences(hyps, refs)
    flat = [np.concatenate([_as_array(x).ravel() for x in side]) for side in (hyps, refs)]
    return flat[0], flat[1]


def _as_array(x: Array) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _differences(hyps: Sequence[Array], refs: Sequence[Array]) -> list[np.ndarray]:
    """Per-item ``hyp - ref`` as float64 arrays, after checking counts and shapes."""
    if len(hyps) == 0:
        raise ValueError("no hypotheses given; cannot compute a vector metric of empty input")
    if len(hyps) != len(refs):
        raise ValueError(f"got {len(hyps)} hypotheses but {len(refs)} references")
    diffs = []
    for i, (hyp, ref) in enumerate(zip(hyps, refs, strict=True)):
        h, r = _as_array(hyp), _as_array(ref)
        if h.shape != r.shape:
            raise ValueError(f"item {i}: hypothesis shape {h.shape} != reference shape {r.shape}")
        diffs.append(h - r)
    if sum(d.size for d in diffs) == 0:
        raise ValueError("all items are empty; cannot compute a vector metric")
    return diffs


def compute(
    names: list[str],
    hyps: list[Tokens],
    refs: list[list[Tokens]],
    *,
    detok_hyps: list[str] | None = None,
    detok_refs: list[list[str]] | None = None,
) -> dict[str, float]:
    """Compute the named token metrics (keys of ``METRICS``), returning ``{name: value}``.

    ``bleu`` and ``chrf`` score the detokenised strings ``detok_hyps`` / ``detok_refs`` (same
    item order as ``hyps`` / ``refs``); the other metrics score the token lists. All names are
    checked before anything is computed, so a typo fails fast. An empty ``names`` gives ``{}``.
    """
    for name in names:
        _check_metric_name(name)
    _check_token_inputs(hyps, refs)
    needs_text = [name for name in names if name in ("bleu", "chrf")]
    if needs_text and (detok_hyps is None or detok_refs is None):
        raise ValueError(f"metrics {needs_text} need detok_hyps and detok_refs, which are missing")
    results = {}
    for name in names:
        if name == "exact_match":
            results[name] = exact_match(hyps, refs)
        elif name == "token_accuracy":
            results[name] = token_accuracy(hyps, refs)
        elif name == "wer":
            results[name] = wer(hyps, refs)
        elif name == "per":
            results[name] = per(hyps, refs)
        elif name == "bleu":
            results[name] = bleu(detok_hyps, detok_refs)
        else:  # chrf
            results[name] = chrf(detok_hyps, detok_refs)
    return results


def _check_metric_name(name: str) -> None:
    if name in METRICS:
        return
    close = difflib.get_close_matches(name, list(METRICS), n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"unknown metric {name!r}; valid metrics are {', '.join(METRICS)}{hint}")


def _check_token_inputs(hyps: list, refs: list) -> None:
    """Reject empty input, mismatched counts and items without any reference."""
    if len(hyps) == 0:
        raise ValueError("no hypotheses given; cannot compute a metric of empty input")
    if len(hyps) != len(refs):
        raise ValueError(f"got {len(hyps)} hypotheses but {len(refs)} reference lists")
    for i, alternatives in enumerate(refs):
        if len(alternatives) == 0:
            raise ValueError(f"item {i} has no reference; every item needs at least one")


def _check_text_inputs(hyp_texts: list[str], ref_texts: list[list[str]]) -> None:
    """As ``_check_token_inputs``, plus a guard against passing one string per item instead of a
    list of reference strings (which would silently score single characters)."""
    _check_token_inputs(hyp_texts, ref_texts)
    for i, alternatives in enumerate(ref_texts):
        if isinstance(alternatives, str):
            raise ValueError(f"ref_texts[{i}] is a string; expected a list of reference strings")
