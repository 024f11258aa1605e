"""The sequence-to-sequence model and the one builder that reads its config.

The model's seam is ``encode()`` once per batch and ``decode_step()`` once per output position.
Teacher-forced training (``forward``), greedy and beam search, and vector rollout all go through
it. Sequences are batch-first; masks are bool, True = real position.

Families (chosen in ``build_model``):
- ``lstm_attention`` (seed 002): embedding, LSTM encoder, LSTM decoder fed
  [previous target; attention context], output layer over [decoder output; context].
  With ``input_feed: false`` (either family) the decoder is fed the previous target only and
  its output queries the attention (Luong et al. 2015), so under teacher forcing no step loop
  is needed.
- ``hybrid`` (seed 000): embedding or linear projection to d_model, positional encoding,
  Transformer encoder, LSTM decoder whose initial state for every layer comes from the memory.

A vector target may be predicted as Q quantiles per variable (``quantiles``): the head then gives
(B, T, D, Q), and ``point`` picks the level closest to 0.5, which is what the decoder is fed back.

Covariates known for each target step (``cov_dim`` C > 0: calendar features, planned prices)
join the decoder input: at step t it is [previous target; covariates of step t] (+ context).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hybridseq.attention import AdditiveAttention, MultiHeadAttention, expand_cache
from hybridseq.config import ConfigError, ModelConfig
from hybridseq.decoder import DecoderState, LSTMDecoder
from hybridseq.encoders import LSTMEncoder, TransformerEncoder
from hybridseq.vocab import BOS_ID


class Encoded(NamedTuple):
    """What ``encode`` hands to every decoding step."""

    memory: Tensor  # (B, S, E)
    mask: Tensor  # (B, S) bool, True = real
    cache: tuple[Tensor, ...]  # attention's per-batch projections of the memory
    final: tuple[Tensor, Tensor] | None  # LSTM encoder's final (h, c), each (L, B, E)
    weights: list  # the decoder's fused step weights (batch-independent, made once per batch)

    def select(self, index: Tensor) -> Encoded:
        """Rows ``index`` (B',) of the batch (beam search expands each source K times)."""
        final = self.final
        if final is not None:
            final = (final[0].index_select(1, index), final[1].index_select(1, index))
        return Encoded(
            self.memory.index_select(0, index),
            self.mask.index_select(0, index),
            expand_cache(self.cache, index),
            final,
            self.weights,
        )


def ordered_quantiles(raw: Tensor, point: int) -> Tensor:
    """raw (..., Q) -> quantiles (..., Q) that never cross: level ``point`` is raw's own value,
    each level above adds a positive gap (softplus) to the one below it and each level below
    subtracts one, so the outputs are non-decreasing along Q whatever the weights."""
    mid = raw[..., point : point + 1]
    up = mid + F.softplus(raw[..., point + 1 :]).cumsum(-1)
    down = mid - F.softplus(raw[..., :point]).flip(-1).cumsum(-1).flip(-1)
    return torch.cat([down, mid, up], dim=-1)


class Seq2Seq(nn.Module):
    """Encoder, optional attention, LSTM decoder and output head, over tokens or vectors.

    A token side has an integer input (B, S) and a vocabulary; a vector side has a float input
    (B, S, D). The output is logits (B, T, V) for a token target, vectors (B, T, D) for a vector
    target, or (B, T, D, Q) with ``quantiles`` (Q levels, increasing).
    """

    def __init__(
        self,
        src_input: nn.Module,
        encoder: nn.Module,
        attention: nn.Module | None,
        tgt_embedding: nn.Embedding | None,
        decoder: LSTMDecoder,
        bridge: nn.Linear | None,
        head: nn.Linear,
        decoder_init: str,
        dropout: float,
        quantiles: Sequence[float] = (),
        cov_dim: int = 0,
        input_feed: bool = True,
    ) -> None:
        super().__init__()
        self.src_input = src_input
        self.encoder = encoder
        self.attention = attention
        self.tgt_embedding = tgt_embedding
        self.decoder = decoder
        self.bridge = bridge
        self.head = head
        self.decoder_init = decoder_init
        self.dropout = nn.Dropout(dropout)
        self.quantiles = tuple(quantiles)
        self.cov_dim = cov_dim
        self.input_feed = input_feed
        # the point forecast: the level closest to 0.5 (the lower one on a tie)
        self.point_index = min(
            range(len(quantiles)), key=lambda i: abs(quantiles[i] - 0.5), default=0
        )

    @property
    def token_target(self) -> bool:
        return self.tgt_embedding is not None

    @property
    def target_width(self) -> int:
        """Width of one decoder input: embedding size for tokens, vector width for vectors."""
        if self.tgt_embedding is not None:
            return self.tgt_embedding.embedding_dim
        return self.head.out_features // (len(self.quantiles) or 1)

    @property
    def step_dtype(self) -> torch.dtype:
        """The decoder side's precision: float32, unless ``decode_in`` changed it."""
        return self.head.weight.dtype

    def decode_in(self, dtype: torch.dtype) -> Seq2Seq:
        """Put the decoder side (target embedding, attention, bridge, decoder, output layer)
        in ``dtype`` for decoding; the encoder stays in float32 and its output is converted
        once. The decoder reads all its weights at every step, the encoder once per batch over
        every position, so a half precision saves where a CPU without half-precision matrix
        units waits on memory (the steps) and not where it computes (the encoder)."""
        for part in (self.tgt_embedding, self.attention, self.bridge, self.decoder, self.head):
            if part is not None:
                part.to(dtype)
        return self

    def point(self, out):
        """The point forecast of a vector output, a tensor or array: (..., D, Q) -> (..., D),
        the quantile closest to 0.5; (..., D) without quantiles, unchanged."""
        return out[..., self.point_index] if self.quantiles else out

    # ---- encoder side -------------------------------------------------------------------
    def encode(
        self, src: Tensor, src_mask: Tensor | None = None, step_weights: bool = True
    ) -> Encoded:
        """src (B, S) ids or (B, S, D_in) vectors, src_mask (B, S) bool -> Encoded.

        ``step_weights=False`` leaves out the decoder's fused step weights, for the
        teacher-forced forward, which fuses its own.
        """
        if src_mask is None:
            src_mask = torch.ones(src.shape[:2], dtype=torch.bool, device=src.device)
        x = self.src_input(src)  # (B, S, I)
        if isinstance(self.encoder, LSTMEncoder):
            memory, final = self.encoder(self.dropout(x), src_mask)
        else:  # the Transformer encoder drops out once itself, after adding the positions
            memory, final = self.encoder(x, src_mask), None
        if memory.dtype != self.step_dtype:  # a decoder side in half precision (decode_in)
            memory = memory.to(self.step_dtype)
            if final is not None:
                final = (final[0].to(memory.dtype), final[1].to(memory.dtype))
        cache = self.attention.precompute(memory) if self.attention is not None else ()
        weights = self.decoder.step_weights() if step_weights else []
        return Encoded(memory, src_mask, cache, final, weights)

    def init_state(self, enc: Encoded) -> DecoderState:
        """The decoder's initial (h, c), each (L, B, H), by ``decoder_init``."""
        layers, hidden = self.decoder.layers, self.decoder.hidden
        b = enc.memory.shape[0]
        if self.decoder_init == "final":
            assert enc.final is not None
            return DecoderState(*enc.final)
        if self.decoder_init == "bridge":
            m = enc.mask.unsqueeze(-1).to(enc.memory.dtype)  # (B, S, 1)
            pooled = (enc.memory * m).sum(1) / m.sum(1)  # (B, E)
            hc = torch.tanh(self.bridge(pooled)).view(b, 2, layers, hidden)
            hc = hc.permute(1, 2, 0, 3)  # (2, L, B, H)
            return DecoderState(hc[0].contiguous(), hc[1].contiguous())
        zeros = enc.memory.new_zeros(layers, b, hidden)
        if self.decoder_init == "last":
            last = enc.mask.sum(1) - 1  # (B,) index of the last real position
            h = enc.memory[torch.arange(b, device=last.device), last]  # (B, E)
            return DecoderState(h.unsqueeze(0).expand(layers, b, hidden).contiguous(), zeros)
        return DecoderState(zeros, zeros.clone())

    # ---- decoder side -------------------------------------------------------------------
    def start_inputs(self, batch_size: int, device: torch.device) -> Tensor:
        """The first decoder input: BOS (B,) for tokens, a zero vector (B, D) for vectors."""
        if self.token_target:
            return torch.full((batch_size,), BOS_ID, dtype=torch.long, device=device)
        return torch.zeros(batch_size, self.target_width, device=device, dtype=self.step_dtype)

    def _decoder_input(self, prev: Tensor, cov: Tensor | None) -> Tensor:
        """prev (B, ...) ids or (B, ..., D) vectors, cov (B, ..., C) or None -> (B, ..., I + C):
        the decoder's input apart from the attention context."""
        x = self.dropout(self.tgt_embedding(prev)) if self.token_target else prev
        if cov is None and not self.cov_dim:  # the usual case, at every decoding step
            return x
        self.check_covariates(cov, tuple(x.shape[:-1]))
        return torch.cat([x, cov.to(x.dtype)], dim=-1)

    def check_covariates(self, cov: Tensor | None, lead: tuple[int, ...]) -> None:
        """Refuse covariates that do not fit: a model with ``cov_dim`` C needs (*lead, C),
        e.g. (B, T, C); one without needs None."""
        want = (*lead, self.cov_dim) if self.cov_dim else None
        got = None if cov is None else tuple(cov.shape)
        if got != want:
            expected = f"shape {want}" if want else "none (the model takes no covariates)"
            raise ValueError(
                f"decoder covariates: expected {expected}, got {f'shape {got}' if got else 'none'}"
            )

    def _step(
        self,
        state: DecoderState,
        enc: Encoded,
        weights: list,
        emb: Tensor | None = None,
        x_proj: Tensor | None = None,
    ) -> tuple[Tensor, DecoderState, Tensor | None]:
        """One step -> features (B, F) for the head, the new state, and the step's attention
        weights over the source (B, S) (None for a model without attention). The target input
        (with the step's covariates) enters either embedded, emb (B, I + C), or already
        projected, x_proj (B, 4H), with ``weights`` made to match."""
        if self.attention is None:
            return (*self.decoder.step(state, emb, weights, x_proj), None)
        if not self.input_feed:  # the new output queries the attention
            out, state = self.decoder.step(state, emb, weights, x_proj)
            context, attn = self.attention(out, enc.cache, enc.mask)  # (B, E), (B, S)
            return torch.cat([out, context], dim=-1), state, attn
        context, attn = self.attention(state.h[-1], enc.cache, enc.mask)  # (B, E), (B, S)
        x = context if emb is None else torch.cat([emb, context], dim=-1)
        out, state = self.decoder.step(state, x, weights, x_proj)
        return torch.cat([out, context], dim=-1), state, attn

    def decode_step(
        self,
        prev: Tensor,
        state: DecoderState,
        enc: Encoded,
        cov: Tensor | None = None,
        attention: bool = False,
    ) -> tuple[Tensor, DecoderState] | tuple[Tensor, DecoderState, Tensor]:
        """One output position.

        Args:
            prev: (B,) previous token ids, or (B, D) previous vectors.
            state: the decoder state after the previous step.
            enc: from ``encode``.
            cov: (B, C) this step's covariates, for a model with ``cov_dim`` C.
            attention: also return the step's attention weights.
        Returns:
            logits (B, V), vector (B, D) or quantiles (B, D, Q), and the new state; with
            ``attention``, third, the weights (B, S) over the source (zero on padding, rows
            summing to 1). A model without attention refuses ``attention``.
        """
        emb = self._decoder_input(prev, cov)
        features, state, attn = self._step(state, enc, enc.weights, emb=emb)
        if not attention:
            return self._output(features), state
        if attn is None:
            raise ValueError("attention weights: this model has no attention (attention: none)")
        return self._output(features), state, attn

    def _output(self, features: Tensor) -> Tensor:
        """The head: features (B, ..., F) -> logits (B, ..., V), vectors (B, ..., D) or
        quantiles (B, ..., D, Q)."""
        out = self.head(self.dropout(features))
        if not self.quantiles:
            return out
        raw = out.unflatten(-1, (self.target_width, len(self.quantiles)))
        return ordered_quantiles(raw, self.point_index)

    def forward(
        self,
        src: Tensor,
        tgt_in: Tensor,
        src_mask: Tensor | None = None,
        teacher_forcing: float = 1.0,
        generator: torch.Generator | None = None,
        tgt_cov: Tensor | None = None,
    ) -> Tensor:
        """Training forward pass.

        Args:
            src: (B, S) ids or (B, S, D_in) vectors.
            tgt_in: (B, T) or (B, T, D_out) decoder inputs (start symbol, then the target).
            src_mask: (B, S) bool; None means no padding.
            teacher_forcing: probability of feeding the gold previous target; below 1, each
                sequence's input is the model's own previous prediction otherwise (scheduled
                sampling, Bengio et al. 2015), without gradient through the choice.
            generator: the random source of that choice.
            tgt_cov: (B, T, C) covariates of each target step, for a model with ``cov_dim`` C.
        Returns:
            (B, T, V) logits, (B, T, D_out) vectors or (B, T, D_out, Q) quantiles.
        """
        enc = self.encode(src, src_mask, step_weights=teacher_forcing < 1.0)
        state = self.init_state(enc)
        if teacher_forcing < 1.0:
            return self._sampled(tgt_in, tgt_cov, state, enc, teacher_forcing, generator)
        if self.attention is None or not self.input_feed:
            return self._all_steps(tgt_in, tgt_cov, state, enc)
        return self._teacher_forced(tgt_in, tgt_cov, state, enc)

    def _all_steps(
        self, tgt_in: Tensor, tgt_cov: Tensor | None, state: DecoderState, enc: Encoded
    ) -> Tensor:
        """Teacher forcing with nothing fed back from the attention: the decoder LSTM, the
        attention and the head each run once over all T steps."""
        x = self._decoder_input(tgt_in, tgt_cov)  # (B, T, I + C)
        out, _ = self.decoder.run(x, state)  # (B, T, H)
        if self.attention is None:
            return self._output(out)
        context, _ = self.attention(out, enc.cache, enc.mask)  # (B, T, E)
        return self._output(torch.cat([out, context], dim=-1))

    def _teacher_forced(
        self, tgt_in: Tensor, tgt_cov: Tensor | None, state: DecoderState, enc: Encoded
    ) -> Tensor:
        """All target inputs (and covariates) known: embed and project them for all steps at
        once, loop only over what depends on the previous step, apply the head once over all
        steps."""
        x = self._decoder_input(tgt_in, tgt_cov)  # (B, T, I + C)
        x_proj = self.decoder.project_input(x, x.shape[-1])
        weights = self.decoder.step_weights(skip=x.shape[-1])
        features = []
        for x_t in x_proj.unbind(1):  # one backward for all steps, not a zero-fill per step
            f, state, _ = self._step(state, enc, weights, x_proj=x_t)
            features.append(f)
        return self._output(torch.stack(features, dim=1))  # (B, T, V|D) or (B, T, D, Q)

    def _sampled(
        self,
        tgt_in: Tensor,
        tgt_cov: Tensor | None,
        state: DecoderState,
        enc: Encoded,
        teacher_forcing: float,
        generator: torch.Generator | None,
    ) -> Tensor:
        self.check_covariates(tgt_cov, tuple(tgt_in.shape[:2]))  # (B, T, C) before indexing
        outputs = []
        prev = tgt_in[:, 0]
        b = tgt_in.shape[0]
        for t in range(tgt_in.shape[1]):
            if t > 0:
                last = outputs[-1].detach()
                own = last.argmax(-1) if self.token_target else self.point(last)
                gold = torch.rand(b, generator=generator).to(tgt_in.device) < teacher_forcing
                gold = gold.view(b, *([1] * (tgt_in.dim() - 2)))
                prev = torch.where(gold, tgt_in[:, t], own)
            cov = None if tgt_cov is None else tgt_cov[:, t]
            out, state = self.decode_step(prev, state, enc, cov)
            outputs.append(out)
        return torch.stack(outputs, dim=1)


def build_model(cfg: ModelConfig) -> Seq2Seq:
    """Turn a model config (with data-derived sizes filled in) into a ``Seq2Seq``."""
    if (cfg.src_vocab is None) == (cfg.src_dim is None):
        raise ConfigError("model: exactly one of src_vocab (tokens) or src_dim (vectors) is set")
    if (cfg.tgt_vocab is None) == (cfg.tgt_dim is None):
        raise ConfigError("model: exactly one of tgt_vocab (tokens) or tgt_dim (vectors) is set")
    if cfg.family == "lstm_attention":
        width = cfg.emb_dim
        encoder = LSTMEncoder(width, cfg.enc_hidden, cfg.enc_layers, cfg.bidirectional, cfg.dropout)
    elif cfg.family == "hybrid":
        width = cfg.d_model
        encoder = TransformerEncoder(
            cfg.d_model,
            cfg.heads,
            cfg.ff_dim,
            cfg.enc_layers,
            cfg.dropout,
            cfg.max_positions,
            cfg.norm_first,
        )
    else:  # pragma: no cover - ModelConfig validates family
        raise ConfigError(f"model.family: unknown {cfg.family!r}")
    if cfg.src_vocab is not None:
        src_input: nn.Module = nn.Embedding(cfg.src_vocab, width)
    else:
        src_input = nn.Linear(cfg.src_dim, width)

    memory_dim = cfg.memory_dim
    if cfg.attention == "additive":
        attention: nn.Module | None = AdditiveAttention(cfg.dec_hidden, memory_dim, cfg.dec_hidden)
        context_dim = memory_dim
    elif cfg.attention == "multihead":
        attention = MultiHeadAttention(cfg.dec_hidden, memory_dim, cfg.attn_heads)
        context_dim = cfg.dec_hidden
    else:
        attention, context_dim = None, 0

    tgt_embedding = nn.Embedding(cfg.tgt_vocab, cfg.emb_dim) if cfg.tgt_vocab else None
    tgt_width = cfg.emb_dim if tgt_embedding is not None else cfg.tgt_dim
    cov_dim = cfg.tgt_cov_dim or 0
    fed = context_dim if cfg.input_feed else 0
    decoder = LSTMDecoder(tgt_width + cov_dim + fed, cfg.dec_hidden, cfg.dec_layers, cfg.dropout)
    init = cfg.resolved_init
    bridge = (
        nn.Linear(memory_dim, 2 * cfg.dec_layers * cfg.dec_hidden) if init == "bridge" else None
    )
    quantiles = cfg.quantiles or []
    out_dim = cfg.tgt_vocab or cfg.tgt_dim * (len(quantiles) or 1)
    head = nn.Linear(cfg.dec_hidden + context_dim, out_dim)
    if cfg.head_init is not None:  # every output starts at this constant
        nn.init.zeros_(head.weight)
        nn.init.constant_(head.bias, cfg.head_init)
    return Seq2Seq(
        src_input,
        encoder,
        attention,
        tgt_embedding,
        decoder,
        bridge,
        head,
        init,
        cfg.dropout,
        quantiles,
        cov_dim,
        cfg.input_feed,
    )
