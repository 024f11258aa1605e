"""Source encoders: an LSTM (seed 002) and a Transformer stack with positional encoding (seed 000).

Both take already-embedded inputs (B, S, I) and a bool mask (B, S), True = real position, and
return the memory (B, S, E) the decoder attends over, plus the LSTM's final states when there
are any.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from hybridseq.attention import masked_softmax
from hybridseq.cudagraph import recorded_kernels
from hybridseq.decoder import SharedSteps, lstm_cell, lstm_weights, recurrent_addmm, run_lstm

LSTMState = tuple[Tensor, Tensor]
RELATIVE_CLIP = 16  # offsets beyond +-16 positions share the last bias (positions: relative)


def masked_direction(
    x: Tensor, keep: Tensor, weights: tuple[Tensor, ...], reverse: bool
) -> tuple[Tensor, Tensor, Tensor]:
    """One LSTM layer in one direction over a padded batch, the state held still at padding.

    Args:
        x: (S, B, I) time-major input.
        keep: (S, B, 1) bool, True = real position.
        weights: (W_ih (4H, I), W_hh (4H, H), b_ih (4H,), b_hh (4H,)), as ``nn.LSTM`` holds them.
        reverse: run from the last position to the first.
    Returns:
        outputs (S, B, H) (the held state at padding) and the final h, c, each (B, H): the
        state at each sequence's real end, or, in reverse, at its first position (padding
        comes first then, and the state stays zero through it).
    """
    w_ih, w_hh, b_ih, b_hh = weights
    gates_in = F.linear(x, w_ih, b_ih + b_hh).unbind(0)  # S x (B, 4H), all steps in one GEMM
    keeps, w = keep.unbind(0), w_hh.t()
    h = x.new_zeros(x.shape[1], w_hh.shape[1])  # (B, H)
    c = torch.zeros_like(h)
    outputs: list[Tensor] = [h] * len(gates_in)
    steps = SharedSteps()
    for t in reversed(range(len(gates_in))) if reverse else range(len(gates_in)):
        h_new, c_new = lstm_cell(recurrent_addmm(gates_in[t], h, w, steps), c)
        h, c = torch.where(keeps[t], h_new, h), torch.where(keeps[t], c_new, c)
        outputs[t] = h
    return torch.stack(outputs), h, c


class LSTMEncoder(nn.Module):
    """A multi-layer, optionally bidirectional LSTM that skips padding, so final states are
    taken at each sequence's real end.

    A batch without padding runs through ``nn.LSTM`` itself (oneDNN on CPU, cuDNN on CUDA), a
    padded one through packed sequences, except in training, on the CPU and on CUDA (where
    packing's host read of the lengths cannot be recorded in a CUDA graph, and every training
    step takes the path a graph records: ``recorded_kernels``): there it takes
    ``masked_direction``, the same computation written as a step loop over the padded batch.
    The backward of PyTorch's packed CPU kernel zero-fills a gradient the size of the whole
    input projection at every time step, and forms the recurrent weight's gradient step by
    step; forward only (decoding), the packed kernel is the faster one.
    """

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
        recordable = recorded_kernels(x)  # a CUDA graph's path: no host reads of the mask
        if not recordable and bool(mask.all()):
            memory, (h, c) = run_lstm(self.lstm, x)
        elif recordable or (x.device.type == "cpu" and torch.is_grad_enabled()):
            memory, (h, c) = self._masked(x, mask)
        else:
            lengths = mask.sum(dim=1).cpu()
            packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
            out, (h, c) = run_lstm(self.lstm, packed)
            memory, _ = pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])
        return memory, (self._merge_directions(h), self._merge_directions(c))

    def _masked(self, x: Tensor, mask: Tensor) -> tuple[Tensor, LSTMState]:
        """``nn.LSTM``'s computation on a padded batch by ``masked_direction``: x (B, S, I) ->
        memory (B, S, D*H) with zeros at padding, and h, c, each (L*D, B, H) in its order."""
        lstm, keep = self.lstm, mask.t().unsqueeze(-1)  # (S, B, 1)
        inp, hs, cs = x.transpose(0, 1), [], []  # (S, B, I)
        for layer in range(lstm.num_layers):
            outputs = []
            for suffix in ("", "_reverse")[: 2 if lstm.bidirectional else 1]:
                weights = lstm_weights(lstm, layer, suffix)
                out, h, c = masked_direction(inp, keep, weights, reverse=bool(suffix))
                outputs.append(out)
                hs.append(h)
                cs.append(c)
            inp = torch.cat(outputs, dim=-1)  # (S, B, D*H)
            if layer < lstm.num_layers - 1:  # as nn.LSTM(dropout=p): between layers only
                inp = F.dropout(inp, lstm.dropout, self.training)
        memory = (inp * keep).transpose(0, 1)  # (B, S, D*H)
        return memory, (torch.stack(hs), torch.stack(cs))

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


class LearnedPositions(PositionalEncoding):
    """One trained vector per position, added to the input as ``PositionalEncoding`` adds its
    table; the table starts as the sinusoids, so an untrained model sees the same input."""

    def __init__(self, d_model: int, max_positions: int) -> None:
        super().__init__(d_model, max_positions)
        sinusoids = self.table
        del self.table  # the buffer, replaced by a trained parameter of the same values
        self.table = nn.Parameter(sinusoids.clone())


class RelativePositions(nn.Module):
    """A learned bias per attention head and per offset j - i between a query at position i and
    a key at j, clipped to +-``clip``, added to every layer's attention scores (shared by the
    layers, as T5 shares its table; Shaw et al. 2018 clip offsets the same way). The input
    gets no position vector: only offsets are seen, so a pattern learned at one place in the
    source applies at any other. Starts at zero (no position information)."""

    def __init__(self, heads: int, clip: int) -> None:
        super().__init__()
        self.clip = clip
        self.table = nn.Parameter(torch.zeros(heads, 2 * clip + 1))

    def forward(self, x: Tensor) -> Tensor:
        """Nothing is added to the input: x (B, S, D) unchanged."""
        return x

    def bias(self, s: int, device: torch.device) -> Tensor:
        """The additive attention bias (heads, S, S) for a source of length S."""
        offsets = torch.arange(s, device=device)
        rel = (offsets[None, :] - offsets[:, None]).clamp(-self.clip, self.clip) + self.clip
        return self.table[:, rel]  # (h, S, S)


class ScaledEmbedding(nn.Embedding):
    """A token embedding initialised N(0, 1/D) and multiplied by sqrt(D) (Vaswani et al. 2017,
    §3.4): the same N(0, 1) vectors at the start as ``nn.Embedding``, but Adam's steps, of a
    size set by the learning rate, move them sqrt(D) times further relative to their size."""

    def __init__(self, num_embeddings: int, embedding_dim: int) -> None:
        super().__init__(num_embeddings, embedding_dim)
        nn.init.normal_(self.weight, 0.0, embedding_dim**-0.5)
        self.scale = math.sqrt(embedding_dim)

    def forward(self, ids: Tensor) -> Tensor:
        """ids (B, S) -> (B, S, D)."""
        return super().forward(ids) * self.scale


class TransformerEncoder(nn.Module):
    """Positional encoding (sinusoidal or learned), dropout, then N Transformer encoder layers
    with the padding mask (PyTorch's ``nn.TransformerEncoderLayer``): post-norm as in the seed,
    or with ``norm_first`` pre-norm followed by a final LayerNorm."""

    def __init__(
        self,
        d_model: int,
        heads: int,
        ff_dim: int,
        layers: int,
        dropout: float,
        max_positions: int,
        norm_first: bool = False,
        positions: str = "sinusoidal",
    ) -> None:
        super().__init__()
        if positions == "relative":
            self.positions: nn.Module = RelativePositions(heads, RELATIVE_CLIP)
        elif positions == "learned":
            self.positions = LearnedPositions(d_model, max_positions)
        else:
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
        if not isinstance(self.positions, RelativePositions):
            return self.layers(x, src_key_padding_mask=~mask)
        return run_layers(self.layers, x, mask, self.positions.bias(x.shape[1], x.device))


def self_attention(
    attn: nn.MultiheadAttention, x: Tensor, mask: Tensor, bias: Tensor | None = None
) -> Tensor:
    """``nn.MultiheadAttention`` of x over itself, written with plain tensor operations (every
    size read from the input's shape, which a traced export needs), with an optional additive
    bias on the scores: x (B, S, E), mask (B, S) bool, bias (h, S, S) -> (B, S, E)."""
    b, s, e = x.shape
    heads = attn.num_heads
    q, k, v = F.linear(x, attn.in_proj_weight, attn.in_proj_bias).chunk(3, dim=-1)
    q, k, v = (t.view(b, s, heads, e // heads).transpose(1, 2) for t in (q, k, v))  # (B, h, S, d)
    scores = q @ k.transpose(-1, -2) / math.sqrt(e // heads)  # (B, h, S, S)
    if bias is not None:
        scores = scores + bias.to(scores.dtype)
    weights = masked_softmax(scores, mask[:, None, None, :])
    weights = F.dropout(weights, attn.dropout, attn.training)
    return attn.out_proj((weights @ v).transpose(1, 2).reshape(b, s, e))


def encoder_layer(
    layer: nn.TransformerEncoderLayer, x: Tensor, mask: Tensor, bias: Tensor | None = None
) -> Tensor:
    """One ``nn.TransformerEncoderLayer``, post-norm or pre-norm, its dropouts included, by
    ``self_attention``: (B, S, E) -> (B, S, E)."""

    def feed_forward(y: Tensor) -> Tensor:
        hidden = layer.dropout(layer.activation(layer.linear1(y)))
        return layer.dropout2(layer.linear2(hidden))

    def attend(y: Tensor) -> Tensor:
        return layer.dropout1(self_attention(layer.self_attn, y, mask, bias))

    if layer.norm_first:
        x = x + attend(layer.norm1(x))
        return x + feed_forward(layer.norm2(x))
    x = layer.norm1(x + attend(x))
    return layer.norm2(x + feed_forward(x))


def run_layers(
    stack: nn.TransformerEncoder, x: Tensor, mask: Tensor, bias: Tensor | None = None
) -> Tensor:
    """The stack's layers by ``encoder_layer``, then its final norm: (B, S, E) -> (B, S, E).
    Used where PyTorch's own forward cannot serve: a traced export, and relative position
    biases (its fast path in eval mode gives NaN with a per-head float mask, torch 2.13)."""
    for layer in stack.layers:
        x = encoder_layer(layer, x, mask, bias)
    return x if stack.norm is None else stack.norm(x)
