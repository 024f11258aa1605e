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
        self.lstm = nn.LSTM(input_dim, hidden, layers, batch_first=True)
        self.layers = layers
        self.hidden = hidden
        self.dropout = nn.Dropout(dropout)

    def weights(self, layer: int) -> tuple[Tensor, Tensor, Tensor]:
        """(W_ih (4H, I), W_hh (4H, H), b (4H,)) of one layer, biases summed."""
        lstm = self.lstm
        w_ih = getattr(lstm, f"weight_ih_l{layer}")
        w_hh = getattr(lstm, f"weight_hh_l{layer}")
        bias = getattr(lstm, f"bias_ih_l{layer}") + getattr(lstm, f"bias_hh_l{layer}")
        return w_ih, w_hh, bias

    def project_input(self, x: Tensor, start: int = 0, stop: int | None = None) -> Tensor:
        """The first layer's input projection of input features ``x[..., :]`` occupying columns
        ``start:stop`` of the layer input, with the bias: (..., k) -> (..., 4H).

        Used to hoist time-parallel work out of the step loop: summing the projections of the
        parts of an input equals the projection of the whole input.
        """
        w_ih, _, bias = self.weights(0)
        return F.linear(x, w_ih[:, start:stop], bias)

    def step(
        self, state: DecoderState, x: Tensor | None = None, x_proj: Tensor | None = None
    ) -> tuple[Tensor, DecoderState]:
        """One time step through all layers.

        Args:
            state: h, c each (L, B, H).
            x: (B, I) the first layer's input, or the part of it not already in ``x_proj``
                (the trailing columns of the input).
            x_proj: (B, 4H) the first layer's projection (with bias) of the leading input
                columns, from ``project_input``; None if ``x`` is the whole input.
        Returns:
            the top layer's output (B, H) and the new state.
        """
        hs, cs = [], []
        inp = x
        for layer in range(self.layers):
            w_ih, w_hh, bias = self.weights(layer)
            gates = F.linear(state.h[layer], w_hh)
            if layer == 0 and x_proj is not None:
                gates = gates + x_proj
                if x is not None:
                    gates = gates + F.linear(x, w_ih[:, w_ih.shape[1] - x.shape[1] :])
            else:
                gates = gates + F.linear(inp, w_ih, bias)
            h, c = lstm_cell(gates, state.c[layer])
            hs.append(h)
            cs.append(c)
            inp = self.dropout(h) if layer < self.layers - 1 else h
        return inp, DecoderState(torch.stack(hs), torch.stack(cs))
