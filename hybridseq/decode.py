"""Decoding: greedy and batched beam search for tokens, autoregressive rollout for vectors.

Every decoder uses only the model's seam, ``encode`` / ``init_state`` / ``decode_step``, the same
steps the training loop takes, so what was trained is what is decoded. A copy model's
``src_ext`` (B, S), the source tokens' extended target ids, is handed to ``encode``; its steps
then score V + S entries, and its ids >= V name the source's unknown tokens.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from hybridseq.seam import Decodable
from hybridseq.vocab import EOS_ID, PAD_ID


class Hypothesis(NamedTuple):
    """One decoded output of one source."""

    ids: list[int]  # EOS and what follows removed
    score: float  # total log-probability, EOS included (beam: over the length penalty)
    attention: Tensor | None  # (T_out, S): per output token, its weights over the padded source


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
    model: Decodable,
    src: Tensor,
    src_mask: Tensor,
    limits: Tensor,
    cuda_graph: bool = True,
    src_ext: Tensor | None = None,
) -> list[list[int]]:
    """Most likely token at each step.

    Args:
        src: (B, S) ids; src_mask: (B, S) bool; limits: (B,) the most tokens to emit (EOS
            included).
        cuda_graph: on a CUDA device, record one step as a CUDA graph and replay it
            (``_run``): one launch per step instead of one per kernel, the same kernels.
        src_ext: (B, S) a copy model's extended ids of the source tokens.
    Returns:
        one id list per example, EOS and what follows removed.
    """
    enc = _encode(model, src, src_mask, src_ext)
    loop = _GreedyLoop(model, enc, model.init_state(enc), limits, scored=False)
    _run(loop, cuda_graph)
    return _trim(loop.ids)


def _encode(model: Decodable, src: Tensor, src_mask: Tensor, src_ext: Tensor | None):
    """``model.encode``, handing it a copy model's ``src_ext`` only where there is one (a
    model that does not copy need not take it)."""
    if src_ext is None:
        return model.encode(src, src_mask)
    return model.encode(src, src_mask, src_ext=src_ext)


def length_penalty(lengths: Tensor, alpha: float) -> Tensor:
    """GNMT's lp(Y) = ((5 + |Y|) / 6)^alpha (Wu et al. 2016, eq. 14)."""
    return ((5.0 + lengths.float()) / 6.0) ** alpha


@torch.no_grad()
def beam_search(
    model: Decodable,
    src: Tensor,
    src_mask: Tensor,
    limits: Tensor,
    beam: int,
    alpha: float = 0.0,
    cuda_graph: bool = True,
    src_ext: Tensor | None = None,
) -> list[list[int]]:
    """Batched beam search: the B sources' K beams run as one batch of B*K rows.

    Finished beams stay in the beam, extended only by EOS at no cost, so their score is frozen.
    At the end each source's beams are ranked by score / lp(length) and the best is returned.

    Args:
        src: (B, S); src_mask: (B, S); limits: (B,) most tokens per output (EOS included);
        beam: K; alpha: length-penalty exponent (0: rank by total log-probability);
        cuda_graph, src_ext: as in ``greedy``.
    Returns:
        the best id list per source, EOS removed.
    """
    found = _beams(model, src, src_mask, limits, beam, alpha, 1, False, cuda_graph, src_ext)
    return [h[0].ids for h in found]


@torch.no_grad()
def search(
    model: Decodable,
    src: Tensor,
    src_mask: Tensor,
    limits: Tensor,
    beam: int = 1,
    alpha: float = 0.0,
    n_best: int = 1,
    attention: bool = False,
    cuda_graph: bool = True,
    src_ext: Tensor | None = None,
) -> list[list[Hypothesis]]:
    """Greedy (beam 1) or beam search, with the scores and, asked, the attention weights.

    Args:
        src, src_mask, limits, alpha, cuda_graph, src_ext: as in ``beam_search``.
        beam: K; 1 is greedy.
        n_best: how many hypotheses per source, 1 <= n_best <= K.
        attention: keep each step's attention weights (B, S), reordered with the beams.
    Returns:
        per source, its ``n_best`` hypotheses best first (fewer where fewer distinct ones
        exist); each with (T_out, S) weights with ``attention``, else None.
    """
    if not 1 <= n_best <= beam:
        raise ValueError(f"n_best={n_best}: must be between 1 and the beam size {beam}")
    width = src.shape[1] if attention else 0
    if beam > 1:
        args = (beam, alpha, n_best, attention, cuda_graph, src_ext)
        return _beams(model, src, src_mask, limits, *args)
    enc = _encode(model, src, src_mask, src_ext)
    loop = _GreedyLoop(model, enc, model.init_state(enc), limits, width)
    _run(loop, cuda_graph)
    return [[h] for h in _hypotheses(loop.ids, loop.total, loop.attn)]


def _beams(
    model: Decodable,
    src: Tensor,
    src_mask: Tensor,
    limits: Tensor,
    k: int,
    alpha: float,
    n_best: int,
    attention: bool,
    cuda_graph: bool,
    src_ext: Tensor | None = None,
) -> list[list[Hypothesis]]:
    """The beam search of ``search`` (also for K = 1, which tests compare with greedy)."""
    b, width = src.shape[0], src.shape[1] if attention else 0
    rows = torch.arange(b, device=src.device).repeat_interleave(k)  # (B*K,) source of each row
    enc = _encode(model, src, src_mask, src_ext).select(rows)
    loop = _BeamLoop(model, enc, model.init_state(enc), limits.index_select(0, rows), k, width)
    _run(loop, cuda_graph)
    final = loop.scores / length_penalty(loop.lengths, alpha).view(b, k)  # (B, K)
    # (B, N); argmax for one: the first of equal scores, as always
    order = final.argmax(1, keepdim=True) if n_best == 1 else final.topk(n_best, dim=1)[1]
    ranked = final.gather(1, order)
    best = (order + torch.arange(b, device=src.device).unsqueeze(1) * k).view(-1)  # (B*N,)
    attn = None if loop.attn is None else loop.attn.index_select(0, best)
    found = _hypotheses(loop.history.index_select(0, best), ranked.view(-1), attn)
    return [
        [h for h in found[i * n_best : (i + 1) * n_best] if h.score > float("-inf")]
        for i in range(b)
    ]


def _hypotheses(ids: Tensor, scores: Tensor, attn: Tensor | None) -> list[Hypothesis]:
    """ids (R, T), scores (R,), attn (R, T, S) or None -> one Hypothesis per row, cut at EOS."""
    out = []
    for row, (score, hyp) in enumerate(zip(scores.tolist(), _trim(ids), strict=True)):
        weights = None if attn is None else attn[row, : len(hyp)].cpu()
        out.append(Hypothesis(hyp, score, weights))
    return out


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

    def __init__(self, model: Decodable, enc, state, limits: Tensor, width: int = 0) -> None:
        rows, device = limits.shape[0], limits.device
        self.model, self.enc = model, enc
        self.last = limits - 1  # (R,) the step at which a row must emit EOS
        self.steps = int(limits.max())
        self.state, self.in_place = state, False
        self.prev = model.start_inputs(rows, device)  # (R,)
        self.done = torch.zeros(rows, dtype=torch.bool, device=device)  # (R,)
        self.t = torch.zeros(1, dtype=torch.long, device=device)  # the step, on the device
        # with a source width S: every step's attention weights, (R, T, S)
        self.attn = torch.zeros(rows, self.steps, width, device=device) if width else None

    def _decode(self) -> tuple[Tensor, object, Tensor | None]:
        """The model's step: output (R, V), new state, and weights (R, S) if they are kept."""
        if self.attn is None:
            return (*self.model.decode_step(self.prev, self.state, self.enc), None)
        return self.model.decode_step(self.prev, self.state, self.enc, attention=True)

    def _keep(self, state) -> None:
        if self.in_place:
            _tree(Tensor.copy_, self.state, state)
        else:
            self.state = state
        self.t += 1

    def step(self) -> None:
        raise NotImplementedError


class _GreedyLoop(_Loop):
    """``ids`` (B, T) and, ``scored``, ``total`` (B,): the sum of the chosen tokens'
    log-probabilities (left out where only the ids are wanted: a log-softmax per step costs
    a fifth of a small model's step at batch 1 on a CPU)."""

    def __init__(
        self, model: Decodable, enc, state, limits: Tensor, width: int = 0, scored: bool = True
    ) -> None:
        super().__init__(model, enc, state, limits, width)
        self.ids = torch.full((limits.shape[0], self.steps), PAD_ID, device=limits.device)
        self.total = torch.zeros(limits.shape[0], device=limits.device) if scored else None

    def step(self) -> None:
        logits, state, attn = self._decode()  # (B, V), state, (B, S) or None
        if self.total is not None:  # before forcing EOS, as beam search scores
            logp = F.log_softmax(logits.float(), dim=-1)
        logits = _force_eos(logits, self.t >= self.last)
        nxt = logits.argmax(-1).masked_fill(self.done, PAD_ID)  # (B,)
        if self.total is not None:
            chosen = logp.gather(1, nxt.unsqueeze(1)).squeeze(1)  # (B,)
            self.total += chosen.masked_fill(self.done, 0.0)
        self.ids.index_copy_(1, self.t, nxt.unsqueeze(1))
        if attn is not None:
            self.attn.index_copy_(1, self.t, attn.float().unsqueeze(1))
        self.done |= nxt == EOS_ID
        self.prev.copy_(nxt)
        self._keep(state)


class _BeamLoop(_Loop):
    """Rows are B sources x K beams; ``scores`` (B, K), ``lengths`` and ``history`` per row."""

    def __init__(
        self, model: Decodable, enc, state, limits: Tensor, k: int, width: int = 0
    ) -> None:
        super().__init__(model, enc, state, limits, width)
        rows, device = limits.shape[0], limits.device
        self.k, self.b = k, rows // k
        self.scores = torch.full((self.b, k), float("-inf"), device=device)
        self.scores[:, 0] = 0.0  # all beams start identical: expand only the first
        self.lengths = torch.zeros(rows, dtype=torch.long, device=device)
        self.history = torch.full((rows, self.steps), PAD_ID, device=device)
        self.first_row = torch.arange(self.b, device=device).unsqueeze(1) * k  # (B, 1)

    def step(self) -> None:
        b, k, done = self.b, self.k, self.done
        logits, state, attn = self._decode()
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
        if attn is not None:  # each beam keeps the weights of the row it extends
            weights = attn.float().index_select(0, origin).unsqueeze(1)  # (B*K, 1, S)
            self.attn.copy_(self.attn.index_select(0, origin).index_copy_(1, self.t, weights))
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
    model: Decodable, src: Tensor, src_mask: Tensor, steps: int, covariates: Tensor | None = None
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
