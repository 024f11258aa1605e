"""Export a trained model to ONNX: one graph for ``encode``, one for a single ``decode_step``.

    hybridseq export RUN --out DIR [--quantize int8]

    DIR/encoder.onnx       source (B, S) ids or (B, S, D_in) vectors, mask (B, S) bool
                           -> the decoder's initial h, c (L, B, H) and the attention's cache
    DIR/decoder_step.onnx  previous token (B,) or vector (B, D), h, c, [mask, cache],
                           [copy_ids (B, S)], [cov (B, C)]
                           -> logits (B, V) / vector (B, D) / quantiles (B, D, Q), new h, c,
                           [the step's attention weights (B, S)]
    DIR/export.json        format version, family, codec (vocabularies or widths), config and
                           decode defaults, sizes, input/output names, opset, exporter

Everything a step carries is an explicit graph input and output: the LSTM's (h, c) for every
layer, and the attention's per-batch cache (keys and memory for additive attention, keys and
values per head for multi-head), computed once by the encoder graph. This model's input feeding
needs no vector of its own: the context is attended from the top layer's previous h, which is in
the state. Batch size, source length and the number of steps are all free (``dynamic_axes``).

A copy model's step also takes ``copy_ids`` (B, S), each source token's id in the extended
target vocabulary (``hybridseq.codec``), and gives log-probabilities (B, V + S) over that
vocabulary: the number of extended ids is V + S, read from the ids' shape, so it needs no input
of its own and stays free with the source length.

Exporter: ``torch.onnx.export(..., dynamo=False)``, the TorchScript-based tracer, at opset 17.
Tracing records the path a padded example takes, so the LSTM encoder is traced through its
packed-sequence branch, which becomes ONNX ``LSTM`` with ``sequence_lens`` (each row stops at its
own length, as in PyTorch). The Transformer encoder is traced through ``TraceableTransformer``,
the same layers written with plain tensor operations: traced, PyTorch's own multi-head attention
keeps the traced source length as a constant. The dynamo exporter was not used: it needs the
``onnxscript`` package, and its graphs of the packed LSTM were not needed. Both graphs pass
``onnx.checker`` and are run once by onnxruntime at another batch size and source length than
the traced ones, against the torch model (``verify``).

``--quantize int8`` applies onnxruntime's dynamic quantization to the matrix products (``MatMul``
and ``Gemm``: int8 weights, activations quantized per call).

``hybridseq.runtime`` decodes the exported graphs with onnxruntime and numpy only; ``evaluate``
below scores an export with ``hybridseq.metrics`` (which needs torch, so it lives here).
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import sys
import types
from collections.abc import Iterator, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
from torch import Tensor

from hybridseq import metrics as M
from hybridseq.checkpoint import load_checkpoint
from hybridseq.codec import Codec
from hybridseq.config import Config
from hybridseq.corpus import parse_paths
from hybridseq.data import read_pairs
from hybridseq.decoder import DecoderState
from hybridseq.encoders import TransformerEncoder, run_layers
from hybridseq.model import Encoded, Seq2Seq
from hybridseq.predict import group_references
from hybridseq.runtime import EXPORT_FILE, FORMAT_VERSION, ExportedModel, ExportError

OPSET = 17
EXPORTER = f"torch.onnx.export, TorchScript-based (dynamo=False), torch {torch.__version__}"
QUANTIZE = ("int8",)
TOLERANCE = 1e-4  # the self-check's largest allowed difference between onnxruntime and torch


def cache_names(model: Seq2Seq) -> list[str]:
    """Names of the attention's per-batch cache tensors (none without attention)."""
    return [] if model.attention is None else ["cache_0", "cache_1"]


def copy_names(model: Seq2Seq) -> list[str]:
    """The step's input of a copy model's source ids in the extended vocabulary (else none)."""
    return ["copy_ids"] if model.copies else []


class TraceableTransformer(nn.Module):
    """The hybrid's Transformer encoder, the same weights and computation (eval mode) written
    with plain tensor operations. PyTorch's ``multi_head_attention_forward`` reads the key's
    length as a Python int, which the TorchScript tracer records as a constant: its graph would
    accept only the traced source length. Here every size comes from the input's shape."""

    def __init__(self, encoder: TransformerEncoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, x: Tensor, mask: Tensor) -> Tensor:
        """x (B, S, d_model), mask (B, S) bool -> memory (B, S, d_model)."""
        positions = self.encoder.positions
        bias = positions.bias(x.shape[1], x.device) if hasattr(positions, "bias") else None
        return run_layers(self.encoder.layers, positions(x), mask, bias)


def traceable(model: Seq2Seq) -> Seq2Seq:
    """``model``, or for a Transformer encoder a shallow copy (sharing every weight) whose
    encoder is the ``TraceableTransformer``; the model itself is left as it was."""
    if not isinstance(model.encoder, TransformerEncoder):
        return model
    clone = copy.copy(model)
    clone._modules = dict(model._modules)  # the copy's own table of submodules
    clone.encoder = TraceableTransformer(model.encoder)
    return clone


class EncoderGraph(nn.Module):
    """``encode`` + ``init_state`` with flat tensors: (src, mask) -> (h0, c0, *cache)."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = traceable(model)
        self.eval()  # also when an exporter restores the mode it found: dropout stays off

    def forward(self, src: Tensor, mask: Tensor) -> tuple[Tensor, ...]:
        """src (B, S) or (B, S, D_in), mask (B, S) bool -> h0, c0 (L, B, H), cache tensors
        (B, S, A) and (B, S, E) for additive attention, (B, h, S, d) twice for multi-head."""
        # a copy model's extended ids are the step graph's input (copy_ids); none of the
        # encoder's outputs read them
        ext = torch.zeros_like(mask, dtype=torch.long) if self.model.copies else None
        enc = self.model.encode(src, mask, step_weights=False, src_ext=ext)
        state = self.model.init_state(enc)
        return (state.h, state.c, *enc.cache)


@contextlib.contextmanager
def captured_attention(attention: nn.Module | None) -> Iterator[list[Tensor]]:
    """Collect the weights (B, S) that ``attention`` returns while the block runs (a forward
    hook, removed on exit), so the exported step can output them without changing the seam."""
    found: list[Tensor] = []
    if attention is None:
        yield found
        return
    handle = attention.register_forward_hook(lambda _m, _inputs, out: found.append(out[1]))
    try:
        yield found
    finally:
        handle.remove()


class DecoderStepGraph(nn.Module):
    """``decode_step`` with flat tensors:
    (prev, h, c, [mask, cache_0, cache_1], [copy_ids], [cov]) -> (out, h, c, [attention])."""

    def __init__(self, model: Seq2Seq) -> None:
        super().__init__()
        self.model = model
        self.caches = len(cache_names(model))
        self.eval()

    def forward(self, prev: Tensor, h: Tensor, c: Tensor, *rest: Tensor) -> tuple[Tensor, ...]:
        """prev (B,) ids or (B, D) vectors; h, c (L, B, H); mask (B, S); the cache as from
        ``EncoderGraph``; copy_ids (B, S); cov (B, C) -> out (B, V), (B, V + S) for a copy
        model, (B, D) or (B, D, Q), h, c (L, B, H), and the attention weights (B, S) for a
        model with attention."""
        model = self.model
        mask, cache = (rest[0], tuple(rest[1 : 1 + self.caches])) if self.caches else (None, ())
        copy_ids = rest[1 + self.caches] if model.copies else None
        cov = rest[-1] if model.cov_dim else None
        # the memory itself is not read by a step: the cache holds what the attention needs
        enc = Encoded(None, mask, cache, None, model.decoder.step_weights(), copy_ids)
        with captured_attention(model.attention) as found:
            out, state = model.decode_step(prev, DecoderState(h, c), enc, cov)
        return (out, state.h, state.c, *found[-1:])


def example_inputs(model: Seq2Seq, codec: Codec, batch: int, lengths: Sequence[int]):
    """Random encoder inputs: src (B, S) ids or (B, S, D_in) vectors, and its mask (B, S)."""
    s = max(lengths)
    mask = torch.arange(s)[None, :] < torch.tensor(lengths)[:, None]  # (B, S)
    if codec.source.is_tokens:
        src = torch.randint(4, len(codec.source.vocab), (batch, s))
    else:
        src = torch.randn(batch, s, codec.source.dim)
    return src, mask


def step_inputs(model: Seq2Seq, enc_out: tuple[Tensor, ...], mask: Tensor) -> tuple[Tensor, ...]:
    """The decoder graph's inputs for the first step after ``EncoderGraph`` gave ``enc_out``."""
    b = mask.shape[0]
    prev = model.start_inputs(b, mask.device)
    if not model.token_target:
        prev = prev + torch.randn_like(prev)  # not all zeros: the trace sees a real vector
    inputs = [prev, enc_out[0], enc_out[1]]
    if model.attention is not None:
        inputs += [mask, *enc_out[2:]]
    if model.copies:  # ids in the target vocabulary and past it, PAD at padding
        v = model.head.out_features
        inputs.append(torch.randint(4, v + mask.shape[1], mask.shape).masked_fill(~mask, 0))
    if model.cov_dim:
        inputs.append(torch.randn(b, model.cov_dim))
    return tuple(inputs)


def io_names(model: Seq2Seq) -> dict[str, dict[str, list[str]]]:
    """Input and output names of both graphs, in order."""
    caches = cache_names(model)
    step_in = ["prev", "h", "c"] + (["mask", *caches] if caches else []) + copy_names(model)
    step_in += ["cov"] if model.cov_dim else []
    step_out = ["out", "h_out", "c_out"] + (["attention"] if caches else [])
    return {
        "encoder": {"inputs": ["src", "mask"], "outputs": ["h", "c", *caches]},
        "decoder_step": {"inputs": step_in, "outputs": step_out},
    }


def dynamic_axes(model: Seq2Seq) -> dict[str, dict[str, dict[int, str]]]:
    """Which axes of every graph input and output are free: batch B, source length S."""
    state = {1: "batch"}
    cache = {0: "batch", 1: "src_len"}
    if model.attention is not None and model.attention.__class__.__name__ == "MultiHeadAttention":
        cache = {0: "batch", 2: "src_len"}
    bs = {0: "batch", 1: "src_len"}
    enc = {"src": bs, "mask": bs, "h": state, "c": state, "cache_0": cache, "cache_1": cache}
    step = {"prev": {0: "batch"}, "h": state, "c": state, "mask": bs, "cov": {0: "batch"}}
    out = {0: "batch", 1: "extended"} if model.copies else {0: "batch"}  # V + S with copy
    step.update({"cache_0": cache, "cache_1": cache, "out": out, "copy_ids": bs})
    step.update({"h_out": state, "c_out": state, "attention": {0: "batch", 1: "src_len"}})
    names = io_names(model)
    used = {g: set(n["inputs"] + n["outputs"]) for g, n in names.items()}
    return {
        "encoder": {k: v for k, v in enc.items() if k in used["encoder"]},
        "decoder_step": {k: v for k, v in step.items() if k in used["decoder_step"]},
    }


def _onnx_export(graph: nn.Module, args: tuple, path: Path, names: dict, axes: dict) -> None:
    """Trace ``graph`` on ``args`` into the ONNX file ``path`` and check it."""
    import warnings

    import onnx

    with warnings.catch_warnings(), torch.no_grad():
        # the tracer warns about every Python bool it reads (e.g. "is the mask all True?"):
        # the padded example makes each such branch the general one
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph,
            args,
            str(path),
            input_names=names["inputs"],
            output_names=names["outputs"],
            dynamic_axes=axes,
            opset_version=OPSET,
            dynamo=False,
        )
    onnx.checker.check_model(str(path), full_check=True)


def _quantize(path: Path) -> None:
    """Replace the ONNX file ``path`` by its dynamic int8 quantization (MatMul and Gemm)."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = path.with_name(path.stem + ".int8.onnx")
    quiet = logging.getLogger().level
    logging.getLogger().setLevel(logging.ERROR)  # its advice to pre-process, at every call
    try:
        quantize_dynamic(
            str(path),
            str(tmp),
            op_types_to_quantize=["MatMul", "Gemm"],
            weight_type=QuantType.QInt8,
        )
    finally:
        logging.getLogger().setLevel(quiet)
    tmp.replace(path)
    onnx.checker.check_model(str(path))


def _describe(cfg: Config, model: Seq2Seq, codec: Codec, quantize: str | None) -> dict[str, Any]:
    """The contents of export.json."""
    return {
        "format": FORMAT_VERSION,
        "family": cfg.model.family,
        "source": "tokens" if codec.source.is_tokens else "vectors",
        "target": "tokens" if model.token_target else "vectors",
        "codec": codec.to_dict(),
        "decode": asdict(cfg.decode),
        "config": cfg.to_dict(),
        "model": {
            "layers": model.decoder.layers,
            "hidden": model.decoder.hidden,
            "attention": cfg.model.attention,
            "target_width": model.target_width,
            "vocab": len(codec.target.vocab) if model.token_target else None,
            "quantiles": list(model.quantiles),
            "point_index": model.point_index,
            "cov_dim": model.cov_dim,
            "copy": model.copies,
            "parameters": sum(p.numel() for p in model.parameters()),
        },
        "graphs": {
            "encoder": {"file": "encoder.onnx", **io_names(model)["encoder"]},
            "decoder_step": {"file": "decoder_step.onnx", **io_names(model)["decoder_step"]},
        },
        "opset": OPSET,
        "exporter": EXPORTER,
        "quantize": quantize,
    }


def export_model(
    cfg: Config, model: Seq2Seq, codec: Codec, out_dir: str | Path, quantize: str | None = None
) -> Path:
    """Write ``model``'s two graphs and export.json into ``out_dir`` (files of the same names
    are overwritten), check them, and verify them against the model at an untraced shape (before
    quantizing). Returns ``out_dir``."""
    if quantize not in (None, *QUANTIZE):
        raise ExportError(f"quantize: {quantize!r} is not one of {', '.join(QUANTIZE)}")
    if model.step_dtype != torch.float32:
        raise ExportError("export: the model must be in float32 (decode_in changed it)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model = model.float().cpu().eval()
    names, axes = io_names(model), dynamic_axes(model)
    src, mask = example_inputs(model, codec, 3, [5, 3, 4])  # padded: the general path
    with torch.no_grad():
        enc_out = EncoderGraph(model)(src, mask)
    enc_path, step_path = out / "encoder.onnx", out / "decoder_step.onnx"
    _onnx_export(EncoderGraph(model), (src, mask), enc_path, names["encoder"], axes["encoder"])
    step_args = step_inputs(model, enc_out, mask)
    step_axes = axes["decoder_step"]
    _onnx_export(DecoderStepGraph(model), step_args, step_path, names["decoder_step"], step_axes)
    (out / EXPORT_FILE).write_text(json.dumps(_describe(cfg, model, codec, None), indent=1))
    verify(model, codec, out)
    if quantize:
        _quantize(enc_path)
        _quantize(step_path)
        (out / EXPORT_FILE).write_text(json.dumps(_describe(cfg, model, codec, quantize), indent=1))
    return out


def export(run_or_ckpt: str | Path, out_dir: str | Path, quantize: str | None = None) -> Path:
    """Export a checkpoint (or a run directory: its ``best``) to ``out_dir``: encoder.onnx,
    decoder_step.onnx and export.json, decodable with ``hybridseq.runtime.load(out_dir)``.
    ``quantize="int8"``: dynamic int8 quantization of the matrix products."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        raise ExportError(
            "export needs onnx and onnxruntime: pip install 'hybridseq[export]'"
        ) from None
    cfg, model, codec = load_checkpoint(run_or_ckpt, "cpu")
    return export_model(cfg, model, codec, out_dir, quantize)


def verify(model: Seq2Seq, codec: Codec, out_dir: Path, tolerance: float = TOLERANCE) -> float:
    """Run both exported graphs with onnxruntime at a batch size and source length other than
    the traced ones, and compare each output with the torch model's. Returns the largest
    difference; raises ExportError above ``tolerance``."""
    import onnxruntime as ort

    src, mask = example_inputs(model, codec, 2, [7, 2])
    with torch.no_grad():
        enc_out = EncoderGraph(model)(src, mask)
        step_args = step_inputs(model, enc_out, mask)
        step_out = DecoderStepGraph(model)(*step_args)
    names = io_names(model)
    worst = 0.0
    for graph, args, want in (
        ("encoder", (src, mask), enc_out),
        ("decoder_step", step_args, step_out),
    ):
        session = ort.InferenceSession(
            str(out_dir / f"{graph}.onnx"), providers=["CPUExecutionProvider"]
        )
        feeds = {n: a.numpy() for n, a in zip(names[graph]["inputs"], args, strict=True)}
        got = session.run(names[graph]["outputs"], feeds)
        for name, g, w in zip(names[graph]["outputs"], got, want, strict=True):
            if g.shape != tuple(w.shape):
                raise ExportError(
                    f"export: {graph} output {name} has shape {g.shape}, "
                    f"torch gives {tuple(w.shape)}"
                )
            diff = float(np.abs(g - w.numpy()).max()) if g.size else 0.0
            if not diff <= tolerance:
                raise ExportError(f"export: {graph} output {name} differs from torch by {diff}")
            worst = max(worst, diff)
    return worst


def evaluate(
    model: ExportedModel,
    data: str | Path | Sequence[tuple[Any, ...]],
    metrics: Sequence[str] | None = None,
    beam: int | None = None,
) -> dict[str, float]:
    """Metrics of an export's predictions (decoded by onnxruntime) on a data file or a list of
    pairs, computed as ``hybridseq.predict.score`` computes them for a checkpoint."""
    pairs = read_pairs(parse_paths(str(data))) if isinstance(data, (str, Path)) else list(data)
    names = list(metrics or model.config["train"]["metrics"])
    sources, refs = group_references(pairs)
    if not model.token_target:
        steps = [len(r[0]) for r in refs]
        known = [p[2] for p in pairs] if len(pairs[0]) > 2 else None
        hyps = model.decode(sources, beam=beam, steps=steps, covariates=known)
        points = [model.point(h) for h in hyps]
        firsts = [np.asarray(r[0], dtype=np.float32) for r in refs]
        pasts = [np.asarray(s, dtype=np.float32) for s in sources]
        period = (model.config.get("forecast") or {}).get("period", 1)
        return M.compute_vectors(names, points, firsts, pasts, period)
    ids = model.decode(sources, beam=beam)
    target = model.codec.target
    hyp_tokens = [model.codec.output_tokens(h, s) for h, s in zip(ids, sources, strict=True)]
    ref_tokens = [[target.tokenize(r) for r in rs] for rs in refs]
    texts = [target.detokenize(h) for h in hyp_tokens]
    return M.compute(names, hyp_tokens, ref_tokens, detok_hyps=texts, detok_refs=refs)


class _CallableModule(types.ModuleType):
    """This module, callable as its ``export`` function, so that ``hybridseq.export(...)``
    works whether the name was first reached as the package's attribute or imported as a
    module (which rebinds the attribute to the module)."""

    def __call__(
        self, run_or_ckpt: str | Path, out_dir: str | Path, quantize: str | None = None
    ) -> Path:
        return export(run_or_ckpt, out_dir, quantize)


sys.modules[__name__].__class__ = _CallableModule
