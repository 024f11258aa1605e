"""Attention of one decoder query over the encoder memory.

Both kinds split the work the same way: ``precompute(memory)`` runs once per batch and projects
the memory into keys (and values), and ``forward(query, cache, mask)`` runs at every decoder step
and only touches the query: one query per sequence (B, Q), or T of them at once (B, T, Q) where
they are all known (a decoder without input feeding, under teacher forcing). Masks are bool
with True = real position; padded positions receive exactly zero weight.
"""

from __future__ import annotations

import math

import torch
import torch.nn as nn
from torch import Tensor


def masked_softmax(scores: Tensor, mask: Tensor) -> Tensor:
    """Softmax over the last dim with False positions set to exactly zero.

    Args:
        scores: (..., S) unnormalised scores.
        mask: (B, S) or broadcastable bool, True = real position.
    """
    return torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)


class AdditiveAttention(nn.Module):
    """Bahdanau et al. (2015), §A.1.2: e_ij = v^T tanh(W s_{i-1} + U h_j).

    The seed's ``Linear(2H -> H)`` over ``[s; h]`` is the same map split in two: ``query`` holds
    W (no bias), ``key`` holds U and the bias. The split lets U h_j be computed once per batch
    instead of once per decoder step; the parameter count is unchanged.
    """

    def __init__(self, query_dim: int, key_dim: int, attn_dim: int) -> None:
        super().__init__()
        self.query = nn.Linear(query_dim, attn_dim, bias=False)
        self.key = nn.Linear(key_dim, attn_dim)
        self.v = nn.Linear(attn_dim, 1, bias=False)

    @property
    def context_dim(self) -> int:
        return self.key.in_features

    def precompute(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """memory (B, S, E) -> (keys (B, S, A), memory (B, S, E))."""
        return self.key(memory), memory

    def forward(
        self, query: Tensor, cache: tuple[Tensor, ...], mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """
        Args:
            query: (B, Q) the decoder's top-layer hidden state, or (B, T, Q) for T steps.
            cache: output of ``precompute``.
            mask: (B, S) bool, True = real source position.
        Returns:
            context (B, E) and weights (B, S); (B, T, E) and (B, T, S) for T queries.
        """
        keys, memory = cache
        single = query.dim() == 2
        q = self.query(query.unsqueeze(1) if single else query)  # (B, T, A)
        energy = torch.tanh(keys.unsqueeze(1) + q.unsqueeze(2))  # (B, T, S, A)
        weights = masked_softmax(self.v(energy).squeeze(-1), mask.unsqueeze(1))  # (B, T, S)
        context = torch.bmm(weights, memory)  # (B, T, E)
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights


class MultiHeadAttention(nn.Module):
    """Scaled dot-product attention with several heads (Vaswani et al. 2017, §3.2.2), one query
    per step. Returns the weights averaged over heads."""

    def __init__(self, query_dim: int, key_dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(query_dim, query_dim)
        self.key = nn.Linear(key_dim, query_dim)
        self.value = nn.Linear(key_dim, query_dim)
        self.out = nn.Linear(query_dim, query_dim)

    @property
    def context_dim(self) -> int:
        return self.out.out_features

    def _split(self, x: Tensor) -> Tensor:
        b, s, d = x.shape
        return x.view(b, s, self.heads, d // self.heads).transpose(1, 2)  # (B, h, S, d)

    def precompute(self, memory: Tensor) -> tuple[Tensor, Tensor]:
        """memory (B, S, E) -> keys and values, each (B, h, S, D/h)."""
        return self._split(self.key(memory)), self._split(self.value(memory))

    def forward(
        self, query: Tensor, cache: tuple[Tensor, ...], mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """query (B, Q) or (B, T, Q), mask (B, S) -> context (B, Q) and weights (B, S), or
        (B, T, Q) and (B, T, S)."""
        keys, values = cache
        b, h, _, d = keys.shape
        single = query.dim() == 2
        q = self.query(query).view(b, -1, h, d).transpose(1, 2)  # (B, h, T, d)
        scores = q @ keys.transpose(-1, -2) / math.sqrt(d)  # (B, h, T, S)
        weights = masked_softmax(scores, mask[:, None, None, :])
        context = (weights @ values).transpose(1, 2).reshape(b, -1, h * d)  # (B, T, h*d)
        context, weights = self.out(context), weights.mean(dim=1)  # (B, T, Q), (B, T, S)
        if single:
            return context.squeeze(1), weights.squeeze(1)
        return context, weights


def expand_cache(cache: tuple[Tensor, ...], index: Tensor) -> tuple[Tensor, ...]:
    """Select batch rows of an attention cache (for beam search): index (B',) -> rows of dim 0."""
    return tuple(t.index_select(0, index) for t in cache)
