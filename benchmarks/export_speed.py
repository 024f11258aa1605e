"""Decoding speed on the CPU: torch eager against onnxruntime (float32 and int8), side by side in
one run, for both families at the seed shapes.

    python benchmarks/export_speed.py [--quick] [--threads N] [--json]

Models: the shipped ``seed_lstm_attention.yaml`` (seed 002: 1,000-symbol vocabularies, embedding
256, LSTM 2 x 512 both sides, additive attention; a 20-token source) and
``seed_hybrid.yaml`` (seed 000: 512-wide vectors, Transformer encoder d_model 512 x 6
layers, LSTM decoder 2 x 512 without attention; a 10-step source), with random weights: the
work does not depend on what was learned. Every output is exactly 30 steps: tokens by a
fixed 30-step greedy loop (argmax fed back, no EOS), vectors by a 30-step rollout, written the
same way for both engines. Measured: batch-1 latency of one output (encode + 30 steps) and
batch-64 throughput in sequences/s, the median over repeats. int8 is onnxruntime's dynamic
quantization of the matrix products (``hybridseq export --quantize int8``).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

from hybridseq import runtime
from hybridseq.api import as_config
from hybridseq.codec import Codec, Side
from hybridseq.export import export_model
from hybridseq.model import build_model
from hybridseq.tokenize import Tokenizer
from hybridseq.vocab import BOS_ID, SPECIALS, Vocab

ROOT = Path(__file__).resolve().parent.parent
STEPS = 30
SHAPES = {
    "lstm_attention": ("hybridseq/configs/seed_lstm_attention.yaml", 20),
    "hybrid": ("hybridseq/configs/seed_hybrid.yaml", 10),
}


def seed_model(family: str):
    """The seed config's model with random weights, and a codec of its sizes."""
    cfg = as_config(ROOT / SHAPES[family][0])
    if family == "lstm_attention":
        m = replace(cfg.model, src_vocab=1000, tgt_vocab=1000)
        vocab = Vocab(SPECIALS + [f"s{i}" for i in range(996)])
        side = Side(tokenizer=Tokenizer("whitespace"), vocab=vocab)
        codec = Codec(side, side)
    else:
        m = replace(cfg.model, src_dim=512, tgt_dim=512)
        codec = Codec(Side(dim=512), Side(dim=512))
    cfg = replace(cfg, model=m)
    torch.manual_seed(0)
    return cfg, build_model(m).eval(), codec


def source(family: str, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """A random source batch (B, S) ids or (B, S, 512) vectors and its mask (B, S)."""
    length = SHAPES[family][1]
    rng = np.random.default_rng(batch)
    if family == "lstm_attention":
        src = rng.integers(4, 1000, size=(batch, length)).astype(np.int64)
    else:
        src = rng.normal(size=(batch, length, 512)).astype(np.float32)
    return src, np.ones((batch, length), dtype=bool)


@torch.no_grad()
def torch_decode(model, src: np.ndarray, mask: np.ndarray) -> None:
    """encode, then 30 steps, feeding back the argmax (tokens) or the vector."""
    src_t, mask_t = torch.from_numpy(src), torch.from_numpy(mask)
    enc = model.encode(src_t, mask_t)
    state = model.init_state(enc)
    prev = model.start_inputs(src.shape[0], src_t.device)
    for _ in range(STEPS):
        out, state = model.decode_step(prev, state, enc)
        prev = out.argmax(-1) if model.token_target else out


def onnx_decode(graphs: runtime.Graphs, tokens: bool, src: np.ndarray, mask: np.ndarray) -> None:
    """The same 30-step loop over the exported graphs."""
    enc = graphs.encode(src, mask)
    h, c = enc.h, enc.c
    prev = np.full(src.shape[0], BOS_ID) if tokens else np.zeros((src.shape[0], 512), np.float32)
    for _ in range(STEPS):
        out, h, c, _ = graphs.step(prev, h, c, enc)
        prev = out.argmax(-1) if tokens else out


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn()`` over ``repeats`` runs, after one warm-up run."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def measure(family: str, threads: int, repeats: tuple[int, int], tmp: Path) -> list[dict]:
    """Rows of the table for one family: torch, onnxruntime float32, onnxruntime int8."""
    cfg, model, codec = seed_model(family)
    engines = {"torch eager": lambda src, mask: torch_decode(model, src, mask)}
    for quantize in (None, "int8"):
        out = export_model(cfg, model, codec, tmp / f"{family}-{quantize or 'fp32'}", quantize)
        graphs = runtime.load(out, threads=threads).graphs
        name = f"onnxruntime {quantize or 'fp32'}"
        engines[name] = lambda src, mask, g=graphs: onnx_decode(g, model.token_target, src, mask)
    rows = []
    for name, decode in engines.items():
        one, many = source(family, 1), source(family, 64)
        latency = timed(lambda d=decode, x=one: d(*x), repeats[0])
        batch = timed(lambda d=decode, x=many: d(*x), repeats[1])
        rows.append(
            {
                "family": family,
                "engine": name,
                "batch1_ms": 1000 * latency,
                "batch64_seq_s": 64 / batch,
            }
        )
    base = rows[0]
    for row in rows:
        row["speedup_b1"] = base["batch1_ms"] / row["batch1_ms"]
        row["speedup_b64"] = row["batch64_seq_s"] / base["batch64_seq_s"]
    return rows


def print_table(rows: list[dict], threads: int) -> None:
    print(
        f"CPU decoding, {threads} threads, {STEPS} output steps, torch {torch.__version__}, "
        f"onnxruntime {runtime_version()}"
    )
    head = f"{'family':<15}{'engine':<19}{'batch-1 ms':>11}{'x torch':>9}{'batch-64 seq/s':>16}"
    print(head + f"{'x torch':>9}")
    for r in rows:
        print(
            f"{r['family']:<15}{r['engine']:<19}{r['batch1_ms']:>11.1f}{r['speedup_b1']:>9.2f}"
            f"{r['batch64_seq_s']:>16.1f}{r['speedup_b64']:>9.2f}"
        )


def runtime_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="fewer repeats (about a minute)")
    p.add_argument("--threads", type=int, default=os.cpu_count(), help="for both engines")
    p.add_argument("--families", default="lstm_attention,hybrid")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    repeats = (5, 2) if args.quick else (20, 5)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for family in args.families.split(","):
            rows += measure(family, args.threads, repeats, Path(tmp))
    if args.json:
        json.dump(rows, sys.stdout, indent=1)
        print()
    else:
        print_table(rows, args.threads)


if __name__ == "__main__":
    main()
