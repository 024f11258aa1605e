"""Build a spelling-correction data set from codespell's dictionary of common misspellings
(``pip install codespell``; the file ``codespell_lib/data/dictionary.txt`` ships in the wheel):
train / dev / test TSVs of ``misspelling<TAB>correction``.

    python benchmarks/spelling/prepare.py [--out runs/spelling-data] [--seed 0]

Steps: entries with one correction whose two sides are lower-case a-z and the apostrophe kept
(the dictionary's other entries list several corrections, or hold capitals, digits or spaces:
counted and printed); the corrections split 80 / 10 / 10 % into train, dev and test by a seeded
shuffle, every misspelling of a correction on its correction's side, so no test correction was
ever a training target: a model must copy most of a word it has not seen and fix the rest.
"""

from __future__ import annotations

import argparse
import random
import re
from collections import defaultdict
from importlib import resources
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "runs" / "spelling-data"  # runs/ is git-ignored
WORD = re.compile(r"[a-z']+")
SPLITS = (("train", 0.8), ("dev", 0.1), ("test", 0.1))


def read_dictionary() -> list[str]:
    """The lines of codespell's main dictionary (``wrong->right[, right2...]``)."""
    try:
        data = resources.files("codespell_lib") / "data" / "dictionary.txt"
    except ModuleNotFoundError:
        raise SystemExit("prepare: codespell is not installed (pip install codespell)") from None
    return data.read_text(encoding="utf-8").splitlines()


def usable_pairs(lines: list[str]) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """(misspelling, correction) pairs with one correction and plain lower-case words; and how
    many lines were dropped, by reason."""
    pairs, dropped = [], {"several corrections": 0, "other characters": 0}
    for line in lines:
        wrong, _, rights = line.partition("->")
        corrections = [r.strip() for r in rights.split(",") if r.strip()]
        if len(corrections) != 1:
            dropped["several corrections"] += 1
        elif not (WORD.fullmatch(wrong) and WORD.fullmatch(corrections[0])):
            dropped["other characters"] += 1
        else:
            pairs.append((wrong, corrections[0]))
    return pairs, dropped


def split_by_correction(pairs: list[tuple[str, str]], seed: int) -> dict[str, list]:
    """Split name -> pairs; the corrections are shuffled and cut 80 / 10 / 10 %."""
    by_right: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for wrong, right in pairs:
        by_right[right].append((wrong, right))
    rights = sorted(by_right)
    random.Random(seed).shuffle(rights)
    out, start = {}, 0
    for i, (name, share) in enumerate(SPLITS):
        end = len(rights) if i == len(SPLITS) - 1 else start + round(share * len(rights))
        out[name] = [p for r in rights[start:end] for p in by_right[r]]
        start = end
    return out


def write_split(path: Path, pairs: list[tuple[str, str]]) -> None:
    """One ``wrong<TAB>right`` line per pair (the configs tokenize both sides by character)."""
    path.write_text("".join(f"{w}\t{r}\n" for w, r in pairs))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=DEFAULT_OUT)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    pairs, dropped = usable_pairs(read_dictionary())
    splits = split_by_correction(pairs, args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, part in splits.items():
        write_split(args.out / f"{name}.tsv", part)
    sizes = ", ".join(f"{n} {len(p):,}" for n, p in splits.items())
    print(f"{len(pairs):,} pairs ({sizes}) in {args.out}; dropped: {dropped}")


if __name__ == "__main__":
    main()
