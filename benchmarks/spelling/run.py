"""Spelling correction with and without copy attention: each family trained on the codespell
data (``prepare.py``) in the same budget, decoded on the test words, scored beside the
copy-the-input baseline.

    python benchmarks/spelling/run.py [--families lstm_attention hybrid] [--minutes 8]
        [--out runs/spelling] [--beam 5] [--set KEY=VALUE ...]

Each run is ``hybridseq/configs/spelling_<family>.yaml`` with ``model.copy`` false (a closed
output vocabulary) and true (a pointer-generator). The checkpoint kept is the one with the best
dev exact match (``train.select``); the test words are read only to report. Scores: exact match
(percent of words corrected exactly) and CER (character edit distance over reference length,
percent). Predictions (``predictions_<run>.tsv``) and ``results.json`` go beside this file.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

import hybridseq
from hybridseq import api, metrics

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
DATA = REPO / "runs" / "spelling-data"


def read_split(name: str) -> tuple[list[str], list[str]]:
    """The misspellings and corrections of a prepared split."""
    path = DATA / f"{name}.tsv"
    if not path.exists():
        raise SystemExit(f"{path}: missing; run python benchmarks/spelling/prepare.py first")
    rows = [line.split("\t") for line in path.read_text().splitlines() if line]
    return [r[0] for r in rows], [r[1] for r in rows]


def score(hyps: list[str], refs: list[str]) -> dict[str, float]:
    """Exact match and CER (both percent) of words against their corrections."""
    h, r = [list(w) for w in hyps], [[list(w)] for w in refs]
    return {"exact_match": 100.0 * metrics.exact_match(h, r), "cer": metrics.per(h, r)}


def train_and_test(family: str, copy: bool, args: argparse.Namespace) -> dict:
    """Train one run, decode dev (greedy) and test (greedy and beam); its summary."""
    name = f"{family}_{'copy' if copy else 'closed'}"
    out = args.out / name
    overrides = [f"train.max_minutes={args.minutes}", f"model.copy={str(copy).lower()}"]
    start = time.perf_counter()
    api.train(REPO / f"hybridseq/configs/spelling_{family}.yaml", out, overrides + args.set)
    seconds = time.perf_counter() - start
    model = hybridseq.load(out / "best")
    dev_src, dev_ref = read_split("dev")
    test_src, test_ref = read_split("test")
    beam = model.predict(test_src, beam=args.beam)
    (HERE / f"predictions_{name}.tsv").write_text(
        "".join(f"{s}\t{h}\n" for s, h in zip(test_src, beam, strict=True))
    )
    return {
        "run": name,
        "parameters": sum(p.numel() for p in model.network.parameters()),
        "train_seconds": round(seconds, 1),
        "dev_greedy": score(model.predict(dev_src, beam=1), dev_ref),
        "test_greedy": score(model.predict(test_src, beam=1), test_ref),
        f"test_beam{args.beam}": score(beam, test_ref),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--families", nargs="+", default=["lstm_attention", "hybrid"])
    p.add_argument("--minutes", type=float, default=8.0, help="training budget of each run")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "spelling")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    torch.manual_seed(0)
    test_src, test_ref = read_split("test")
    results = {"copy_the_input": {"test": score(test_src, test_ref)}, "runs": []}
    print(f"copy the input: {results['copy_the_input']['test']}")
    for family in args.families:
        for copy in (False, True):
            results["runs"].append(train_and_test(family, copy, args))
            print(json.dumps(results["runs"][-1]))
            (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
