"""Training's forward and backward replayed as CUDA graphs.

On a GPU a small seq2seq model's training step is a few thousand small kernels (every decoder
step's gates, attention and their gradients), and launching them costs more than running them.
``GraphedBackward`` records one batch shape's forward, loss and backward once as a CUDA graph
and replays it for every later batch of that shape: one launch instead of thousands, the same
kernels on the same inputs. The optimizer step stays eager (a few fused launches).

Shapes repeat because batches are padded to multiples of ``pad_to`` in source and target length
(``pad_to_multiple``); padding changes nothing a loss or gradient sees (masked attention,
encoder state held through padding, padded targets outside the loss). A shape is recorded the
second time it occurs, so one-off shapes (an epoch's short last batch) stay eager.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from hybridseq.data import Batch
from hybridseq.vocab import PAD_ID


def recorded_kernels(x: Tensor) -> bool:
    """Whether code on ``x``'s device must take the path a CUDA graph can record (no reads of
    device values on the host): on CUDA while a graph records and in every training step
    (gradients on), so that eager and replayed steps run the same kernels and a run gives the
    same weights whichever steps were replays (a resumed run records at other steps)."""
    return x.is_cuda and (torch.is_grad_enabled() or torch.cuda.is_current_stream_capturing())


def _pad_dim(x: Tensor, dim: int, extra: int, value: float | int | bool) -> Tensor:
    """Append ``extra`` positions of ``value`` along ``dim`` (1 here: the length dim)."""
    if extra == 0:
        return x
    pad = [0, 0] * (x.dim() - 1 - dim) + [0, extra]
    return F.pad(x, pad, value=value)


def pad_to_multiple(batch: Batch, multiple: int) -> Batch:
    """``batch`` with source and target lengths padded up to multiples of ``multiple``:
    masks False, token ids PAD, vectors and covariates 0 there."""
    s, t = batch.src.shape[1], batch.tgt_in.shape[1]
    ds, dt = -s % multiple, -t % multiple
    tokens_in, tokens_out = batch.src.dtype == torch.long, batch.tgt_in.dtype == torch.long
    src_pad, tgt_pad = (PAD_ID if tokens_in else 0.0), (PAD_ID if tokens_out else 0.0)
    return Batch(
        src=_pad_dim(batch.src, 1, ds, src_pad),
        src_mask=_pad_dim(batch.src_mask, 1, ds, False),
        tgt_in=_pad_dim(batch.tgt_in, 1, dt, tgt_pad),
        tgt_out=_pad_dim(batch.tgt_out, 1, dt, tgt_pad),
        tgt_mask=_pad_dim(batch.tgt_mask, 1, dt, False),
        index=batch.index,
        tgt_cov=None if batch.tgt_cov is None else _pad_dim(batch.tgt_cov, 1, dt, 0.0),
    )


def _tensors(batch: Batch) -> list[Tensor]:
    fields = (batch.src, batch.src_mask, batch.tgt_in, batch.tgt_out, batch.tgt_mask)
    return [*fields, *([] if batch.tgt_cov is None else [batch.tgt_cov])]


@dataclass
class _Recorded:
    graph: torch.cuda.CUDAGraph
    batch: Batch  # the fixed input tensors the graph reads
    loss: Tensor  # the fixed loss tensor it writes


class GraphedBackward:
    """Zero the gradients, compute ``loss_fn(batch)`` and backpropagate it, leaving the
    gradients in the parameters' ``.grad`` (kept allocated, so every graph writes the same
    tensors), by graph replay for recorded shapes and eagerly otherwise.

    Args:
        params: the parameters being trained.
        loss_fn: batch -> scalar loss; ``capturing`` tells it whether it is being recorded.
        pad_to: lengths are padded to multiples of this.
        max_graphs: shapes recorded at most (each keeps its own activation memory).
    """

    def __init__(
        self,
        params: list[Tensor],
        loss_fn: Callable[[Batch, bool], Tensor],
        pad_to: int = 8,
        max_graphs: int = 32,
    ) -> None:
        self.params, self.loss_fn = params, loss_fn
        self.pad_to, self.max_graphs = pad_to, max_graphs
        self.recorded: dict[tuple, _Recorded] = {}
        self.seen: Counter[tuple] = Counter()

    def __call__(self, batch: Batch) -> Tensor:
        """batch (on the GPU) -> its loss (0-d, detached); gradients in ``.grad``."""
        batch = pad_to_multiple(batch, self.pad_to)
        key = tuple(tuple(x.shape) for x in _tensors(batch))
        rec = self.recorded.get(key)
        if rec is None:
            self.seen[key] += 1
            if self.seen[key] < 2 or len(self.recorded) >= self.max_graphs:
                return self.eager(batch)
            rec = self.recorded[key] = self._record(batch)
        for fixed, x in zip(_tensors(rec.batch), _tensors(batch), strict=True):
            fixed.copy_(x)
        rec.graph.replay()
        return rec.loss.clone()

    def _zero_grads(self) -> None:
        for p in self.params:  # allocated once and kept: graphs accumulate into them in place
            if p.grad is None:
                p.grad = torch.zeros_like(p)
        torch._foreach_zero_([p.grad for p in self.params])

    def eager(self, batch: Batch) -> Tensor:
        self._zero_grads()
        loss = self.loss_fn(batch, False)
        loss.backward()
        return loss.detach()

    def _record(self, batch: Batch) -> _Recorded:
        """Warm up on a side stream (as capture requires), then record one step on fixed
        copies of ``batch``'s tensors; nothing runs during recording. The random state is put
        back after the warm-up, so the run draws the same dropout masks whichever steps are
        recorded (a resumed run records at other steps than a straight one)."""
        cov = None if batch.tgt_cov is None else batch.tgt_cov.clone()
        fixed = Batch(*[x.clone() for x in _tensors(batch)[:5]], index=batch.index, tgt_cov=cov)
        rng = torch.cuda.get_rng_state()  # the warm-up draws no dropout masks of the run's
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            self.eager(fixed)
        torch.cuda.current_stream().wait_stream(side)
        torch.cuda.set_rng_state(rng)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self._zero_grads()
            loss = self.loss_fn(fixed, True)
            loss.backward()
        return _Recorded(graph, fixed, loss.detach())
