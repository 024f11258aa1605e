"""A/B timing of one training change at seed 002's shape (the task of ``speed.py``): training
target tokens/s of hybridseq as it is, or with a variant applied, in this process.

    python benchmarks/train_step_ab.py [--variant eager|compile-cell|compile-cell-attn|
                                       packed-encoder|per-step-wgrad|before-both]
                                       [--threads N] [--profile]

``packed-encoder`` trains the padded LSTM encoder through ``nn.LSTM``'s packed sequences
instead of the masked step loop, ``per-step-wgrad`` forms the recurrent weights' gradient at
every step (plain ``addmm``) instead of once, and ``before-both`` does both: the code as it was
before those two changes.

Batches are 64 random pairs in data order (no length bucketing), so the rate is lower than
``speed.py``'s; compare variants with each other, not with its table. ``--bucket`` batches
them by length as ``speed.py`` and training do. ``--profile`` prints the
operators that take the most time (torch.profiler) after the timing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))
import speed  # noqa: E402

from hybridseq import attention, decoder, encoders  # noqa: E402
from hybridseq.config import ModelConfig  # noqa: E402
from hybridseq.data import batch_indices  # noqa: E402


def packed(self, x, mask):
    """``LSTMEncoder._masked`` by packed sequences (the encoder before the masked loop)."""
    lengths = mask.sum(dim=1).cpu()
    out, state = self.lstm(pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False))
    return pad_packed_sequence(out, batch_first=True, total_length=x.shape[1])[0], state


def per_step_addmm(base, x, w, steps):
    """``recurrent_addmm`` with autograd's own per-step weight gradient."""
    return torch.addmm(base, x, w)


def apply(variant: str) -> None:
    """Patch the library in this process for ``variant``."""
    if variant in ("packed-encoder", "before-both"):
        encoders.LSTMEncoder._masked = packed
    if variant in ("per-step-wgrad", "before-both"):
        decoder.recurrent_addmm = encoders.recurrent_addmm = per_step_addmm
    if variant in ("compile-cell", "compile-cell-attn"):
        decoder.lstm_cell = torch.compile(decoder.lstm_cell, dynamic=True)
    if variant == "compile-cell-attn":
        cls = attention.AdditiveAttention
        cls.forward = torch.compile(cls.forward, dynamic=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", default="eager")
    p.add_argument("--threads", type=int)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--bucket", action="store_true", help="length-bucketed batches")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    apply(args.variant)
    torch.manual_seed(0)
    cfg = ModelConfig(
        **speed.SHAPES["lstm_attention"], src_vocab=speed.VOCAB, tgt_vocab=speed.VOCAB
    )
    model = speed.build_ours(cfg)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    pairs = speed.make_pairs(speed.BATCH * 40, seed=0)
    if args.bucket:
        lengths = [len(src) for src, _ in pairs]
        order = batch_indices(lengths, speed.BATCH, bucket=True, shuffle=True, seed=0)
        batches = [[pairs[i] for i in b] for b in order if len(b) == speed.BATCH]
    else:
        batches = [pairs[i : i + speed.BATCH] for i in range(0, len(pairs), speed.BATCH)]
    start = time.perf_counter()
    for b in batches[:3]:
        speed.ours_train_step(model, opt, b)
    warm = time.perf_counter() - start
    rates = []
    for r in range(3):
        chosen = batches[3 + 10 * r : 13 + 10 * r]
        start = time.perf_counter()
        for b in chosen:
            speed.ours_train_step(model, opt, b)
        rates.append(sum(len(t) + 1 for b in chosen for _, t in b) / (time.perf_counter() - start))
    print(
        f"{args.variant}{', bucketed' if args.bucket else ''}, {torch.get_num_threads()} threads: "
        f"{statistics.median(rates):,.0f} "
        f"target tokens/s (repeats {', '.join(f'{x:,.0f}' for x in rates)}; warm-up {warm:.1f} s)"
    )
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
            for b in batches[33:37]:
                speed.ours_train_step(model, opt, b)
        table = prof.key_averages(group_by_input_shape=True)
        print(table.table(sort_by="self_cpu_time_total", row_limit=12))


if __name__ == "__main__":
    main()
