"""Batched prediction over raw inputs, and scoring predictions against references.

Sources are encoded with the model's codec, grouped into length-bucketed batches, decoded
(greedy, beam or vector rollout) and put back in input order. For a copy model the codec also
gives each source's extended target ids (``copy_ids``), and output ids past the target
vocabulary are written as the source's own tokens (``Codec.output_text``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import torch

from hybridseq import metrics as M
from hybridseq.codec import Codec
from hybridseq.config import DecodeConfig
from hybridseq.data import DataError, batch_indices, pad_batch
from hybridseq.decode import Hypothesis, beam_search, greedy, max_lengths, rollout, search
from hybridseq.outputs import Alignment, Prediction
from hybridseq.seam import Decodable
from hybridseq.vocab import PAD_ID


def alignment(codec: Codec, source: str, hyp: Hypothesis) -> Alignment:
    """A token source's text and one of its hypotheses (decoded with attention) -> Alignment.
    The padded source columns are cut off; unknown source symbols are shown as written."""
    if hyp.attention is None:
        raise ValueError("alignment: the hypothesis was decoded without attention weights")
    symbols = codec.source.tokenizer.tokenize(source)
    output = codec.output_tokens(hyp.ids, source)
    weights = hyp.attention[:, : len(symbols)].numpy().astype(np.float32)  # (T, S)
    return Alignment(symbols, output, weights)


def _batches(
    sources: Sequence[torch.Tensor],
    dcfg: DecodeConfig,
    device: torch.device | str,
    copy_ids: Sequence[torch.Tensor] | None = None,
) -> Iterator[tuple[list[int], torch.Tensor, torch.Tensor, torch.Tensor | None]]:
    """Length-bucketed batches: (indices into ``sources``, padded (B, S[, D]), mask (B, S),
    and the padded (B, S) ``copy_ids`` of a copy model, else None)."""
    token_src = sources[0].dtype == torch.long
    for idx in batch_indices([len(s) for s in sources], dcfg.batch_size, bucket=True):
        src, mask = pad_batch([sources[i] for i in idx], PAD_ID if token_src else 0.0)
        ext = None
        if copy_ids is not None:
            ext = pad_batch([copy_ids[i] for i in idx], PAD_ID)[0].to(device)
        yield idx, src.to(device), mask.to(device), ext


def predict_hypotheses(
    model: Decodable,
    sources: Sequence[torch.Tensor],
    dcfg: DecodeConfig,
    device: torch.device | str = "cpu",
    n_best: int = 1,
    attention: bool = False,
    copy_ids: Sequence[torch.Tensor] | None = None,
) -> list[list[Hypothesis]]:
    """Encoded token sources (S_i,) -> per source its ``n_best`` hypotheses, best first, with
    scores and (``attention``) each output token's weights over the padded source (T, S).
    ``copy_ids``: a copy model's (S_i,) extended ids of each source."""
    if not model.token_target:
        raise ValueError("n_best and attention are for models with a token target")
    model.eval()
    out: list[list[Hypothesis]] = [[] for _ in sources]
    for idx, src, mask, ext in _batches(sources, dcfg, device, copy_ids):
        limits = max_lengths(mask, dcfg.max_len_a, dcfg.max_len_b)
        beam, alpha = max(dcfg.beam, 1), dcfg.length_penalty
        found = search(model, src, mask, limits, beam, alpha, n_best, attention, src_ext=ext)
        for j, i in enumerate(idx):
            out[i] = found[j]
    return out


def predict_ids(
    model: Decodable,
    sources: Sequence[torch.Tensor],
    dcfg: DecodeConfig,
    device: torch.device | str = "cpu",
    steps: Sequence[int] | None = None,
    covariates: Sequence[torch.Tensor] | None = None,
    copy_ids: Sequence[torch.Tensor] | None = None,
) -> list[Any]:
    """Decode encoded sources: id lists for a token target, (T, D) arrays for vectors, or
    (T, D, Q) for a model with Q quantiles.

    ``steps`` gives per-source rollout lengths for vectors (default: ``dcfg.steps``); for a
    model with covariates, each source's (T_i, C) ``covariates`` give its T_i steps instead.
    ``copy_ids``: a copy model's (S_i,) extended ids of each source.
    """
    model.eval()
    out: list[Any] = [None] * len(sources)
    for idx, src, mask, ext in _batches(sources, dcfg, device, copy_ids):
        if model.token_target:
            limits = max_lengths(mask, dcfg.max_len_a, dcfg.max_len_b)
            if dcfg.beam > 1:
                alpha = dcfg.length_penalty
                hyps = beam_search(model, src, mask, limits, dcfg.beam, alpha, src_ext=ext)
            else:
                hyps = greedy(model, src, mask, limits, src_ext=ext)
        elif covariates is not None:
            cov, _ = pad_batch([covariates[i] for i in idx], 0.0)  # (B, max T_i, C)
            pred = rollout(model, src, mask, cov.shape[1], cov.to(device, model.step_dtype))
            pred = pred.float().cpu().numpy()
            hyps = [pred[j, : len(covariates[i])] for j, i in enumerate(idx)]
        else:
            n = [steps[i] if steps is not None else dcfg.steps for i in idx]
            pred = rollout(model, src, mask, max(n)).float().cpu().numpy()
            hyps = [pred[j, : n[j]] for j in range(len(idx))]
        for j, i in enumerate(idx):
            out[i] = hyps[j]
    return out


def encode_covariates(
    codec: Codec, covariates: Sequence[Any] | None, count: int
) -> list[torch.Tensor] | None:
    """Per source, the (T_i, C) covariates of its output steps as tensors, for a model that
    takes them (None for one that takes none); a missing or misshapen one is a DataError."""
    if codec.covariates is None:
        if covariates is not None:
            raise DataError("covariates given, but the model was trained without covariates")
        return None
    if covariates is None or len(covariates) != count:
        got = "none" if covariates is None else len(covariates)
        raise DataError(
            f"the model needs covariates (steps, {codec.covariates.dim}) for each of the "
            f"{count} sources; got {got}"
        )
    return [
        codec.covariates.encode(c, f"input {i + 1} covariates") for i, c in enumerate(covariates)
    ]


def predict(
    model: Decodable,
    codec: Codec,
    sources: Sequence[Any],
    dcfg: DecodeConfig,
    device: torch.device | str = "cpu",
    covariates: Sequence[Any] | None = None,
    n_best: int = 1,
    attention: bool = False,
) -> list[Any]:
    """Raw sources (text, or (S, D) arrays) -> outputs (text, or (T, D) arrays, (T, D, Q) with
    quantiles), in order. A model with covariates needs ``covariates``, per source a (T, C)
    array of the known values of its T output steps.

    For a token target, ``n_best`` > 1 (at most the beam) or ``attention`` give instead per
    source a list of its n best ``Prediction`` (text, score, ``Alignment`` with attention)."""
    encoded = [codec.source.encode(s, f"input {i + 1}") for i, s in enumerate(sources)]
    if not encoded:
        return []
    copies = copy_ids(codec, sources)
    if n_best > 1 or attention:
        found = predict_hypotheses(model, encoded, dcfg, device, n_best, attention, copies)
        return [
            [Prediction(codec.output_text(h.ids, s), h.score, _aligned(codec, s, h)) for h in hs]
            for s, hs in zip(sources, found, strict=True)
        ]
    covs = encode_covariates(codec, covariates, len(encoded))
    hyps = predict_ids(model, encoded, dcfg, device, covariates=covs, copy_ids=copies)
    if codec.target.is_tokens:
        return [codec.output_text(h, s) for h, s in zip(hyps, sources, strict=True)]
    return hyps


def copy_ids(codec: Codec, sources: Sequence[Any]) -> list[torch.Tensor] | None:
    """Each source's extended target ids (S_i,) for a copy codec; None for any other."""
    if not codec.copy:
        return None
    return [codec.copy_ids(s, f"input {i + 1}") for i, s in enumerate(sources)]


def _aligned(codec: Codec, source: str, hyp: Hypothesis) -> Alignment | None:
    return None if hyp.attention is None else alignment(codec, source, hyp)


def group_references(pairs: Sequence[tuple[Any, ...]]) -> tuple[list[Any], list[list[Any]]]:
    """Unique sources in first-seen order, each with all of its targets (multiple references).
    Vector sources are not grouped."""
    if not pairs or not isinstance(pairs[0][0], str):
        return [p[0] for p in pairs], [[p[1]] for p in pairs]
    refs: dict[str, list] = {}
    for s, t in pairs:
        refs.setdefault(s, []).append(t)
    return list(refs), list(refs.values())


def score(
    model: Decodable,
    codec: Codec,
    pairs: Sequence[tuple[Any, ...]],
    dcfg: DecodeConfig,
    names: Sequence[str],
    device: torch.device | str = "cpu",
    period: int = 1,
) -> tuple[dict[str, float], list[Any], list[Any]]:
    """Decode the sources of ``pairs`` (or of (source, target, covariates) triples) and compute
    metrics ``names`` (rows of ``metrics.TABLE``) against their targets.

    Vector metrics score the point forecast of a quantile model; those that need the history
    (mase, with seasonal period ``period``) take each source's first D columns as the past of
    the D predicted variables.

    Returns:
        metrics, the unique sources, and their predictions (text or arrays).
    """
    sources, refs = group_references(pairs)
    encoded = [codec.source.encode(s, f"example {i + 1} source") for i, s in enumerate(sources)]
    if not codec.target.is_tokens:
        steps = [len(r[0]) for r in refs]
        known = [p[2] for p in pairs] if len(pairs[0]) > 2 else None
        covs = encode_covariates(codec, known, len(pairs))
        hyps = predict_ids(model, encoded, dcfg, device, steps=steps, covariates=covs)
        firsts = [np.asarray(r[0], dtype=np.float32) for r in refs]
        points = [model.point(h) for h in hyps]
        pasts = [np.asarray(s, dtype=np.float32) for s in sources]
        result = M.compute_vectors(names, points, firsts, pasts, period)
        return result, sources, hyps
    hyps = predict_ids(model, encoded, dcfg, device, copy_ids=copy_ids(codec, sources))
    tok = codec.target.tokenizer
    hyp_tokens = [codec.output_tokens(h, s) for h, s in zip(hyps, sources, strict=True)]
    ref_tokens = [[tok.tokenize(r) for r in rs] for rs in refs]
    texts = [tok.detokenize(h) for h in hyp_tokens]
    result = M.compute(list(names), hyp_tokens, ref_tokens, detok_hyps=texts, detok_refs=refs)
    return result, sources, texts
