"""Decoding: greedy and batched beam search for tokens, autoregressive rollout for vectors.

Every decoder uses only the model's seam, ``encode`` / ``init_state`` / ``decode_step``, the same
steps the training loop takes, so what was trained is what is decoded.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from hybridseq.vocab import EOS_ID, PAD_ID


def max_lengths(src_mask: Tensor, a: float, b: int) -> Tensor:
    """Per-example output limit a * source_length + b, at least 1: (B, S) -> (B,)."""
    return (src_mask.sum(1).float() * a + b).long().clamp(min=1)


def _force_eos(logp: Tensor, rows: Tensor) -> Tensor:
    """Make EOS the only possible token for ``rows`` (B,) bool of logp (B, V), keeping its
    score."""
    forced = torch.full_like(logp, float("-inf"))
    forced[:, EOS_ID] = logp[:, EOS_ID]
    return torch.where(rows.unsqueeze(1), forced, logp)


@torch.no_grad()
def greedy(model, src: Tensor, src_mask: Tensor, limits: Tensor) -> list[list[int]]:
    """Most likely token at each step.

    Args:
        src: (B, S) ids; src_mask: (B, S) bool; limits: (B,) the most tokens to emit (EOS
            included).
    Returns:
        one id list per example, EOS and what follows removed.
    """
    enc = model.encode(src, src_mask)
    state = model.init_state(enc)
    b = src.shape[0]
    prev = model.start_inputs(b, src.device)
    done = torch.zeros(b, dtype=torch.bool, device=src.device)
    steps = []
    for t in range(int(limits.max())):
        logits, state = model.decode_step(prev, state, enc)
        logits = _force_eos(logits, t >= limits - 1)
        prev = logits.argmax(-1).masked_fill(done, PAD_ID)  # (B,)
        steps.append(prev)
        done = done | (prev == EOS_ID)
        if bool(done.all()):
            break
    return _trim(torch.stack(steps, dim=1))


def _trim(ids: Tensor) -> list[list[int]]:
    """(B, T) ids -> lists cut at the first EOS."""
    out = []
    for row in ids.tolist():
        out.append(row[: row.index(EOS_ID)] if EOS_ID in row else row)
    return out


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT's lp(Y) = ((5 + |Y|) / 6)^alpha (Wu et al. 2016, eq. 14)."""
    return ((5.0 + lengths.float()) / 6.0) ** alpha


@torch.no_grad()
def beam_search(
    model, src: Tensor, src_mask: Tensor, limits: Tensor, beam: int, alpha: float = 0.0
) -> list[list[int]]:
    """Batched beam search: the B sources' K beams run as one batch of B*K rows.

    Finished beams stay in the beam, extended only by EOS at no cost, so their score is frozen.
    At the end each source's beams are ranked by score / lp(length) and the best is returned.

    Args:
        src: (B, S); src_mask: (B, S); limits: (B,) most tokens per output (EOS included);
        beam: K; alpha: length-penalty exponent (0: rank by total log-probability).
    Returns:
        the best id list per source, EOS removed.
    """
    b, k = src.shape[0], beam
    device = src.device
    rows = torch.arange(b, device=device).repeat_interleave(k)  # (B*K,) source of each row
    enc = model.encode(src, src_mask).select(rows)
    state = model.init_state(enc)
    limits = limits.index_select(0, rows)
    prev = model.start_inputs(b * k, device)
    scores = torch.full((b, k), float("-inf"), device=device)
    scores[:, 0] = 0.0  # all beams start identical: expand only the first
    done = torch.zeros(b * k, dtype=torch.bool, device=device)
    lengths = torch.zeros(b * k, dtype=torch.long, device=device)
    history = torch.empty(b * k, 0, dtype=torch.long, device=device)
    for t in range(int(limits.max())):
        logits, state = model.decode_step(prev, state, enc)
        logp = F.log_softmax(logits.float(), dim=-1)  # (B*K, V)
        logp = _force_eos(logp, done | (t >= limits - 1))
        logp[:, EOS_ID] = logp[:, EOS_ID].masked_fill(done, 0.0)  # finished: score frozen
        v = logp.shape[-1]
        cand = (scores.view(-1, 1) + logp).view(b, k * v)  # (B, K*V)
        scores, flat = cand.topk(k, dim=1)  # (B, K)
        origin = (flat // v + torch.arange(b, device=device).unsqueeze(1) * k).view(-1)
        prev = (flat % v).view(-1)  # (B*K,)
        state = state.select(origin)
        history = torch.cat([history.index_select(0, origin), prev.unsqueeze(1)], dim=1)
        lengths = lengths.index_select(0, origin) + (~done.index_select(0, origin)).long()
        done = done.index_select(0, origin) | (prev == EOS_ID)
        if bool(done.all()):
            break
    final = scores / length_penalty(lengths, alpha).view(b, k)
    best = final.argmax(dim=1) + torch.arange(b, device=device) * k  # (B,)
    return _trim(history.index_select(0, best))


@torch.no_grad()
def rollout(
    model, src: Tensor, src_mask: Tensor, steps: int, covariates: Tensor | None = None
) -> Tensor:
    """Vector targets: feed each predicted vector (the point forecast of a quantile model) back
    as the next input.

    Args:
        src: (B, S, D_in); src_mask: (B, S) bool.
        steps: how many vectors to predict.
        covariates: (B, steps, C) the known covariates of each step, for a model that takes
            them (``cov_dim`` C).
    Returns:
        predictions (B, steps, D_out), or all quantiles (B, steps, D_out, Q) for a model with
        Q ``quantiles`` (``model.point`` picks the point forecasts).
    """
    model.check_covariates(covariates, (src.shape[0], steps))
    enc = model.encode(src, src_mask)
    state = model.init_state(enc)
    prev = model.start_inputs(src.shape[0], src.device)
    outputs = []
    for t in range(steps):
        cov = None if covariates is None else covariates[:, t]
        out, state = model.decode_step(prev, state, enc, cov)
        prev = model.point(out)
        outputs.append(out)
    return torch.stack(outputs, dim=1)
