"""Training losses: cross-entropy over tokens (the negative log-likelihood of a copy model's
log-probabilities), pointwise errors and the pinball loss over vectors, each averaged over the
real (unpadded) target positions.

``loss_kind`` picks the loss a config trains with; ``sequence_loss`` computes it for a batch.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from hybridseq.codec import Codec
from hybridseq.config import Config
from hybridseq.data import Batch
from hybridseq.vocab import PAD_ID

PERCENT_FLOOR = 1e-2  # least denominator of the mape / smape losses (scaled values are ~1)


@functools.cache
def _levels(levels: tuple[float, ...], dtype: torch.dtype, device: torch.device) -> Tensor:
    """The levels as a tensor, made once per device: a copy from the host cannot be recorded
    in a CUDA graph (``cudagraph``), and the first step is always eager."""
    return torch.tensor(levels, dtype=dtype, device=device)


def pinball_loss(pred: Tensor, target: Tensor, levels: Sequence[float]) -> Tensor:
    """The pinball (quantile) loss of Koenker & Bassett (1978), averaged over the levels:
    for level tau and error u = y - q, max(tau u, (tau - 1) u), whose expectation the tau
    quantile of y minimises. pred (..., Q), target (...) -> (...)."""
    tau = _levels(tuple(levels), pred.dtype, pred.device)  # (Q,)
    u = target.unsqueeze(-1) - pred  # (..., Q)
    return torch.maximum(tau * u, (tau - 1) * u).mean(-1)


def sequence_loss(
    out: Tensor,
    batch: Batch,
    kind: str,
    label_smoothing: float = 0.0,
    quantiles: Sequence[float] = (),
    vocab: int = 0,
) -> Tensor:
    """Mean loss over real target positions (and variables, and quantile levels).

    Args:
        out: (B, T, V) logits, (B, T, N) log-probabilities for ``nll``, (B, T, D) vectors, or
            (B, T, D, Q) quantiles for ``quantile``.
        kind: ce | nll | mse | mae | mape | smape | quantile. nll is a copy model's
            cross-entropy (``copy_nll``). mape and smape are the forecasting
            metrics' relative errors (|e| / |y| and 2 |e| / (|y| + |y_hat|)), for a model
            scored by them; targets below PERCENT_FLOOR add nothing to mape (it is undefined
            at 0: a near-zero target would outweigh all others), and smape's denominator is
            floored there.
        quantiles: the Q levels of ``out`` (kind quantile).
        vocab: the target vocabulary's size V (kind nll).
    """
    if kind == "nll":
        return copy_nll(out, batch.tgt_out, label_smoothing, vocab)
    if kind == "ce":
        return F.cross_entropy(
            out.reshape(-1, out.shape[-1]).float(),
            batch.tgt_out.reshape(-1),
            ignore_index=PAD_ID,
            label_smoothing=label_smoothing,
        )
    if kind == "quantile":
        err = pinball_loss(out.float(), batch.tgt_out, quantiles)  # (B, T, D)
    else:
        err = pointwise_error(out.float(), batch.tgt_out, kind)  # (B, T, D)
    mask = batch.tgt_mask.unsqueeze(-1).to(err.dtype)
    return (err * mask).sum() / (mask.sum() * err.shape[-1])


def copy_nll(logp: Tensor, target: Tensor, label_smoothing: float, vocab: int) -> Tensor:
    """Label-smoothed negative log-likelihood of log-probabilities over an extended vocabulary,
    averaged over the non-PAD targets: (1 - e) (-log p(y)) + e mean_w(-log p(w)), the mean over
    the V target-vocabulary entries (another example's copy slots are impossible here), which
    is ``F.cross_entropy``'s smoothing where N = V.

    Args:
        logp: (B, T, N) log-probabilities, N >= V; target: (B, T) extended ids, PAD_ID at padding.
    """
    logp = logp.float()
    nll = -logp.gather(-1, target.unsqueeze(-1)).squeeze(-1)  # (B, T)
    if label_smoothing:
        smooth = -logp[..., :vocab].mean(-1)  # (B, T)
        nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    real = (target != PAD_ID).to(nll.dtype)
    return (nll * real).sum() / real.sum().clamp(min=1.0)


def pointwise_error(pred: Tensor, target: Tensor, kind: str) -> Tensor:
    """Per-element error of a vector prediction: (..., D), (..., D) -> (..., D)."""
    diff = pred - target
    if kind == "mse":
        return diff.pow(2)
    if kind == "mape":  # undefined at y = 0: targets below the floor are left out
        kept = target.abs() >= PERCENT_FLOOR
        return torch.where(kept, diff.abs() / target.abs().clamp(min=PERCENT_FLOOR), 0.0)
    if kind == "smape":  # denominator without gradient: else flat (= 2) wherever pred < 0 < y
        return 2 * diff.abs() / (target.abs() + pred.detach().abs()).clamp(min=PERCENT_FLOOR)
    return diff.abs()


def loss_kind(cfg: Config, codec: Codec) -> str:
    """The loss ``sequence_loss`` computes: train.loss, or its choice for ``auto``; a copy
    model's cross-entropy is ``nll`` (its outputs are log-probabilities already)."""
    if cfg.model.copy and cfg.train.loss in ("auto", "ce"):
        return "nll"
    if cfg.train.loss != "auto":
        return cfg.train.loss
    if codec.target.is_tokens:
        return "ce"
    return "quantile" if cfg.model.quantiles else "mse"
