"""WER by word length: where on the test set each model's errors fall.

    python benchmarks/g2p/by_length.py benchmarks/g2p/predictions_hybrid.tsv \
        benchmarks/g2p/predictions_lstm_attention_dropout01.tsv [--test runs/g2p-data/test.tsv]

Words are grouped by their number of characters (14 and longer together); each column is a
predictions file (``word<TAB>phones``) scored against all of a word's references.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import prepare
from scoring import read_references

LONGEST = 14  # words of this length and longer are one group


def read_predictions(path: Path) -> dict[str, list[str]]:
    """word -> predicted phones."""
    rows = (line.split("\t") for line in path.read_text().splitlines() if line)
    return {word: phones.split() for word, phones in rows}


def by_length(words, refs, predictions) -> dict[int, tuple[int, list[float]]]:
    """length -> (words, WER per predictions file)."""
    groups: dict[int, list[int]] = {}
    for i, word in enumerate(words):
        groups.setdefault(min(len(word), LONGEST), []).append(i)
    table = {}
    for length, rows in sorted(groups.items()):
        wers = [
            100.0 * sum(p[words[i]] not in refs[i] for i in rows) / len(rows) for p in predictions
        ]
        table[length] = (len(rows), wers)
    return table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("predictions", type=Path, nargs="+")
    p.add_argument(
        "--refs",
        type=Path,
        default=prepare.DEFAULT_OUT / "test.tsv",
        help="the split scored (dev.tsv for choices)",
    )
    args = p.parse_args()
    words, refs = read_references(args.refs)
    predictions = [read_predictions(path) for path in args.predictions]
    print("| length | words | " + " | ".join(path.stem for path in args.predictions) + " |")
    print("|---|---|" + "---|" * len(predictions))
    for length, (n, wers) in by_length(words, refs, predictions).items():
        label = f"{length}+" if length == LONGEST else str(length)
        print(f"| {label} | {n:,} | " + " | ".join(f"{w:.1f}" for w in wers) + " |")


if __name__ == "__main__":
    main()
