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
def greedy(
    model, src: Tensor, src_mask: Tensor, limits: Tensor, cuda_graph: bool = True
) -> list[list[int]]:
    """Most likely token at each step.

    Args:
        src: (B, S) ids; src_mask: (B, S) bool; limits: (B,) the most tokens to emit (EOS
            included).
        cuda_graph: on a CUDA device, record one step as a CUDA graph and replay it
            (``_run``): one launch per step instead of one per kernel, the same kernels.
    Returns:
        one id list per example, EOS and what follows removed.
    """
    enc = model.encode(src, src_mask)
    loop = _GreedyLoop(model, enc, model.init_state(enc), limits)
    _run(loop, cuda_graph)
    return _trim(loop.ids)


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT's lp(Y) = ((5 + |Y|) / 6)^alpha (Wu et al. 2016, eq. 14)."""
    return ((5.0 + lengths.float()) / 6.0) ** alpha


@torch.no_grad()
def beam_search(
    model,
    src: Tensor,
    src_mask: Tensor,
    limits: Tensor,
    beam: int,
    alpha: float = 0.0,
    cuda_graph: bool = True,
) -> list[list[int]]:
    """Batched beam search: the B sources' K beams run as one batch of B*K rows.

    Finished beams stay in the beam, extended only by EOS at no cost, so their score is frozen.
    At the end each source's beams are ranked by score / lp(length) and the best is returned.

    Args:
        src: (B, S); src_mask: (B, S); limits: (B,) most tokens per output (EOS included);
        beam: K; alpha: length-penalty exponent (0: rank by total log-probability);
        cuda_graph: as in ``greedy``.
    Returns:
        the best id list per source, EOS removed.
    """
    b, k = src.shape[0], beam
    rows = torch.arange(b, device=src.device).repeat_interleave(k)  # (B*K,) source of each row
    enc = model.encode(src, src_mask).select(rows)
    loop = _BeamLoop(model, enc, model.init_state(enc), limits.index_select(0, rows), k)
    _run(loop, cuda_graph)
    final = loop.scores / length_penalty(loop.lengths, alpha).view(b, k)
    best = final.argmax(dim=1) + torch.arange(b, device=src.device) * k  # (B,)
    return _trim(loop.history.index_select(0, best))


def _tree(fn, first, *rest):
    """fn over the tensors of nested tuples (a ``DecoderState``, an ensemble's states)."""
    if isinstance(first, Tensor):
        return fn(first, *rest)
    parts = [_tree(fn, *xs) for xs in zip(first, *rest, strict=True)]
    return type(first)(*parts) if hasattr(first, "_fields") else type(first)(parts)


class _Loop:
    """A decoder's step over buffers allocated up front (previous ids, finished flags, the
    step counter, the outputs), so the same step can run eagerly or be recorded once as a CUDA
    graph and replayed. Eagerly the model state is whatever ``decode_step`` returns; with
    ``in_place`` (for a graph) it is copied into fixed tensors."""

    def __init__(self, model, enc, state, limits: Tensor) -> None:
        rows, device = limits.shape[0], limits.device
        self.model, self.enc = model, enc
        self.last = limits - 1  # (R,) the step at which a row must emit EOS
        self.steps = int(limits.max())
        self.state, self.in_place = state, False
        self.prev = model.start_inputs(rows, device)  # (R,)
        self.done = torch.zeros(rows, dtype=torch.bool, device=device)  # (R,)
        self.t = torch.zeros(1, dtype=torch.long, device=device)  # the step, on the device

    def _keep(self, state) -> None:
        if self.in_place:
            _tree(Tensor.copy_, self.state, state)
        else:
            self.state = state
        self.t += 1

    def step(self) -> None:
        raise NotImplementedError


class _GreedyLoop(_Loop):
    def __init__(self, model, enc, state, limits: Tensor) -> None:
        super().__init__(model, enc, state, limits)
        self.ids = torch.full((limits.shape[0], self.steps), PAD_ID, device=limits.device)

    def step(self) -> None:
        logits, state = self.model.decode_step(self.prev, self.state, self.enc)  # (B, V)
        logits = _force_eos(logits, self.t >= self.last)
        nxt = logits.argmax(-1).masked_fill(self.done, PAD_ID)  # (B,)
        self.ids.index_copy_(1, self.t, nxt.unsqueeze(1))
        self.done |= nxt == EOS_ID
        self.prev.copy_(nxt)
        self._keep(state)


class _BeamLoop(_Loop):
    """Rows are B sources x K beams; ``scores`` (B, K), ``lengths`` and ``history`` per row."""

    def __init__(self, model, enc, state, limits: Tensor, k: int) -> None:
        super().__init__(model, enc, state, limits)
        rows, device = limits.shape[0], limits.device
        self.k, self.b = k, rows // k
        self.scores = torch.full((self.b, k), float("-inf"), device=device)
        self.scores[:, 0] = 0.0  # all beams start identical: expand only the first
        self.lengths = torch.zeros(rows, dtype=torch.long, device=device)
        self.history = torch.full((rows, self.steps), PAD_ID, device=device)
        self.first_row = torch.arange(self.b, device=device).unsqueeze(1) * k  # (B, 1)

    def step(self) -> None:
        b, k, done = self.b, self.k, self.done
        logits, state = self.model.decode_step(self.prev, self.state, self.enc)
        logp = F.log_softmax(logits.float(), dim=-1)  # (B*K, V)
        logp = _force_eos(logp, done | (self.t >= self.last))
        logp[:, EOS_ID] = logp[:, EOS_ID].masked_fill(done, 0.0)  # finished: score frozen
        v = logp.shape[-1]
        cand = (self.scores.view(-1, 1) + logp).view(b, k * v)  # (B, K*V)
        scores, flat = cand.topk(k, dim=1)  # (B, K)
        origin = (flat // v + self.first_row).view(-1)  # (B*K,) the row each beam extends
        nxt = (flat % v).view(-1)  # (B*K,)
        history = self.history.index_select(0, origin)
        self.history.copy_(history.index_copy_(1, self.t, nxt.unsqueeze(1)))
        kept = ~done.index_select(0, origin)
        self.lengths.copy_(self.lengths.index_select(0, origin) + kept.long())
        self.done.copy_(~kept | (nxt == EOS_ID))
        self.scores.copy_(scores)
        self.prev.copy_(nxt)
        self._keep(state.select(origin))


def _run(loop: _Loop, cuda_graph: bool, check_every: int = 8) -> None:
    """Step ``loop`` until every row is done or the longest limit is reached.

    Eagerly, whether all rows are done is read after every step. With ``cuda_graph`` on a CUDA
    device: the first step runs eagerly on a side stream (it also warms up the libraries, as
    capture requires), the others are replays of one recorded step, and the finished flags are
    read every ``check_every`` steps, so the host rarely waits on the GPU.
    """
    if not (cuda_graph and loop.done.is_cuda):
        for _ in range(loop.steps):
            loop.step()
            if bool(loop.done.all()):
                break
        return
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        loop.step()
    torch.cuda.current_stream().wait_stream(side)
    if loop.steps == 1 or bool(loop.done.all()):
        return
    loop.state, loop.in_place = _tree(torch.clone, loop.state), True
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):  # records the step; nothing runs yet
        loop.step()
    for t in range(1, loop.steps):
        graph.replay()
        if t % check_every == 0 and bool(loop.done.all()):
            break


def _trim(ids: Tensor) -> list[list[int]]:
    """(B, T) ids -> lists cut at the first EOS."""
    out = []
    for row in ids.tolist():
        out.append(row[: row.index(EOS_ID)] if EOS_ID in row else row)
    return out


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
