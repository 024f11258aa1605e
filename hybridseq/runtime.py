"""Decode an exported model (``hybridseq export``) with onnxruntime and numpy only.

    from hybridseq import runtime
    model = runtime.load("exports/g2p")          # encoder.onnx, decoder_step.onnx, export.json
    model.predict(["putting"], beam=5)           # -> ["P UH T IH NG"]

A deployment needs numpy, onnxruntime and, for a subword codec, the ``tokenizers`` package: this
module imports neither torch nor any other part of hybridseq, so it can be copied alone. It
reproduces the torch side's behaviour step for step: the codec (characters, whitespace words or
BPE subwords, unknown tokens as ``<unk>``; for a copy model each source token's id in the
extended target vocabulary, and output ids past the vocabulary written as the source's own
tokens), ``predict``'s length-bucketed batches, the output limit a * source_length + b, greedy
decoding, the batched beam search of ``hybridseq.decode`` (finished beams extended by EOS at no
cost, GNMT length penalty, the same ranking) and vector rollout with quantiles and covariates.
Masks are bool with True = real position.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hybridseq.outputs import Alignment, Prediction

EXPORT_FILE = "export.json"
FORMAT_VERSION = 1
PAD_ID, BOS_ID, EOS_ID, UNK_ID = 0, 1, 2, 3  # the first four entries of every vocabulary
UNK = "<unk>"
SPACE = "▁"  # the char tokenizer's stand-in for " "
BUCKET_BATCHES = 100  # predict sorts by length within windows of this many batches


class ExportError(ValueError):
    """An export that cannot be made or loaded, or an input that does not fit it (wrong kind,
    width or count)."""


def is_export(path: str | Path) -> bool:
    """Whether ``path`` is an export directory (it holds export.json)."""
    return (Path(path) / EXPORT_FILE).is_file()


# ---- codec: text <-> ids, as hybridseq.codec / tokenize / vocab ---------------------------------
class Side:
    """One side of the codec: a tokenizer kind and vocabulary for tokens, or a vector width."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.dim: int | None = int(d["dim"]) if "dim" in d else None
        self.kind: str | None = None
        self.vocab: list[str] = []
        self._ids: dict[str, int] = {}
        self._bpe = None
        if "vocab" in d:
            self.kind = d["tokenizer"]["kind"]
            self.vocab = list(d["vocab"]["tokens"])
            self._ids = {tok: i for i, tok in enumerate(self.vocab)}
            if self.kind == "subword":
                from tokenizers import Tokenizer  # only a subword codec needs it

                self._bpe = Tokenizer.from_str(d["tokenizer"]["model"])

    @property
    def is_tokens(self) -> bool:
        return self.kind is not None

    def tokenize(self, text: str) -> list[str]:
        """Text -> token strings (characters with " " as "▁", words, or BPE pieces)."""
        if self.kind == "char":
            return [SPACE if ch == " " else ch for ch in text]
        if self.kind == "whitespace":
            return text.split()
        return self._bpe.encode(text).tokens

    def detokenize(self, tokens: list[str]) -> str:
        """Token strings -> text (the inverse of ``tokenize``)."""
        if self.kind == "char":
            return "".join(" " if tok == SPACE else tok for tok in tokens)
        if self.kind == "whitespace":
            return " ".join(tokens)
        return self._bpe.decoder.decode(list(tokens))

    def tokens(self, ids: Sequence[int]) -> list[str]:
        """Ids -> token strings, stopping at EOS and skipping PAD and BOS."""
        out = []
        for i in ids:
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                out.append(self.vocab[i])
        return out

    def text(self, ids: Sequence[int]) -> str:
        return self.detokenize(self.tokens(ids))

    def encode(self, item: Any, where: str = "input") -> np.ndarray:
        """Text -> ids (S,) int64, unknown tokens as UNK; or array -> (S, D) float32."""
        if self.is_tokens:
            if not isinstance(item, str):
                raise ExportError(f"{where}: expected text for a token model, got {type(item)}")
            ids = [self._ids.get(tok, UNK_ID) for tok in self.tokenize(item)]
            if not ids:
                raise ExportError(f"{where}: empty input")
            return np.asarray(ids, dtype=np.int64)
        arr = np.asarray(item, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2 or arr.shape[1] != self.dim:
            raise ExportError(
                f"{where}: expected vectors of shape (length, {self.dim}), got {arr.shape}"
            )
        if not np.isfinite(arr).all():
            raise ExportError(f"{where}: vectors: values must be finite")
        return np.ascontiguousarray(arr)


class Codec:
    """Source and target sides, the covariates' width if the model takes any, and whether the
    model copies (``hybridseq.codec.Codec``: the extended vocabulary)."""

    def __init__(self, d: dict[str, Any]) -> None:
        self.source = Side(d["source"])
        self.target = Side(d["target"])
        self.covariates = Side(d["covariates"]) if "covariates" in d else None
        self.copy = bool(d.get("copy", False))

    def source_oovs(self, text: str) -> list[str]:
        """The source's distinct tokens that the target vocabulary lacks (or holds as a special
        token), first seen first: the extended ids V, V + 1, ... in order."""
        ids = self.target._ids
        tokens = self.source.tokenize(text)
        return list(dict.fromkeys(t for t in tokens if ids.get(t, UNK_ID) <= UNK_ID))

    def copy_ids(self, text: str) -> np.ndarray:
        """A source text -> each token's id in the extended target vocabulary (S,) int64."""
        v, ids = len(self.target.vocab), self.target._ids
        slot = {tok: j for j, tok in enumerate(self.source_oovs(text))}
        out = [
            ids[t] if ids.get(t, UNK_ID) > UNK_ID else v + slot[t]
            for t in self.source.tokenize(text)
        ]
        return np.asarray(out, dtype=np.int64)

    def output_tokens(self, ids: Sequence[int], source: str) -> list[str]:
        """Output ids -> target token strings (stops at EOS, drops PAD and BOS); a copy
        model's ids >= V are ``source``'s OOVs (``<unk>`` past them)."""
        v = len(self.target.vocab)
        if not self.copy or all(int(i) < v for i in ids):
            return self.target.tokens(ids)
        oovs = self.source_oovs(source)
        out = []
        for i in map(int, ids):
            if i == EOS_ID:
                break
            if i not in (PAD_ID, BOS_ID):
                j = i - v
                out.append(self.target.vocab[i] if j < 0 else oovs[j] if j < len(oovs) else UNK)
        return out

    def output_text(self, ids: Sequence[int], source: str) -> str:
        return self.target.detokenize(self.output_tokens(ids, source))


# ---- batching ------------------------------------------------------------------------------------
def batch_indices(lengths: Sequence[int], batch_size: int) -> list[list[int]]:
    """``predict``'s batches: indices sorted by length (stably) within windows of
    ``BUCKET_BATCHES`` batches, then cut into consecutive batches of ``batch_size``."""
    order = list(range(len(lengths)))
    chunk = batch_size * BUCKET_BATCHES
    order = [
        i
        for s in range(0, len(order), chunk)
        for i in sorted(order[s : s + chunk], key=lambda i: lengths[i])
    ]
    return [order[s : s + batch_size] for s in range(0, len(order), batch_size)]


def pad(seqs: Sequence[np.ndarray], value: float) -> tuple[np.ndarray, np.ndarray]:
    """(L_i, ...) arrays -> (B, L, ...) padded with ``value``, and the (B, L) bool mask."""
    longest = max(len(s) for s in seqs)
    out = np.full((len(seqs), longest, *seqs[0].shape[1:]), value, dtype=seqs[0].dtype)
    mask = np.zeros((len(seqs), longest), dtype=bool)
    for i, s in enumerate(seqs):
        out[i, : len(s)] = s
        mask[i, : len(s)] = True
    return out, mask


def max_lengths(mask: np.ndarray, a: float, b: int) -> np.ndarray:
    """Per-row output limit a * source_length + b, at least 1, in float32 as torch computes
    it: (B, S) -> (B,) int64."""
    limit = mask.sum(1).astype(np.float32) * np.float32(a) + np.float32(b)
    return np.maximum(limit.astype(np.int64), 1)


def length_penalty(lengths: np.ndarray, alpha: float) -> np.ndarray:
    """GNMT's lp(Y) = ((5 + |Y|) / 6)^alpha (Wu et al. 2016, eq. 14), in float32."""
    return np.power(
        (np.float32(5.0) + lengths.astype(np.float32)) / np.float32(6.0), np.float32(alpha)
    )


# ---- the two graphs ------------------------------------------------------------------------------
@dataclass
class Encoded:
    """What the encoder graph gives every decoding step of a batch."""

    h: np.ndarray  # (L, B, H) the decoder's state
    c: np.ndarray  # (L, B, H)
    fixed: dict[str, np.ndarray] = field(default_factory=dict)  # mask (B, S) and the cache

    def select(self, rows: np.ndarray) -> Encoded:
        """Rows ``rows`` (B',) of the batch (beam search expands each source K times)."""
        return Encoded(
            self.h[:, rows], self.c[:, rows], {k: v[rows] for k, v in self.fixed.items()}
        )


class Graphs:
    """onnxruntime sessions of encoder.onnx and decoder_step.onnx."""

    def __init__(self, directory: Path, info: dict[str, Any], threads: int | None = None) -> None:
        try:
            import onnxruntime as ort
        except ImportError:
            raise ExportError(
                "decoding an export needs onnxruntime: pip install onnxruntime"
            ) from None

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        graphs = info["graphs"]

        def session(name: str):
            path = directory / graphs[name]["file"]
            return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

        self.encoder, self.decoder = session("encoder"), session("decoder_step")
        self.enc_outputs = graphs["encoder"]["outputs"]  # h, c, then the cache
        self.step_inputs = graphs["decoder_step"]["inputs"]
        self.attends = "mask" in self.step_inputs

    def encode(self, src: np.ndarray, mask: np.ndarray) -> Encoded:
        """src (B, S) int64 ids or (B, S, D_in) float32, mask (B, S) bool -> Encoded."""
        h, c, *cache = self.encoder.run(None, {"src": src, "mask": mask})
        fixed = {"mask": mask, **dict(zip(self.enc_outputs[2:], cache, strict=True))}
        return Encoded(h, c, fixed if self.attends else {})

    def step(
        self, prev: np.ndarray, h: np.ndarray, c: np.ndarray, enc: Encoded, cov=None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
        """One output position: prev (B,) ids or (B, D), h and c (L, B, H), cov (B, C) ->
        logits (B, V) / vector (B, D) / quantiles (B, D, Q), new h, c, and the step's attention
        weights (B, S) (None without attention)."""
        feeds = {"prev": prev, "h": h, "c": c, **enc.fixed}
        if cov is not None:
            feeds["cov"] = np.ascontiguousarray(cov)
        out, h, c, *attention = self.decoder.run(None, feeds)
        return out, h, c, (attention[0] if attention else None)


# ---- decoders, as hybridseq.decode --------------------------------------------------------------
def force_eos(scores: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Make EOS the only possible token for ``rows`` (B,) bool of scores (B, V), keeping its
    score."""
    if not rows.any():
        return scores
    eos = scores[rows, EOS_ID]
    scores = scores.copy()
    scores[rows] = -np.inf
    scores[rows, EOS_ID] = eos
    return scores


def log_softmax(x: np.ndarray) -> np.ndarray:
    """(B, V) float32 -> log-probabilities (B, V)."""
    shifted = x - x.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def trim(ids: np.ndarray) -> list[list[int]]:
    """(B, T) ids -> lists cut at the first EOS."""
    out = []
    for row in ids.tolist():
        out.append(row[: row.index(EOS_ID)] if EOS_ID in row else row)
    return out


def greedy(
    graphs: Graphs,
    enc: Encoded,
    limits: np.ndarray,
    scored: bool = False,
    attention: bool = False,
) -> list[tuple[list[int], float | None, np.ndarray | None]]:
    """Most likely token at each step; limits (B,) the most tokens per output (EOS included).

    Returns per row: the ids (EOS and what follows removed); with ``scored`` the sum of the
    chosen tokens' log-probabilities (EOS included, taken before EOS is forced, as beam search
    scores), else None; with ``attention`` each output token's weights (T_out, S), else None.
    """
    rows, steps, last = len(limits), int(limits.max()), limits - 1
    ids = np.full((rows, steps), PAD_ID, dtype=np.int64)
    total = np.zeros(rows, dtype=np.float32)
    done = np.zeros(rows, dtype=bool)
    prev = np.full(rows, BOS_ID, dtype=np.int64)
    h, c, weights = enc.h, enc.c, []
    for t in range(steps):
        logits, h, c, attn = graphs.step(prev, h, c, enc)
        nxt = force_eos(logits, t >= last).argmax(-1)
        nxt[done] = PAD_ID
        if scored:
            chosen = np.take_along_axis(log_softmax(logits), nxt[:, None], axis=1)[:, 0]
            total += np.where(done, np.float32(0.0), chosen)
        ids[:, t] = nxt
        weights.append(attn)
        done |= nxt == EOS_ID
        prev = nxt
        if done.all():
            break
    kept = np.stack(weights, axis=1) if attention and graphs.attends else None  # (B, T, S)
    return [
        (hyp, float(total[r]) if scored else None, None if kept is None else kept[r, : len(hyp)])
        for r, hyp in enumerate(trim(ids))
    ]


def topk(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices (B, k) of the k largest scores of each row of (B, N), largest first; equal
    scores in index order."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


class BeamState:
    """Rows are B sources x K beams, as in ``hybridseq.decode``: ``scores`` (B, K), and per row
    ``lengths``, ``history`` (R, T), ``done``, the previous token and the decoder state."""

    def __init__(self, enc: Encoded, b: int, k: int, steps: int, attention: bool) -> None:
        rows = b * k
        self.b, self.k = b, k
        self.scores = np.full((b, k), -np.inf, dtype=np.float32)
        self.scores[:, 0] = 0.0  # all beams start identical: expand only the first
        self.lengths = np.zeros(rows, dtype=np.int64)
        self.history = np.full((rows, steps), PAD_ID, dtype=np.int64)
        self.done = np.zeros(rows, dtype=bool)
        self.prev = np.full(rows, BOS_ID, dtype=np.int64)
        self.h, self.c = enc.h, enc.c
        self.first_row = np.arange(b)[:, None] * k  # (B, 1)
        width = enc.fixed["mask"].shape[1] if attention and "mask" in enc.fixed else None
        self.weights = None if width is None else np.zeros((rows, steps, width), np.float32)

    def extend(self, t: int, logits: np.ndarray, last: np.ndarray, h, c, attn) -> None:
        """Step t: each source's K best extensions of its beams; finished beams are extended
        by EOS at no cost, so their score stays frozen."""
        b, k, done = self.b, self.k, self.done
        logp = force_eos(log_softmax(logits.astype(np.float32)), done | (t >= last))
        logp[:, EOS_ID] = np.where(done, np.float32(0.0), logp[:, EOS_ID])
        v = logp.shape[-1]
        cand = (self.scores.reshape(-1, 1) + logp).reshape(b, k * v)  # (B, K*V)
        flat = topk(cand, k)  # (B, K)
        self.scores = np.take_along_axis(cand, flat, axis=1)
        origin = (flat // v + self.first_row).reshape(-1)  # (B*K,) the row each beam extends
        nxt = (flat % v).reshape(-1)  # (B*K,)
        self.history = self.history[origin]
        self.history[:, t] = nxt
        if self.weights is not None:
            self.weights = self.weights[origin]
            self.weights[:, t] = attn[origin]
        kept = ~done[origin]
        self.lengths = self.lengths[origin] + kept
        self.done = ~kept | (nxt == EOS_ID)
        self.prev = nxt
        self.h, self.c = h[:, origin], c[:, origin]

    def ranked(self, alpha: float, n_best: int) -> list[list[tuple]]:
        """Per source its ``n_best`` beams best first by score / lp(length), those with a
        finite score: (ids, score, weights (T_out, S) or None)."""
        final = self.scores / length_penalty(self.lengths, alpha).reshape(self.b, self.k)
        ids, out = trim(self.history), []
        for i in range(self.b):
            order = np.argsort(-final[i], kind="stable")[:n_best]  # ties: the lower beam
            hyps = []
            for j in order:
                r, score = i * self.k + int(j), float(final[i, j])
                w = None if self.weights is None else self.weights[r, : len(ids[r])]
                if score > -np.inf:
                    hyps.append((ids[r], score, w))
            out.append(hyps)
        return out


def beam_search(
    graphs: Graphs,
    enc: Encoded,
    limits: np.ndarray,
    beam: int,
    alpha: float = 0.0,
    n_best: int = 1,
    attention: bool = False,
) -> list[list[tuple[list[int], float, np.ndarray | None]]]:
    """Batched beam search: the B sources' K beams run as one batch of B*K rows.

    Args:
        enc: the B sources encoded; limits: (B,) most tokens per output (EOS included);
        beam: K; alpha: length-penalty exponent (0: rank by total log-probability).
    Returns:
        per source its ``n_best`` hypotheses best first (fewer where fewer have a finite
        score): ids (EOS removed), score / lp(length), and with ``attention`` each output
        token's weights (T_out, S), else None.
    """
    b, k = len(limits), beam
    rows = np.repeat(np.arange(b), k)  # (B*K,) the source of each row
    enc, limits = enc.select(rows), limits[rows]
    steps, last = int(limits.max()), limits - 1
    state = BeamState(enc, b, k, steps, attention and graphs.attends)
    for t in range(steps):
        logits, h, c, attn = graphs.step(state.prev, state.h, state.c, enc)
        state.extend(t, logits, last, h, c, attn)
        if state.done.all():
            break
    return state.ranked(alpha, n_best)


def rollout(
    graphs: Graphs,
    enc: Encoded,
    steps: int,
    width: int,
    point: int | None,
    covariates: np.ndarray | None = None,
) -> np.ndarray:
    """Vector targets: feed each predicted vector (the quantile ``point`` of a quantile model)
    back as the next input, starting from zeros (B, width).

    Args:
        steps: how many vectors to predict; covariates: (B, steps, C) or None.
    Returns:
        predictions (B, steps, D), or all quantiles (B, steps, D, Q).
    """
    b = enc.h.shape[1]
    prev = np.zeros((b, width), dtype=np.float32)
    h, c, outputs = enc.h, enc.c, []
    for t in range(steps):
        cov = None if covariates is None else covariates[:, t]
        out, h, c, _ = graphs.step(prev, h, c, enc, cov)
        prev = out if point is None else np.ascontiguousarray(out[..., point])
        outputs.append(out)
    return np.stack(outputs, axis=1)


# ---- the model -----------------------------------------------------------------------------------
class ExportedModel:
    """An exported model decoded by onnxruntime; ``predict`` as ``hybridseq.api.Model``'s."""

    def __init__(self, directory: Path, info: dict[str, Any], graphs: Graphs) -> None:
        self.directory, self.info, self.graphs = directory, info, graphs
        self.config: dict[str, Any] = info["config"]
        self.codec = Codec(info["codec"])
        self.quantiles = tuple(info["model"]["quantiles"])
        self.point_index = int(info["model"]["point_index"])
        self.width = int(info["model"]["target_width"])

    @property
    def token_target(self) -> bool:
        return self.info["target"] == "tokens"

    def decode_config(self, beam: int | None = None, steps: int | None = None) -> dict[str, Any]:
        """The export's decode settings with ``beam`` / ``steps`` replaced where given."""
        d = dict(self.info["decode"])
        if beam is not None:
            if beam < 1:
                raise ValueError("decode.beam: must be >= 1")
            d["beam"] = beam
        if steps is not None:
            if steps < 1:
                raise ValueError(f"decode.steps: {steps}: must be >= 1")
            d["steps"] = steps
        return d

    def point(self, out: np.ndarray) -> np.ndarray:
        """(..., D, Q) -> the point forecast (..., D); unchanged without quantiles."""
        return out[..., self.point_index] if self.quantiles else out

    def predict(
        self,
        sources: Sequence[Any],
        beam: int | None = None,
        steps: int | None = None,
        covariates: Sequence[Any] | None = None,
        n_best: int = 1,
        attention: bool = False,
    ) -> list[Any]:
        """Sources (text, or (S, D) arrays) -> outputs (text, or (T, D) arrays; (T, D, Q) for
        a model with Q quantiles). A model trained with covariates needs ``covariates``: per
        source a (T, C) array of the values known at its T output steps (T replaces
        ``steps``).

        For a token target, ``n_best`` > 1 (at most the beam) or ``attention`` give instead per
        source a list of its n best ``Prediction`` (text, score, ``Alignment`` with attention).
        """
        if covariates is not None and steps is not None:
            raise ValueError("give steps or covariates (their length is the steps), not both")
        dcfg = self.decode_config(beam, steps)
        ranked = n_best > 1 or attention
        if ranked and not self.token_target:
            raise ValueError("n_best and attention are for models with a token target")
        if not 1 <= n_best <= max(dcfg["beam"], 1):
            raise ValueError(f"n_best={n_best}: must be between 1 and the beam size {dcfg['beam']}")
        sources = list(sources)
        if not sources:
            return []
        n = [dcfg["steps"]] * len(sources)
        found = self._run(sources, dcfg, n, covariates, n_best if ranked else 0, attention)
        if ranked:
            return [self._predictions(s, hyps) for s, hyps in zip(sources, found, strict=True)]
        if self.token_target:
            text = self.codec.output_text
            return [text(hyps[0][0], s) for s, hyps in zip(sources, found, strict=True)]
        return [hyps[0][0] for hyps in found]

    def decode(
        self,
        sources: Sequence[Any],
        beam: int | None = None,
        steps: Sequence[int] | None = None,
        covariates: Sequence[Any] | None = None,
    ) -> list[Any]:
        """The best output per source as ids (tokens, EOS removed) or arrays (vectors), with a
        rollout length per source in ``steps`` (for scoring against references)."""
        dcfg = self.decode_config(beam)
        n = list(steps) if steps is not None else [dcfg["steps"]] * len(sources)
        found = self._run(list(sources), dcfg, n, covariates, 0, False)
        return [hyps[0][0] for hyps in found]

    def _predictions(self, source: str, hyps: list[tuple]) -> list[Prediction]:
        """One source's hypotheses (ids, score, weights) -> Predictions; the weights' padded
        source columns cut off, source symbols as the tokenizer split the text."""
        codec, symbols = self.codec, self.codec.source.tokenize(source)
        out = []
        for ids, score, weights in hyps:
            aligned = None
            if weights is not None:
                tokens = codec.output_tokens(ids, source)
                aligned = Alignment(symbols, tokens, weights[:, : len(symbols)].astype(np.float32))
            out.append(Prediction(codec.output_text(ids, source), score, aligned))
        return out

    def _run(
        self,
        sources: list[Any],
        dcfg: dict[str, Any],
        steps: list[int | None],
        covariates: Sequence[Any] | None,
        n_best: int,
        attention: bool,
    ) -> list[list[tuple]]:
        """Encode the sources, decode them in ``predict``'s length-bucketed batches and put
        them back in order: per source its hypotheses (ids or array, score, weights), best
        first; ``n_best`` 0 for the best alone, without scores."""
        encoded = [self.codec.source.encode(s, f"input {i + 1}") for i, s in enumerate(sources)]
        covs = self._covariates(covariates, len(encoded))
        if not self.token_target and covs is None and None in steps:
            raise ValueError("vector rollout: give steps (the export's decode.steps is unset)")
        found: list[list[tuple]] = [[] for _ in encoded]
        pad_value = PAD_ID if self.codec.source.is_tokens else 0.0
        for idx in batch_indices([len(s) for s in encoded], int(dcfg["batch_size"])):
            src, mask = pad([encoded[i] for i in idx], pad_value)
            enc = self.graphs.encode(src, mask)
            if self.codec.copy:  # the step graph mixes the attention onto these ids
                copies = [self.codec.copy_ids(sources[i]) for i in idx]
                enc.fixed["copy_ids"] = pad(copies, PAD_ID)[0]
            if self.token_target:
                hyps = self._tokens(enc, mask, dcfg, n_best, attention)
            else:
                cov = None if covs is None else [covs[i] for i in idx]
                hyps = self._vectors(enc, [steps[i] for i in idx], cov)
            for j, i in enumerate(idx):
                found[i] = hyps[j]
        return found

    def _tokens(self, enc: Encoded, mask: np.ndarray, dcfg: dict, n_best: int, attention: bool):
        limits = max_lengths(mask, dcfg["max_len_a"], dcfg["max_len_b"])
        if dcfg["beam"] > 1:
            k, alpha = int(dcfg["beam"]), float(dcfg["length_penalty"])
            return beam_search(self.graphs, enc, limits, k, alpha, max(n_best, 1), attention)
        return [[h] for h in greedy(self.graphs, enc, limits, n_best > 0, attention)]

    def _vectors(self, enc: Encoded, steps: list, covs: list[np.ndarray] | None) -> list:
        if covs is not None:
            steps = [len(c) for c in covs]
        cov = None if covs is None else pad(covs, 0.0)[0]  # (B, max T_i, C)
        point = self.point_index if self.quantiles else None
        pred = rollout(self.graphs, enc, max(steps), self.width, point, cov)
        return [[(pred[j, :n], None, None)] for j, n in enumerate(steps)]

    def _covariates(self, covariates: Sequence[Any] | None, count: int) -> list | None:
        """Per source its (T_i, C) covariates, for a model that takes them (else None)."""
        side = self.codec.covariates
        if side is None:
            if covariates is not None:
                raise ExportError("covariates given, but the model was trained without covariates")
            return None
        if covariates is None or len(covariates) != count:
            got = "none" if covariates is None else len(covariates)
            raise ExportError(
                f"the model needs covariates (steps, {side.dim}) for each of the "
                f"{count} sources; got {got}"
            )
        return [side.encode(c, f"input {i + 1} covariates") for i, c in enumerate(covariates)]


def load(export_dir: str | Path, threads: int | None = None) -> ExportedModel:
    """Load an export directory (``hybridseq export``); ``threads``: onnxruntime's intra-op
    threads (default: its own choice, one per core)."""
    directory = Path(export_dir)
    file = directory / EXPORT_FILE
    if not file.is_file():
        raise FileNotFoundError(
            f"{directory} is not an export: no {EXPORT_FILE} (hybridseq export)"
        )
    info = json.loads(file.read_text())
    if info.get("format") != FORMAT_VERSION:
        raise ExportError(
            f"{file}: export format {info.get('format')!r}; this runtime reads {FORMAT_VERSION}"
        )
    for graph in info["graphs"].values():
        if not (directory / graph["file"]).is_file():
            raise FileNotFoundError(f"export {directory} is missing {graph['file']}")
    return ExportedModel(directory, info, Graphs(directory, info, threads))
