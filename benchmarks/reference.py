"""The reference for the speed benchmark: a plain implementation of the seeds' per-step algorithm.

Written the way seed 002 writes it (sequence-first tensors; at every decoder step the attention
``Linear(2H -> H)`` runs over the concatenation of the repeated decoder state and every encoder
output; one ``nn.LSTM`` call per step; the output layer per step into a preallocated tensor) and,
for the hybrid, with seed 000's ``nn.TransformerEncoder`` in front of the same decoder. It is the
baseline hybridseq is measured against, not part of the library.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from torch import Tensor


class PlainAttention(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.attn = nn.Linear(2 * hidden, hidden)
        self.v = nn.Linear(hidden, 1, bias=False)

    def forward(self, hidden: Tensor, enc_out: Tensor, mask: Tensor) -> Tensor:
        """hidden (L, B, H), enc_out (S, B, H), mask (B, S) -> weights (B, S)."""
        s = enc_out.shape[0]
        query = hidden[-1].unsqueeze(1).repeat(1, s, 1)  # (B, S, H)
        keys = enc_out.permute(1, 0, 2)  # (B, S, H)
        energy = torch.tanh(self.attn(torch.cat([query, keys], dim=2)))
        scores = self.v(energy).squeeze(2).masked_fill(~mask, float("-inf"))
        return torch.softmax(scores, dim=1)


class PlainDecoder(nn.Module):
    def __init__(self, vocab: int, emb: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(hidden + emb, hidden, layers, dropout=dropout)
        self.fc_out = nn.Linear(2 * hidden, vocab)
        self.dropout = nn.Dropout(dropout)
        self.attention = PlainAttention(hidden)

    def forward(self, token, hidden, cell, enc_out, mask):
        embedded = self.dropout(self.embedding(token.unsqueeze(0)))  # (1, B, E)
        weights = self.attention(hidden, enc_out, mask).unsqueeze(1)  # (B, 1, S)
        context = torch.bmm(weights, enc_out.permute(1, 0, 2)).permute(1, 0, 2)  # (1, B, H)
        output, (hidden, cell) = self.lstm(torch.cat([embedded, context], 2), (hidden, cell))
        logits = self.fc_out(torch.cat([output.squeeze(0), context.squeeze(0)], 1))
        return logits, hidden, cell


class PlainLSTMEncoder(nn.Module):
    def __init__(self, vocab: int, emb: int, hidden: int, layers: int, dropout: float) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.lstm = nn.LSTM(emb, hidden, layers, dropout=dropout)
        self.dropout = nn.Dropout(dropout)

    def forward(self, src: Tensor, mask: Tensor):
        out, (h, c) = self.lstm(self.dropout(self.embedding(src)))
        return out, h, c


class PlainTransformerEncoder(nn.Module):
    """Seed 000's encoder (it skips the positional encoding; the benchmark keeps that) with an
    embedding in front, and its decoder state: memory's last position as h, zeros as c."""

    def __init__(self, vocab, d_model, heads, ff, layers, dec_layers, dropout) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab, d_model)
        layer = nn.TransformerEncoderLayer(d_model, heads, ff, dropout)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.dec_layers = dec_layers

    def forward(self, src: Tensor, mask: Tensor):
        memory = self.encoder(self.embedding(src), src_key_padding_mask=~mask)  # (S, B, D)
        h = memory[-1].unsqueeze(0).repeat(self.dec_layers, 1, 1)
        return memory, h, torch.zeros_like(h)


class PlainSeq2Seq(nn.Module):
    def __init__(self, encoder: nn.Module, decoder: PlainDecoder) -> None:
        super().__init__()
        self.encoder = encoder
        self.decoder = decoder

    def forward(self, src: Tensor, mask: Tensor, trg: Tensor) -> Tensor:
        """src (S, B), mask (B, S), trg (T, B) starting with BOS -> logits (T, B, V)."""
        t_len, b = trg.shape
        outputs = torch.zeros(t_len, b, self.decoder.fc_out.out_features, device=src.device)
        enc_out, hidden, cell = self.encoder(src, mask)
        token = trg[0]
        for t in range(1, t_len):
            logits, hidden, cell = self.decoder(token, hidden, cell, enc_out, mask)
            outputs[t] = logits
            token = trg[t]
        return outputs

    @torch.no_grad()
    def greedy(self, src: Tensor, mask: Tensor, max_len: int, bos: int) -> Tensor:
        """Feed back the argmax for ``max_len`` steps: (S, B) -> (max_len, B) tokens."""
        enc_out, hidden, cell = self.encoder(src, mask)
        token = torch.full((src.shape[1],), bos, dtype=torch.long, device=src.device)
        out = []
        for _ in range(max_len):
            logits, hidden, cell = self.decoder(token, hidden, cell, enc_out, mask)
            token = logits.argmax(1)
            out.append(token)
        return torch.stack(out)

    @torch.no_grad()
    def beam(self, src: Tensor, mask: Tensor, k: int, bos: int) -> list[Tensor]:
        """The plain way: one sentence at a time, its k hypotheses as a batch of k, for
        source length + 1 steps; returns each sentence's best hypothesis."""
        best = []
        for i in range(src.shape[1]):
            n = int(mask[i].sum())
            m = mask[i : i + 1, :n].repeat(k, 1)
            enc_out, hidden, cell = self.encoder(src[:n, i : i + 1].repeat(1, k), m)
            token = torch.full((k,), bos, dtype=torch.long, device=src.device)
            scores = torch.tensor([0.0] + [float("-inf")] * (k - 1), device=src.device)
            history = torch.empty(k, 0, dtype=torch.long, device=src.device)
            for _ in range(n + 1):
                logits, hidden, cell = self.decoder(token, hidden, cell, enc_out, m)
                cand = (scores.unsqueeze(1) + torch.log_softmax(logits, 1)).view(-1)
                scores, idx = cand.topk(k)
                origin, token = idx // logits.shape[1], idx % logits.shape[1]
                hidden, cell = hidden[:, origin], cell[:, origin]
                history = torch.cat([history[origin], token.unsqueeze(1)], 1)
            best.append(history[0])
        return best
