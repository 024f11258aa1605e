"""Training on corpora of growing size, read from text into memory or from a prepared
(memory-mapped) directory: prepare time, peak resident memory of training, time before the
first step and target tokens per second.

    python benchmarks/scale.py --sizes 100000 1000000 [--steps 30] [--out /tmp/scale]
    python benchmarks/scale.py --sizes 10000000 --data mapped   # text would need ~23 GB

Each size is a synthetic reverse-task corpus (5-20 symbols a side, 20 symbols) written once; a
tiny model trains ``--steps`` steps in a fresh process per row (so peak RSS is that run's
alone, from ``getrusage`` of the child), validating once, at the end, on 200 held-out pairs.
"Before the first step" is the child's wall time less its training time (start-up, reading
or mapping the data, building the model; the one validation and save at the end are in it
too, as they are in every row).
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import yaml

CONFIG = {
    "model": {"family": "lstm_attention", "emb_dim": 32, "enc_hidden": 64, "dec_hidden": 64},
    "train": {"batch_size": 64, "eval_every": 100_000, "eval_max": 200, "progress": False},
}


def write_corpus(path: Path, n: int, seed: int = 0) -> None:
    """n reverse-task pairs, in chunks so that writing does not hold the corpus either."""
    rng = np.random.default_rng(seed)
    symbols = np.array([f"s{i}" for i in range(20)])
    with path.open("w") as f:
        for start in range(0, n, 100_000):
            lines = []
            for _ in range(min(100_000, n - start)):
                src = symbols[rng.integers(0, 20, rng.integers(5, 21))]
                lines.append(" ".join(src) + "\t" + " ".join(src[::-1]) + "\n")
            f.write("".join(lines))


def child(cfg_path: str, out: str, steps: str) -> None:
    """``hybridseq train`` in this process, then its peak RSS (KiB) as the last line."""
    from hybridseq.cli import main as cli_main

    try:
        cli_main(["train", cfg_path, "--out", out, "--set", f"train.max_steps={steps}"])
    finally:
        print(f"peak_rss_kib {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}", flush=True)


def train_child(cfg_path: Path, out: Path, steps: int) -> dict:
    """Train in a fresh process; its wall time, training time, tokens/s and peak RSS."""
    cmd = [sys.executable, __file__, "--child", str(cfg_path), str(out), str(steps)]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(done.stderr[-2000:])
    peak = int(re.search(r"peak_rss_kib (\d+)", done.stdout).group(1))
    m = re.search(r"trained \d+ steps in ([\d.]+)s \(([\d,]+) target tokens/s", done.stdout)
    seconds, rate = float(m.group(1)), float(m.group(2).replace(",", ""))
    return {
        "wall_s": round(wall, 1),
        "before_first_step_s": round(wall - seconds, 1),
        "tokens_per_s": rate,
        "peak_rss_mb": round(peak / 1024),  # ru_maxrss is in KiB on Linux
    }


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        return child(*sys.argv[2:5])
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--out", type=Path, default=Path("/tmp/hybridseq-scale"))
    p.add_argument(
        "--data",
        nargs="+",
        default=["text", "mapped"],
        help="text, mapped (text needs ~2.3 KB a pair)",
    )
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    valid = args.out / "valid.tsv"
    write_corpus(valid, 200, seed=99)
    rows = []
    for n in args.sizes:
        corpus = args.out / f"train-{n}.tsv"
        if not corpus.exists():
            write_corpus(corpus, n)
        text_cfg = {**CONFIG, "data": {"train": str(corpus), "valid": str(valid)}}
        (args.out / "text.yaml").write_text(yaml.safe_dump(text_cfg))
        prepared = args.out / f"prepared-{n}"
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "hybridseq", "prepare", str(args.out / "text.yaml")]
        subprocess.run([*cmd, "--out", str(prepared)], check=True, capture_output=True)
        prepare_s = round(time.perf_counter() - start, 1)
        mapped_cfg = {**CONFIG, "data": {"train": str(prepared), "valid": str(valid)}}
        (args.out / "mapped.yaml").write_text(yaml.safe_dump(mapped_cfg))
        for kind in args.data:
            run_dir = args.out / f"run-{kind}-{n}-{time.time_ns()}"
            row = train_child(args.out / f"{kind}.yaml", run_dir, args.steps)
            row.update(pairs=n, data=kind, prepare_s=prepare_s if kind == "mapped" else None)
            rows.append(row)
            print(json.dumps(row), flush=True)
    print("\n| pairs | data | prepare s | before first step s | peak RSS MB | tokens/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        prep = "" if r["prepare_s"] is None else r["prepare_s"]
        print(
            f"| {r['pairs']:,} | {r['data']} | {prep} | {r['before_first_step_s']} | "
            f"{r['peak_rss_mb']} | {r['tokens_per_s']:,.0f} |"
        )


if __name__ == "__main__":
    main()
