"""Spelling correction with and without copy attention: each family trained on the codespell
data (``prepare.py``) in the same budget, decoded on the test words, scored beside the
copy-the-input baseline.

    python benchmarks/spelling/run.py [--families lstm_attention hybrid] [--copy both|true|false]
        [--minutes 8] [--out runs/spelling] [--beam 5] [--set KEY=VALUE ...]
    python benchmarks/spelling/run.py --table     # the table of the results_*.json here

Each run is ``hybridseq/configs/spelling_<family>.yaml`` with ``model.copy`` false (a closed
output vocabulary) and true (a pointer-generator). The checkpoint kept is the one with the best
dev exact match (``train.select``); the test words are read only to report. Scores: exact match
(percent of words corrected exactly) and CER (character edit distance over reference length,
percent). Predictions (``predictions_<run>.tsv``) and ``results_<run>.json`` go beside this file.
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


def table() -> None:
    """Print the committed results beside the copy-the-input baseline."""
    test_src, test_ref = read_split("test")
    base = score(test_src, test_ref)
    print(
        "| run | params | train s | dev exact | test exact (greedy / beam) "
        "| test CER (greedy / beam) |"
    )
    print("|---|---|---|---|---|---|")
    print(f"| copy the input | | | | {base['exact_match']:.2f} | {base['cer']:.2f} |")
    for path in sorted(HERE.glob("results_*.json")):
        r = json.loads(path.read_text())
        g, b = r["test_greedy"], r[next(k for k in r if k.startswith("test_beam"))]
        print(
            f"| {r['run']} | {r['parameters']:,} | {r['train_seconds']:.0f} | "
            f"{r['dev_greedy']['exact_match']:.2f} | {g['exact_match']:.2f} / "
            f"{b['exact_match']:.2f} | {g['cer']:.2f} / {b['cer']:.2f} |"
        )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--families", nargs="+", default=["lstm_attention", "hybrid"])
    p.add_argument("--copy", choices=["both", "true", "false"], default="both")
    p.add_argument("--minutes", type=float, default=8.0, help="training budget of each run")
    p.add_argument("--out", type=Path, default=REPO / "runs" / "spelling")
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--table", action="store_true", help="only print the table of results_*.json")
    args = p.parse_args()
    if args.table:
        return table()
    torch.manual_seed(0)
    copies = {"both": (False, True), "true": (True,), "false": (False,)}[args.copy]
    for family in args.families:
        for copy in copies:
            result = train_and_test(family, copy, args)
            print(json.dumps(result))
            (HERE / f"results_{result['run']}.json").write_text(json.dumps(result, indent=2) + "\n")
    table()


if __name__ == "__main__":
    main()
