"""Evaluation metrics, and the one table that names them all (``TABLE``).

Every metric the project computes is a row of ``TABLE``: its name (the one spelling that
configs, ``evaluate``, validation, checkpoint selection, ``forecast evaluate`` and the recipes
use), whether lower is better, and the function for each kind of output it applies to:

- ``tokens``: token outputs, ``fn(hyps, refs)`` (``bleu``/``chrf`` score detokenised text);
- ``vectors``: vector outputs pooled over items, ``fn(hyps, refs)``, or with
  ``needs_history`` ``fn(hyps, refs, histories, period)``;
- ``series``: one forecast series, ``fn(forecast, actual)`` or with ``needs_history``
  ``fn(forecast, actual, history, period)`` (``forecast_metrics``), averaged over series.

Predictions always come first, references second.

Token metrics take plain Python lists:

- ``hyps``: ``list[list[str]]``, one hypothesis token list per item;
- ``refs``: ``list[list[list[str]]]``, per item a non-empty list of alternative reference token
  lists. Several references per source are supported everywhere (G2P dictionaries list several
  pronunciations for one word).

``exact_match`` and ``token_accuracy`` return fractions in [0, 1]; ``ser`` (and its G2P name
``wer``), ``per``, ``word_wer``, ``bleu`` and ``chrf`` return percentages in [0, 100] (PER and
word WER can exceed 100 when hypotheses are much longer than their references). Vector metrics
take lists of arrays (or tensors) of equal shapes.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import sacrebleu

from hybridseq import forecast_metrics

Tokens = list[str]
Array = np.ndarray  # or anything np.asarray takes, a CPU tensor included


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
    """Sequence error rate: percentage (0-100) of items whose hypothesis matches none of the
    references. G2P calls it word error rate (one "word" is one item, not one token), hence the
    name; ``word_wer`` is the word error rate of ASR and MT."""
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


def word_wer(hyp_texts: list[str], ref_texts: list[list[str]]) -> float:
    """Word error rate in %, as ASR and MT read it: the word substitutions, deletions and
    insertions (``jiwer``, words split on whitespace) summed over items, over the summed word
    counts of the references. Each item is scored against its closest reference, the one
    needing the fewest edits (on ties the first), as ``per`` does for tokens.

    Needs ``jiwer``, the ``text`` extra; arguments as ``bleu``."""
    try:
        import jiwer
    except ImportError:
        raise ValueError("metric 'word_wer' needs jiwer: pip install 'hybridseq[text]'") from None
    _check_text_inputs(hyp_texts, ref_texts)
    errors, words = 0, 0
    for hyp, alternatives in zip(hyp_texts, ref_texts, strict=True):
        scored = []
        for ref in alternatives:
            o = jiwer.process_words(ref, hyp)
            edits = o.substitutions + o.deletions + o.insertions
            scored.append((edits, o.hits + o.substitutions + o.deletions))
        best = min(scored, key=lambda pair: pair[0])  # min keeps the first of equals
        errors, words = errors + best[0], words + best[1]
    if words == 0:
        raise ValueError("word_wer is undefined: every closest reference is empty")
    return 100.0 * errors / words


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


def rmse(hyps: Sequence[Array], refs: Sequence[Array]) -> float:
    """Root mean squared error over all elements of all items; arguments as ``mse``."""
    return float(np.sqrt(mse(hyps, refs)))


def mase(
    hyps: Sequence[Array], refs: Sequence[Array], histories: Sequence[Array], period: int = 1
) -> float:
    """Mean absolute scaled error (``forecast_metrics.mase``) per item and variable, averaged
    over those where it is defined: hyps and refs (T, D) per item, histories (S, >= D), the
    past of each item whose first D columns are the predicted variables."""
    _differences(hyps, refs)
    values = []
    for h, y, x in zip(hyps, refs, histories, strict=True):
        h2, y2, x2 = _columns(h), _columns(y), _columns(x)
        values += [
            forecast_metrics.mase(h2[:, d], y2[:, d], x2[:, d], period) for d in range(h2.shape[1])
        ]
    return _nanmean(values)


def mape(hyps: Sequence[Array], refs: Sequence[Array]) -> float:
    """Mean absolute percentage error, in %, over the elements whose reference is not 0
    (where it is undefined; NaN if none is); arguments as ``mse``."""
    h, y = _pooled(hyps, refs)
    kept = y != 0
    return forecast_metrics.mape(h[kept], y[kept]) if kept.any() else float("nan")


def smape(hyps: Sequence[Array], refs: Sequence[Array]) -> float:
    """Symmetric MAPE, in %, over all elements (``forecast_metrics.smape``); arguments as
    ``mse``."""
    h, y = _pooled(hyps, refs)
    return forecast_metrics.smape(h, y)


def _pooled(hyps: Sequence[Array], refs: Sequence[Array]) -> tuple[np.ndarray, np.ndarray]:
    """Every element of every item, flattened: hypotheses and references (M,), (M,), after
    the checks of ``_differences``."""
    _differences(hyps, refs)
    flat = [np.concatenate([_as_array(x).ravel() for x in side]) for side in (hyps, refs)]
    return flat[0], flat[1]


def _as_array(x: Array) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, possibly on a GPU or in half precision
        x = x.detach().cpu().double().numpy()
    return np.asarray(x, dtype=np.float64)


def _nanmean(values: Sequence[float]) -> float:
    """The mean of the defined (non-NaN) values; NaN if none is."""
    finite = [v for v in values if not np.isnan(v)]
    return float(np.mean(finite)) if finite else float("nan")


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


# --------------------------------------------------------------------------- the table

TOKENS, VECTORS, SERIES = "tokens", "vectors", "series"


@dataclass(frozen=True)
class Metric:
    """One row of the metric table: a name, its direction and a function per kind of output
    it applies to (None where it does not)."""

    name: str
    lower_is_better: bool
    about: str
    tokens: Callable | None = None  # (hyps, refs): token lists, or detokenised texts
    vectors: Callable | None = None  # (hyps, refs[, histories, period]), pooled over items
    series: Callable | None = None  # (forecast, actual[, history, period]) of one series
    text: bool = False  # a token metric of the detokenised strings (sacrebleu's)
    needs_history: bool = False  # needs the values before the forecast (MASE's scale)
    label: str = ""  # the forecasting literature's spelling, for the recipes' tables

    @property
    def kinds(self) -> tuple[str, ...]:
        """The kinds of output this metric scores; ``loss`` scores every model."""
        fns = {TOKENS: self.tokens, VECTORS: self.vectors, SERIES: self.series}
        return tuple(k for k, fn in fns.items() if fn is not None) or (TOKENS, VECTORS)


_F = forecast_metrics
TABLE: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("loss", True, "teacher-forced validation loss (training's own)"),
        Metric(
            "exact_match", False, "fraction (0-1) of outputs equal to any reference", exact_match
        ),
        Metric(
            "token_accuracy",
            False,
            "fraction (0-1) of first-reference positions right",
            token_accuracy,
        ),
        Metric("ser", True, "sequence error rate: % of outputs matching no reference", wer),
        Metric("wer", True, "G2P word error rate: ser under its G2P name (one word an item)", wer),
        Metric("per", True, "token edit distance to the closest reference, in %", per),
        Metric("bleu", False, "corpus BLEU (sacrebleu), detokenised", bleu, text=True),
        Metric("chrf", False, "corpus chrF (sacrebleu), detokenised", chrf, text=True),
        Metric(
            "word_wer",
            True,
            "word error rate (jiwer), % of the closest reference's words; the text extra",
            word_wer,
            text=True,
        ),
        Metric("mse", True, "mean squared error", vectors=mse),
        Metric("mae", True, "mean absolute error", vectors=mae, series=_F.mae, label="MAE"),
        Metric("rmse", True, "root mean squared error", vectors=rmse, series=_F.rmse, label="RMSE"),
        Metric(
            "mape",
            True,
            "mean absolute percentage error (zero references left out)",
            vectors=mape,
            series=_F.mape,
            label="MAPE",
        ),
        Metric(
            "smape",
            True,
            "symmetric MAPE, 0-200 (Makridakis & Hibon 2000)",
            vectors=smape,
            series=_F.smape,
            label="sMAPE",
        ),
        Metric(
            "mase",
            True,
            "MAE over the history's seasonal-naive MAE (Hyndman & Koehler 2006)",
            vectors=mase,
            series=_F.mase,
            needs_history=True,
            label="MASE",
        ),
    )
}
SERIES_METRICS = tuple(name for name, m in TABLE.items() if m.series is not None)


def metric(name: str, kind: str | None = None, where: str = "metric") -> Metric:
    """The table's row ``name``; a ValueError naming the closest name for a typo, or saying
    which metrics apply when ``name`` does not score ``kind``."""
    if name not in TABLE:
        close = [name.lower()] if name.lower() in TABLE else []
        close = close or difflib.get_close_matches(name, list(TABLE), n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"{where}: unknown metric {name!r}{hint} (valid: {', '.join(TABLE)})")
    if kind is not None and kind not in TABLE[name].kinds:
        valid = ", ".join(n for n, m in TABLE.items() if kind in m.kinds)
        raise ValueError(f"{where}: {name!r} does not score {kind} outputs (valid: {valid})")
    return TABLE[name]


def lower_is_better(name: str) -> bool:
    return metric(name).lower_is_better


def compute(
    names: Sequence[str],
    hyps: list[Tokens],
    refs: list[list[Tokens]],
    *,
    detok_hyps: list[str] | None = None,
    detok_refs: list[list[str]] | None = None,
) -> dict[str, float]:
    """The named token metrics, ``{name: value}``. ``bleu`` and ``chrf`` score the
    detokenised strings ``detok_hyps`` / ``detok_refs`` (same item order as ``hyps`` /
    ``refs``); the others the token lists. All names are checked before anything is computed,
    so a typo fails fast. An empty ``names`` gives ``{}``."""
    rows = [metric(name, TOKENS) for name in names]
    _check_token_inputs(hyps, refs)
    needs_text = [m.name for m in rows if m.text]
    if needs_text and (detok_hyps is None or detok_refs is None):
        raise ValueError(f"metrics {needs_text} need detok_hyps and detok_refs, which are missing")
    return {
        m.name: m.tokens(detok_hyps, detok_refs) if m.text else m.tokens(hyps, refs)
        for m in rows
        if m.name != "loss"
    }


def compute_vectors(
    names: Sequence[str],
    hyps: Sequence[Array],
    refs: Sequence[Array],
    histories: Sequence[Array] | None = None,
    period: int = 1,
) -> dict[str, float]:
    """The named vector metrics, pooled over items: hyps and refs (T, D) per item; the
    metrics that need the history (``mase``) take ``histories`` (S, >= D) per item."""
    rows = [metric(name, VECTORS) for name in names]
    out = {}
    for m in rows:
        if m.name == "loss":
            continue
        if m.needs_history and histories is None:
            raise ValueError(f"metric {m.name!r} needs the history before each output")
        args = (hyps, refs, histories, period) if m.needs_history else (hyps, refs)
        out[m.name] = m.vectors(*args)
    return out


def score_series(
    forecasts: dict[str, np.ndarray],
    actuals: dict[str, np.ndarray],
    histories: dict[str, np.ndarray],
    period: int = 1,
    names: Sequence[str] = SERIES_METRICS,
) -> dict[str, float]:
    """Series metrics, each per (series, variable) and then averaged over them (the M
    competitions' way), leaving out where it is undefined (MAPE at a zero actual, MASE of a
    flat history).

    Args:
        forecasts, actuals: series id -> (H, D) (or (H,)); every forecast needs its actual.
        histories: series id -> (N, D) (or (N,)), the values before the actuals.
        period: seasonal period m of MASE.
    Returns:
        ``{name: mean over (series, variable)}``, plus ``"series"``: the number scored.
    """
    rows = [metric(name, SERIES) for name in names]
    values: dict[str, list[float]] = {m.name: [] for m in rows}
    for sid, f in forecasts.items():
        if sid not in actuals:
            raise ValueError(f"series {sid!r} has a forecast but no actual values")
        f2, y2, x2 = _columns(f), _columns(actuals[sid]), _columns(histories[sid])
        if f2.shape != y2.shape:
            raise ValueError(f"series {sid!r}: forecast shape {f2.shape} != actual {y2.shape}")
        for d in range(f2.shape[1]):
            for m in rows:
                args = (x2[:, d], period) if m.needs_history else ()
                values[m.name].append(m.series(f2[:, d], y2[:, d], *args))
    if not forecasts:
        raise ValueError("no forecasts to score")
    return {**{n: _nanmean(v) for n, v in values.items()}, "series": float(len(forecasts))}


def _columns(x: Array) -> np.ndarray:
    """(L,) or (L, D) -> (L, D) float64."""
    x = _as_array(x)
    return x[:, None] if x.ndim == 1 else x
