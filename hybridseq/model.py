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

Copy attention (``copy_gate``, See et al. 2017): a copy model's ``encode`` also takes each source
token's id in the extended target vocabulary (B, S) (``codec.Codec.copy_ids``), and every step
gives log-probabilities over V + S entries, the vocabulary and one slot per source position for
the source's own unknown tokens (only their first ones receive mass). Ids >= V fed back to the
decoder read as ``<unk>``. Tied embeddings (``tie_embeddings``): the head's weight is the target
embedding's, behind a ``projection`` to its width where needed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch import Tensor

from hybridseq.attention import AdditiveAttention, MultiHeadAttention, expand_cache
from hybridseq.config import ConfigError, ModelConfig
from hybridseq.decoder import DecoderState, LSTMDecoder
from hybridseq.encoders import LSTMEncoder, ScaledEmbedding, TransformerEncoder
from hybridseq.vocab import BOS_ID, UNK_ID

PROB_FLOOR = 1e-30  # a copy model's probabilities are floored here before the log (log 0)


class Encoded(NamedTuple):
    """What ``encode`` hands to every decoding step."""

    memory: Tensor  # (B, S, E)
    mask: Tensor  # (B, S) bool, True = real
    cache: tuple[Tensor, ...]  # attention's per-batch projections of the memory
    final: tuple[Tensor, Tensor] | None  # LSTM encoder's final (h, c), each (L, B, E)
    weights: list  # the decoder's fused step weights (batch-independent, made once per batch)
    copy_ids: Tensor | None = None  # (B, S) a copy model's extended target ids of the source

    def select(self, index: Tensor) -> Encoded:
        """Rows ``index`` (B',) of the batch (beam search expands each source K times)."""
        final = self.final
        if final is not None:
            final = (final[0].index_select(1, index), final[1].index_select(1, index))
        copy_ids = None if self.copy_ids is None else self.copy_ids.index_select(0, index)
        return Encoded(
            self.memory.index_select(0, index),
            self.mask.index_select(0, index),
            expand_cache(self.cache, index),
            final,
            self.weights,
            copy_ids,
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
        projection: nn.Linear | None = None,
        copy_gate: nn.Linear | None = None,
    ) -> None:
        super().__init__()
        self.projection = projection  # features -> the tied head's width (tie_embeddings)
        self.copy_gate = copy_gate  # [features; target embedding] -> the generation gate
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
    def copies(self) -> bool:
        """Copy attention: outputs are log-probabilities over the extended vocabulary."""
        return self.copy_gate is not None

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
        parts = (self.tgt_embedding, self.attention, self.bridge, self.decoder, self.head)
        for part in (*parts, self.projection, self.copy_gate):
            if part is not None:
                part.to(dtype)
        return self

    def point(self, out):
        """The point forecast of a vector output, a tensor or array: (..., D, Q) -> (..., D),
        the quantile closest to 0.5; (..., D) without quantiles, unchanged."""
        return out[..., self.point_index] if self.quantiles else out

    # ---- encoder side -------------------------------------------------------------------
    def encode(
        self,
        src: Tensor,
        src_mask: Tensor | None = None,
        step_weights: bool = True,
        src_ext: Tensor | None = None,
    ) -> Encoded:
        """src (B, S) ids or (B, S, D_in) vectors, src_mask (B, S) bool -> Encoded.

        ``step_weights=False`` leaves out the decoder's fused step weights, for the
        teacher-forced forward, which fuses its own. ``src_ext`` (B, S): a copy model's
        extended target ids of the source tokens (read by a copy model only, which needs it).
        """
        if src_mask is None:
            src_mask = torch.ones(src.shape[:2], dtype=torch.bool, device=src.device)
        copy_ids = self._copy_ids(src, src_ext)
        x = self.src_input(src)  # (B, S, I)
        if self.src_input is self.tgt_embedding:  # shared: decode_in may have halved it
            x = x.float()
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
        return Encoded(memory, src_mask, cache, final, weights, copy_ids)

    def _copy_ids(self, src: Tensor, src_ext: Tensor | None) -> Tensor | None:
        """A copy model's src_ext (B, S), checked against src; None for any other model."""
        if not self.copies:
            return None
        if src_ext is None:
            raise ValueError(
                "copy model: encode needs src_ext, the source tokens' extended target ids "
                "(B, S) (codec.Codec.copy_ids)"
            )
        if tuple(src_ext.shape) != tuple(src.shape[:2]):
            raise ValueError(
                f"copy model: src_ext has shape {tuple(src_ext.shape)}, the source "
                f"{tuple(src.shape[:2])}"
            )
        return src_ext

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
        if self.copies:  # an id past the vocabulary is a copied unknown token
            prev = prev.masked_fill(prev >= self.tgt_embedding.num_embeddings, UNK_ID)
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
            logits (B, V) (a copy model: log-probabilities (B, V + S) over the extended
            vocabulary), vector (B, D) or quantiles (B, D, Q), and the new state; with
            ``attention``, third, the weights (B, S) over the source (zero on padding, rows
            summing to 1). A model without attention refuses ``attention``.
        """
        emb = self._decoder_input(prev, cov)
        features, state, attn = self._step(state, enc, enc.weights, emb=emb)
        out = self._output(features, emb, attn, enc.copy_ids)
        if not attention:
            return out, state
        if attn is None:
            raise ValueError("attention weights: this model has no attention (attention: none)")
        return out, state, attn

    def _output(
        self,
        features: Tensor,
        emb: Tensor | None = None,
        attn: Tensor | None = None,
        copy_ids: Tensor | None = None,
    ) -> Tensor:
        """The head: features (B, ..., F) -> logits (B, ..., V), vectors (B, ..., D) or
        quantiles (B, ..., D, Q); a copy model mixes in the step's target embedding emb
        (B, ..., I), attention weights attn (B, ..., S) and the source's copy_ids (B, S)."""
        x = self.dropout(features)
        out = self.head(x if self.projection is None else self.projection(x))
        if self.copies:
            return self._mixed(out, torch.cat([x, emb], dim=-1), attn, copy_ids)
        if not self.quantiles:
            return out
        raw = out.unflatten(-1, (self.target_width, len(self.quantiles)))
        return ordered_quantiles(raw, self.point_index)

    def _mixed(self, logits: Tensor, gate_in: Tensor, attn: Tensor, copy_ids: Tensor) -> Tensor:
        """The pointer-generator's distribution (See et al. 2017, eq. 8-9): p_gen =
        sigmoid(w . [context; decoder state; input embedding] + b) and
        P(w) = p_gen P_vocab(w) + (1 - p_gen) sum of the attention on source positions holding w,
        added in log space (log p_gen = -softplus(-g)), so that small probabilities keep their
        precision (the export's onnxruntime graph gives the same log-probabilities).

        Args:
            logits: (B, ..., V) the head's; gate_in: (B, ..., F + I); attn: (B, ..., S);
            copy_ids: (B, S) extended id of each source position (weight 0 at padding).
        Returns:
            log P (B, ..., V + S) in float32; an entry no part reaches is log PROB_FLOOR or less.
        """
        gate = self.copy_gate(gate_in).float()  # (B, ..., 1)
        attn, floor = attn.float(), math.log(PROB_FLOOR)
        index = copy_ids if attn.dim() == 2 else copy_ids.unsqueeze(1).expand_as(attn)
        generated = -F.softplus(-gate) + F.log_softmax(logits.float(), dim=-1)  # (B, ..., V)
        generated = torch.cat([generated, torch.full_like(attn, floor)], dim=-1)  # (B, ..., V + S)
        copied = torch.zeros_like(generated).scatter_add(-1, index, attn)
        copied = -F.softplus(gate) + torch.log(copied.clamp_min(PROB_FLOOR))
        high, low = torch.maximum(generated, copied), torch.minimum(generated, copied)
        return high + torch.log1p(torch.exp(low - high))  # log(exp(generated) + exp(copied))

    def forward(
        self,
        src: Tensor,
        tgt_in: Tensor,
        src_mask: Tensor | None = None,
        teacher_forcing: float = 1.0,
        generator: torch.Generator | None = None,
        tgt_cov: Tensor | None = None,
        src_ext: Tensor | None = None,
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
            src_ext: (B, S) a copy model's extended target ids of the source tokens.
        Returns:
            (B, T, V) logits ((B, T, V + S) log-probabilities for a copy model), (B, T, D_out)
            vectors or (B, T, D_out, Q) quantiles.
        """
        enc = self.encode(src, src_mask, teacher_forcing < 1.0, src_ext)
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
        context, attn = self.attention(out, enc.cache, enc.mask)  # (B, T, E), (B, T, S)
        return self._output(torch.cat([out, context], dim=-1), x, attn, enc.copy_ids)

    def _teacher_forced(
        self, tgt_in: Tensor, tgt_cov: Tensor | None, state: DecoderState, enc: Encoded
    ) -> Tensor:
        """All target inputs (and covariates) known: embed and project them for all steps at
        once, loop only over what depends on the previous step, apply the head once over all
        steps."""
        x = self._decoder_input(tgt_in, tgt_cov)  # (B, T, I + C)
        x_proj = self.decoder.project_input(x, x.shape[-1])
        weights = self.decoder.step_weights(skip=x.shape[-1])
        features, attns = [], []
        for x_t in x_proj.unbind(1):  # one backward for all steps, not a zero-fill per step
            f, state, attn = self._step(state, enc, weights, x_proj=x_t)
            features.append(f)
            attns.append(attn)
        attn = torch.stack(attns, dim=1) if self.copies else None  # (B, T, S)
        # (B, T, V|D), (B, T, D, Q), or (B, T, V + S) for a copy model
        return self._output(torch.stack(features, dim=1), x, attn, enc.copy_ids)

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


def build_model(cfg: ModelConfig, shared_vocab: bool = False) -> Seq2Seq:
    """Turn a model config (with data-derived sizes filled in) into a ``Seq2Seq``.
    ``shared_vocab`` (``data.share_vocab``): with ``tie_embeddings`` the source embedding is
    the target embedding too."""
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
            cfg.positions,
        )
    else:  # pragma: no cover - ModelConfig validates family
        raise ConfigError(f"model.family: unknown {cfg.family!r}")
    tgt_embedding = nn.Embedding(cfg.tgt_vocab, cfg.emb_dim) if cfg.tgt_vocab else None
    if cfg.tie_embeddings and shared_vocab:
        if cfg.src_vocab != cfg.tgt_vocab or width != cfg.emb_dim:
            raise ConfigError(
                "model.tie_embeddings: a shared source embedding needs src_vocab == tgt_vocab "
                f"and a source width ({width}) equal to emb_dim ({cfg.emb_dim})"
            )
        src_input: nn.Module = tgt_embedding
    elif cfg.src_vocab is not None:
        embedding = ScaledEmbedding if cfg.embed_scale else nn.Embedding
        src_input = embedding(cfg.src_vocab, width)
    else:
        src_input = nn.Linear(cfg.src_dim, width)
    attention, context_dim = _attention(cfg)
    tgt_width = cfg.emb_dim if tgt_embedding is not None else cfg.tgt_dim
    cov_dim = cfg.tgt_cov_dim or 0
    fed = context_dim if cfg.input_feed else 0
    decoder = LSTMDecoder(tgt_width + cov_dim + fed, cfg.dec_hidden, cfg.dec_layers, cfg.dropout)
    init = cfg.resolved_init
    bridge = (
        nn.Linear(cfg.memory_dim, 2 * cfg.dec_layers * cfg.dec_hidden) if init == "bridge" else None
    )
    features = cfg.dec_hidden + context_dim
    projection, head = _output_layers(cfg, features, tgt_embedding)
    copy_gate = nn.Linear(features + cfg.emb_dim, 1) if cfg.copy else None
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
        cfg.quantiles or [],
        cov_dim,
        cfg.input_feed,
        projection,
        copy_gate,
    )


def _attention(cfg: ModelConfig) -> tuple[nn.Module | None, int]:
    """The decoder's attention over the memory, and the width of its context."""
    if cfg.attention == "additive":
        return AdditiveAttention(cfg.dec_hidden, cfg.memory_dim, cfg.dec_hidden), cfg.memory_dim
    if cfg.attention == "multihead":
        return MultiHeadAttention(cfg.dec_hidden, cfg.memory_dim, cfg.attn_heads), cfg.dec_hidden
    return None, 0


def _output_layers(
    cfg: ModelConfig, features: int, tgt_embedding: nn.Embedding | None
) -> tuple[nn.Linear | None, nn.Linear]:
    """The projection (tied embeddings of another width than the features, else None) and
    the output layer over ``features``: logits, vectors or quantiles."""
    out_dim = cfg.tgt_vocab or cfg.tgt_dim * (len(cfg.quantiles or []) or 1)
    if cfg.tie_embeddings:  # Press & Wolf (2017): the output layer's weight is the embedding
        projection = nn.Linear(features, cfg.emb_dim) if features != cfg.emb_dim else None
        head = nn.Linear(cfg.emb_dim, out_dim)
        head.weight = tgt_embedding.weight
        return projection, head
    head = nn.Linear(features, out_dim)
    if cfg.head_init is not None:  # every output starts at this constant
        nn.init.zeros_(head.weight)
        nn.init.constant_(head.bias, cfg.head_init)
    return None, head
