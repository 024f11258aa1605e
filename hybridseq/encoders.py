"""Source encoders: an LSTM (seed 002) and a Transformer stack with positional encoding (seed 000).

Both take already-embedded inputs (B, S, I) and a bool mask (B, S), True = real position, and
return the memory (B, S, E) the decoder attends over, plus the LSTM's final states when there
are any.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

LSTMState = tuple[Tensor, Tensor]


class LSTMEncoder(nn.Module):
    """A multi-layer, optionally bidirectional LSTM that skips padding (packed sequences), so
    final states are taken at each sequence's real end."""

    def __init__(
        self, input_dim: int, hidden: int, layers: int, bidirectional: bool, dropout: float
    ) -> None:
        super().__init__()
        self.lstm = nn.LSTM(
            input_dim,
            hidden,
            layers,
            batch_first=True,
            bidirectional=bidirectional,
            dropout=dropout if layers > 1 else 0.0,
        )

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, LSTMState]:
        """
        Args:
            x: (B, S, I) embedded source.
            mask: (B, S) bool.
        Returns:
            memory (B, S, D*H) with zeros at padding, and final (h, c), each (L, B, D*H) where
            D is 2 for a bidirectional encoder (the two directions concatenated per layer).
        """
        lengths = mask.sum(dim=1).cpu()
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        out, (h, c) = self.lstm(packed)
        memory, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return memory, (self._merge_directions(h), self._merge_directions(c))

    def _merge_directions(self, state: Tensor) -> Tensor:
        """(L*D, B, H) -> (L, B, D*H)."""
        d = 2 if self.lstm.bidirectional else 1
        ld, b, h = state.shape
        state = state.view(ld // d, d, b, h)  # (L, D, B, H)
        return state.permute(0, 2, 1, 3).reshape(ld // d, b, d * h)


class PositionalEncoding(nn.Module):
    """Sinusoidal positions (Vaswani et al. 2017, §3.5), added to the input; no parameters."""

    def __init__(self, d_model: int, max_positions: int) -> None:
        super().__init__()
        position = torch.arange(max_positions).unsqueeze(1)  # (P, 1)
        freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))
        table = torch.zeros(max_positions, d_model)
        table[:, 0::2] = torch.sin(position * freq)
        table[:, 1::2] = torch.cos(position * freq[: d_model // 2])
        self.register_buffer("table", table, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, S, D) -> x + PE[:S]."""
        s = x.shape[1]
        if s > self.table.shape[0]:
            raise ValueError(
                f"source length {s} exceeds model.max_positions ({self.table.shape[0]})"
            )
        return x + self.table[:s]


class TransformerEncoder(nn.Module):
    """Positional encoding, dropout, then N Transformer encoder layers with the padding mask
    (PyTorch's ``nn.TransformerEncoderLayer``): post-norm as in the seed, or with
    ``norm_first`` pre-norm followed by a final LayerNorm."""

    def __init__(
        self,
        d_model: int,
        heads: int,
        ff_dim: int,
        layers: int,
        dropout: float,
        max_positions: int,
        norm_first: bool = False,
    ) -> None:
        super().__init__()
        self.positions = PositionalEncoding(d_model, max_positions)
        self.dropout = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            d_model, heads, ff_dim, dropout, batch_first=True, norm_first=norm_first
        )
        final = nn.LayerNorm(d_model) if norm_first else None
        self.layers = nn.TransformerEncoder(layer, layers, final, enable_nested_tensor=False)

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, S, d_model), mask (B, S) bool -> memory (B, S, d_model)."""
        x = self.dropout(self.positions(x))
        return self.layers(x, src_key_padding_mask=~mask)
