"""The LSTM decoder, stepped one position at a time.

The weights live in an ``nn.LSTM`` (so parameter names and counts are PyTorch's standard ones),
but the step is written out: gates = W_ih x + b_ih + W_hh h + b_hh, in PyTorch's i, f, g, o
order. Written out, the input projection of the parts that do not depend on the previous step
(the target embeddings under teacher forcing) can be computed for all steps at once.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor


class DecoderState(NamedTuple):
    """The recurrent state carried between steps."""

    h: Tensor  # (L, B, H)
    c: Tensor  # (L, B, H)

    def select(self, index: Tensor) -> DecoderState:
        """Rows ``index`` (B',) of the batch, e.g. to reorder or expand beams."""
        return DecoderState(self.h.index_select(1, index), self.c.index_select(1, index))


class SharedSteps:
    """The steps of one forward pass that multiply by the same weight (``recurrent_addmm``)."""

    def __init__(self) -> None:
        self.started = False
        self.pending: list[tuple[Tensor, Tensor]] = []  # (input, output grad) of each step


class _RecurrentAddmm(torch.autograd.Function):
    """base + x @ w where every step of a recurrence multiplies by the same ``w``.

    Plain autograd forms w's gradient at every step, x_t^T g_t with K = batch rows, each a
    full-size product and accumulation. Here each step's backward only keeps (x_t, g_t), and the
    backward of the first step, which runs last (every later step feeds into it through the
    state), forms the whole gradient as one GEMM over all steps' rows.
    """

    @staticmethod
    def forward(ctx, base: Tensor, x: Tensor, w: Tensor, steps: SharedSteps, first: bool):
        ctx.save_for_backward(x, w)
        ctx.steps, ctx.first, ctx.base_shape = steps, first, base.shape
        return torch.addmm(base, x, w)

    @staticmethod
    def backward(ctx, grad: Tensor):
        x, w = ctx.saved_tensors
        ctx.steps.pending.append((x, grad))
        grad_w = None
        if ctx.first:
            xs = torch.cat([x for x, _ in ctx.steps.pending])  # (T*B, I)
            grads = torch.cat([g for _, g in ctx.steps.pending])  # (T*B, 4H)
            grad_w = xs.t() @ grads  # (I, 4H), one GEMM for all steps
            ctx.steps.pending.clear()
        grad_base = grad if ctx.base_shape == grad.shape else grad.sum(0)  # (B, 4H) or (4H,)
        return grad_base, grad @ w.t(), grad_w, None, None


def recurrent_addmm(base: Tensor, x: Tensor, w: Tensor, steps: SharedSteps) -> Tensor:
    """base (B, N) or (N,) + x (B, K) @ w (K, N), w's gradient formed once for all ``steps``
    (``_RecurrentAddmm``); a plain addmm where no gradient is wanted, or under autocast (whose
    dtypes the hand-written backward does not follow)."""
    wanted = torch.is_grad_enabled() and w.requires_grad
    if not wanted or torch.is_autocast_enabled(x.device.type):
        return torch.addmm(base, x, w)
    first, steps.started = not steps.started, True
    return _RecurrentAddmm.apply(base, x, w, steps, first)


def run_lstm(lstm: nn.LSTM, x, hx: tuple[Tensor, Tensor] | None = None):
    """``lstm(x, hx)`` for a tensor or a PackedSequence ``x``; under autocast, in float32 with
    autocast off, since the recurrent kernels do not all take its mixed dtypes (oneDNN's CPU
    LSTM fails on them). The matrix products around the LSTM stay in autocast's precision."""
    device = lstm.weight_hh_l0.device.type
    if not torch.is_autocast_enabled(device):
        return lstm(x, hx)
    with torch.autocast(device, enabled=False):
        hx = None if hx is None else (hx[0].float(), hx[1].float())
        return lstm(x.float(), hx)


def lstm_weights(lstm: nn.LSTM, layer: int, suffix: str = "") -> tuple[Tensor, ...]:
    """(W_ih (4H, I), W_hh (4H, H), b_ih (4H,), b_hh (4H,)) of one layer of an ``nn.LSTM``;
    ``suffix`` "_reverse" for the backward direction of a bidirectional one."""
    names = ("weight_ih", "weight_hh", "bias_ih", "bias_hh")
    return tuple(getattr(lstm, f"{n}_l{layer}{suffix}") for n in names)


def lstm_cell(gates: Tensor, c: Tensor) -> tuple[Tensor, Tensor]:
    """gates (B, 4H) = W_ih x + W_hh h + b, c (B, H) -> new (h, c)."""
    i, f, g, o = gates.chunk(4, dim=1)
    c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
    h = torch.sigmoid(o) * torch.tanh(c)
    return h, c


class LSTMDecoder(nn.Module):
    """A stack of LSTM layers with dropout between layers (as ``nn.LSTM(dropout=p)``)."""

    def __init__(self, input_dim: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        # the module's own dropout serves ``run``; ``step`` applies ``self.dropout`` itself
        inner = dropout if layers > 1 else 0.0
        self.lstm = nn.LSTM(input_dim, hidden, layers, batch_first=True, dropout=inner)
        self.layers = layers
        self.hidden = hidden
        self.dropout = nn.Dropout(dropout)

    def project_input(self, x: Tensor, width: int) -> Tensor:
        """The first layer's input projection, with both biases, of the leading ``width`` input
        columns: x (..., width) -> (..., 4H).

        Under teacher forcing these columns (the target embeddings) are known for all steps,
        so this runs once over (B, T, width); the step loop adds only the rest.
        """
        w_ih, _, b_ih, b_hh = lstm_weights(self.lstm, 0)
        return F.linear(x, w_ih[:, :width], b_ih + b_hh)

    def step_weights(self, skip: int = 0) -> list[tuple[Tensor, Tensor, SharedSteps]]:
        """Per layer, the weights one step multiplies by, fused so each layer is one GEMM:
        W = [W_ih | W_hh]^T (I + H, 4H) over the input [x; h], and b = b_ih + b_hh (4H,), with
        the ``SharedSteps`` record through which W's gradient is formed once.

        Layer 0 leaves out its first ``skip`` input columns, which ``project_input`` covers
        ahead of the loop. Made once per batch, so the slicing, concatenation and their
        backward run once rather than at every step.
        """
        fused = []
        for layer in range(self.layers):
            w_ih, w_hh, b_ih, b_hh = lstm_weights(self.lstm, layer)
            w_in = w_ih[:, skip:] if layer == 0 else w_ih
            fused.append((torch.cat([w_in, w_hh], dim=1).t(), b_ih + b_hh, SharedSteps()))
        return fused

    def step(
        self,
        state: DecoderState,
        x: Tensor | None,
        weights: list[tuple[Tensor, Tensor, SharedSteps]],
        x_proj: Tensor | None = None,
    ) -> tuple[Tensor, DecoderState]:
        """One time step through all layers.

        Args:
            state: h, c each (L, B, H).
            x: (B, I - skip) the first layer's input, without the ``skip`` leading columns
                already projected in ``x_proj``; None if nothing is left.
            weights: from ``step_weights(skip)``.
            x_proj: (B, 4H) ``project_input`` of the leading columns (bias included), or None
                when ``skip`` is 0.
        Returns:
            the top layer's output (B, H) and the new state.
        """
        hs, cs = [], []
        inp = x
        for layer, (w, b, steps) in enumerate(weights):
            h_prev = state.h[layer]
            joint = h_prev if inp is None else torch.cat([inp, h_prev], dim=1)
            base = x_proj if layer == 0 and x_proj is not None else b
            h, c = lstm_cell(recurrent_addmm(base, joint, w, steps), state.c[layer])
            hs.append(h)
            cs.append(c)
            inp = self.dropout(h) if layer < self.layers - 1 else h
        return inp, DecoderState(torch.stack(hs), torch.stack(cs))

    def run(self, x: Tensor, state: DecoderState) -> tuple[Tensor, DecoderState]:
        """All steps at once, where every input is known ahead (no input feeding, teacher
        forcing): x (B, T, I) -> the top layer's outputs (B, T, H) and the final state. The
        same computation as ``step`` T times, in the ``nn.LSTM`` kernel."""
        out, (h, c) = run_lstm(self.lstm, x, (state.h, state.c))
        return out, DecoderState(h, c)
