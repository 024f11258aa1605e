"""Training speed of a config's model on its own training data: the steps and target tokens
per second of the training step (``hybridseq.training.forward_backward``, clipping, the
optimizer) over the batches training would draw (length bucketing included), without
validation or checkpoints.

    python benchmarks/config_train_speed.py hybridseq/configs/g2p_lstm_attention.yaml [--threads 2]
        [--batches 40] [--repeats 3] [--profile] [--set KEY=VALUE ...]

For A/B timings of a change, run it from two checkouts (``PYTHONPATH=<checkout>``) one after
the other on an idle machine. ``speed.py`` measures the issue's fixed synthetic task instead.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import torch

import hybridseq
from hybridseq import training
from hybridseq.api import as_config
from hybridseq.data import batch_indices, collate, pair_lengths
from hybridseq.parallel import World


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("config")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batches", type=int, default=40, help="batches per repeat")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--profile", action="store_true", help="then the top operators (torch.profiler)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    cfg = as_config(args.config, [f"train.threads={args.threads}", *args.set])
    with tempfile.TemporaryDirectory() as tmp:
        t = training.setup(cfg, Path(tmp), False, lambda m: None, World())
    items, tc = t.splits["train"].items, t.cfg.train
    order = batch_indices(pair_lengths(items), tc.batch_size, bucket=tc.bucket, shuffle=True)
    batches = [collate([items[i] for i in idx], idx) for idx in order[: args.batches]]

    def run(chosen) -> float:
        """The training step's work: forward, backward, clipping, the optimizer's step."""
        start = time.perf_counter()
        for b in chosen:
            training.forward_backward(t, b, 1.0)
            torch.nn.utils.clip_grad_norm_(t.model.parameters(), tc.clip)
            t.optimizer.step()
        return time.perf_counter() - start

    run(batches[:3])  # warm-up
    rates = [len(batches) / run(batches) for _ in range(args.repeats)]
    tokens = sum(int(b.tgt_mask.sum()) for b in batches) / len(batches)
    padded = sum(not bool(b.src_mask.all()) for b in batches)
    print(f"hybridseq from {Path(hybridseq.__file__).parent}, {torch.get_num_threads()} threads")
    print(
        f"{args.config}: {statistics.median(rates):.2f} steps/s "
        f"(repeats {', '.join(f'{r:.2f}' for r in rates)}), "
        f"{statistics.median(rates) * tokens:,.0f} target tokens/s; "
        f"{len(batches)} batches of {tc.batch_size}, {padded} with source padding"
    )
    if args.profile:
        from torch.profiler import ProfilerActivity, profile

        with profile(activities=[ProfilerActivity.CPU]) as prof:
            run(batches[:20])
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
