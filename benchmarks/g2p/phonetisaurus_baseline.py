"""The in-run baseline: Phonetisaurus (joint n-gram WFST, PyPI ``phonetisaurus``, which ships its
binaries) trained on the prepared training words, scored on the test words by the same scorer
as the recipe (``scoring.py``: hybridseq's WER and PER against all references).

    python benchmarks/g2p/phonetisaurus_baseline.py [--data runs/g2p-data] [--train-only]

It trains on train.tsv + dev.tsv, i.e. the whole cleaned dictionary minus the test words (the
shared test set README's protocol for its 24.93 % / 5.98 % figure; Phonetisaurus selects no
model, so it has no use for a dev split); ``--train-only`` leaves dev.tsv out. Training uses the
package's defaults (``phonetisaurus.train``: ``phonetisaurus-train --seq2_del``, 8-gram).
Decoding is the 1-best of ``phonetisaurus-apply``. Writes the predictions to
``benchmarks/g2p/predictions_phonetisaurus.tsv`` and a JSON summary next to them.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import prepare
from scoring import read_references, score, write_predictions

HERE = Path(__file__).resolve().parent


def read_lexicon(paths: list[Path]) -> dict[str, list[list[str]]]:
    """word -> its pronunciations (phone lists), from ``word<TAB>phones`` files."""
    lexicon: dict[str, list[list[str]]] = {}
    for path in paths:
        for line in path.read_text().splitlines():
            word, phones = line.split("\t")
            lexicon.setdefault(word, []).append(phones.split())
    return lexicon


def train(lexicon: dict[str, list[list[str]]], model_path: Path) -> float:
    """Train a Phonetisaurus model into ``model_path``; returns the wall-clock seconds."""
    import phonetisaurus  # optional: pip install phonetisaurus

    start = time.perf_counter()
    phonetisaurus.train(lexicon, model_path)
    return time.perf_counter() - start


def predict(words: list[str], model_path: Path) -> tuple[list[str], float]:
    """1-best pronunciations (space-separated phones; "" where the model gives none) and the
    decoding wall-clock seconds."""
    import phonetisaurus

    start = time.perf_counter()
    best: dict[str, str] = {}
    for word, phones in phonetisaurus.predict(words, model_path, nbest=1):
        best.setdefault(word, " ".join(phones))
    return [best.get(w, "") for w in words], time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, default=prepare.DEFAULT_OUT, help="prepared data dir")
    p.add_argument("--train-only", action="store_true", help="train on train.tsv without dev")
    p.add_argument("--model", type=Path, default=Path("runs/g2p-phonetisaurus/model.fst"))
    p.add_argument("--predictions", type=Path, default=HERE / "predictions_phonetisaurus.tsv")
    p.add_argument("--summary", type=Path, default=HERE / "results_phonetisaurus.json")
    args = p.parse_args()
    if not (args.data / "test.tsv").is_file():
        prepare.prepare(args.data, prepare.DEFAULT_TEST)
    files = [args.data / "train.tsv"] + ([] if args.train_only else [args.data / "dev.tsv"])
    lexicon = read_lexicon(files)
    train_seconds = train(lexicon, args.model)
    words, refs = read_references(args.data / "test.tsv")
    hyps, decode_seconds = predict(words, args.model)
    write_predictions(args.predictions, words, hyps)
    summary = {
        "family": "phonetisaurus",
        "train_files": [str(f) for f in files],
        "train_words": len(lexicon),
        "train_seconds": round(train_seconds, 1),
        "test_words": len(words),
        "missing_outputs": sum(not h for h in hyps),
        "nbest1": {
            **score(hyps, refs),
            "seconds": round(decode_seconds, 2),
            "words_per_s": round(len(words) / decode_seconds, 1),
        },
        "predictions": str(args.predictions),
    }
    args.summary.write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps(summary, indent=2))
    r = summary["nbest1"]
    print(f"phonetisaurus: WER {r['wer']:.2f}%  PER {r['per']:.2f}%  trained {train_seconds:.0f}s")


if __name__ == "__main__":
    main()
