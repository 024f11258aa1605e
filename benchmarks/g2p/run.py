"""The CMUdict G2P recipe in one command: prepare the data (if missing), train a config, load
its best checkpoint (chosen on dev WER), decode the test words greedily and with beam search,
and report WER, PER, parameters, training time and decoding words/s.

    python benchmarks/g2p/run.py --config hybridseq/configs/g2p_lstm_attention.yaml [--minutes 35]
    python benchmarks/g2p/run.py --score-only runs/g2p-lstm_attention   # no training
    python benchmarks/g2p/run.py --score-only runs/g2p-a runs/g2p-b    # an ensemble of both
    python benchmarks/g2p/run.py --config ... --average 5   # also try the last 5 checkpoints' mean

Writes the beam-search predictions (``word<TAB>phones``, one line per test word) to
``benchmarks/g2p/predictions_<family>.tsv`` and the summary (also printed) to
``benchmarks/g2p/results_<family>.json`` unless ``--predictions`` / ``--summary`` say otherwise
(with ``--test-words``, a smoke test, the defaults are in the checkpoint directory instead).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import prepare
import torch
from scoring import read_references, score, write_predictions

import hybridseq
from hybridseq import api
from hybridseq.api import as_config

HERE = Path(__file__).resolve().parent
SPLIT_FILES = {"train": "train.tsv", "valid": "dev.tsv", "test": "test.tsv"}


def ensure_data(data_dir: Path) -> None:
    """Run ``prepare.py``'s steps into ``data_dir`` unless its three files are there."""
    if all((data_dir / name).is_file() for name in SPLIT_FILES.values()):
        return
    print(f"preparing the data in {data_dir}")
    for name, n in prepare.prepare(data_dir, prepare.DEFAULT_TEST).items():
        print(f"  {name}: {n:,}")


def train_overrides(data_dir: Path, minutes: float | None, extra: list[str]) -> list[str]:
    """The data paths (absolute, so the run works from any directory), the time budget, then
    the user's ``--set`` overrides (which win)."""
    paths = [f"data.{split}={data_dir / name}" for split, name in SPLIT_FILES.items()]
    budget = [f"train.max_minutes={minutes}"] if minutes is not None else []
    return paths + budget + extra


def decode(model: hybridseq.Model, words: list[str], refs: list, beam: int) -> tuple:
    """Predictions for ``words`` at beam size ``beam``, and their scores and speed."""
    start = time.perf_counter()
    hyps = model.predict(words, beam=beam)
    seconds = time.perf_counter() - start
    result = score(hyps, refs)
    result.update(seconds=round(seconds, 2), words_per_s=round(len(words) / seconds, 1))
    return hyps, result


def evaluate(model: hybridseq.Model, test: Path, beam: int, limit: int | None) -> tuple:
    """Greedy and beam results on the test words (the first ``limit`` only, for smoke tests);
    returns the summary part and the beam predictions."""
    words, refs = read_references(test)
    words, refs = words[:limit], refs[:limit]
    _, greedy = decode(model, words, refs, beam=1)
    hyps, beamed = decode(model, words, refs, beam=beam)
    return {"test_words": len(words), "greedy": greedy, f"beam{beam}": beamed}, words, hyps


def print_summary(summary: dict) -> None:
    print(json.dumps(summary, indent=2))
    beam = next(k for k in summary if k.startswith("beam"))
    for name in ("greedy", beam):
        r = summary[name]
        print(
            f"{summary['family']} {name}: WER {r['wer']:.2f}%  PER {r['per']:.2f}%  "
            f"{r['words_per_s']:,.0f} words/s"
        )


def train_run(args: argparse.Namespace) -> tuple[Path, dict]:
    """Train ``args.config``; returns [the run directory] and the summary's training part."""
    keep = [f"train.keep_checkpoints={args.average}"] if args.average else []
    overrides = train_overrides(args.data, args.minutes, keep + args.set)
    family = as_config(args.config, overrides).model.family
    out = args.out or Path("runs") / f"g2p-{family}"
    result = hybridseq.train(args.config, out=out, overrides=overrides)
    return [out], {
        "config": str(args.config),
        "overrides": overrides,
        "train_steps": result.step,
        "train_seconds": round(result.seconds, 1),
        "dev_best": result.best,
    }


def dev_wer(ckpt: Path, dev: Path) -> float:
    """Greedy WER on every dev word (model selection; the test set is not read)."""
    words, refs = read_references(dev)
    return score(hybridseq.load(ckpt).predict(words, beam=1), refs)["wer"]


def choose_average(run_dir: Path, last: int, dev: Path) -> tuple[Path, dict]:
    """Average the run's newest ``last`` kept checkpoints; the checkpoint to report (``best``
    or the average, whichever has the lower dev WER) and the summary's part on it."""
    out, averaged = api.average([run_dir], run_dir / "averaged", last=last)
    wers = {"best": dev_wer(run_dir / "best", dev), "averaged": dev_wer(out, dev)}
    chosen = min(wers, key=wers.get)  # best on a tie
    print(
        f"dev WER (greedy, all dev words): best {wers['best']:.2f}, "
        f"average of {[p.name for p in averaged]} {wers['averaged']:.2f}: {chosen} kept"
    )
    part = {"averaged": [p.name for p in averaged], "dev_wer_all": wers, "chosen": chosen}
    return (out if chosen == "averaged" else run_dir / "best"), part


def run(args: argparse.Namespace) -> dict:
    """Train (unless ``--score-only``), evaluate, write the predictions and the summary."""
    ensure_data(args.data)
    ckpts, training = (args.score_only, {}) if args.score_only else train_run(args)
    if args.average:
        if len(ckpts) > 1:
            raise SystemExit("--average: one run directory, not an ensemble")
        chosen, training["checkpoint_average"] = choose_average(
            Path(ckpts[0]), args.average, args.data / SPLIT_FILES["valid"]
        )
        ckpts = [chosen]
    model = hybridseq.load(ckpts)
    tc = model.config.train
    if tc.threads:  # decode with the cores it trained on (its processes' threads together)
        torch.set_num_threads(tc.threads * tc.processes)
    family = model.config.model.family
    results, words, hyps = evaluate(model, args.data / "test.tsv", args.beam, args.test_words)
    where = HERE if args.test_words is None else Path(ckpts[0])  # smoke results stay out of HERE
    family += "_ensemble" if len(ckpts) > 1 else ""
    predictions = args.predictions or where / f"predictions_{family}.tsv"
    write_predictions(predictions, words, hyps)
    summary = {
        "family": family,
        "checkpoint": [str(c) for c in ckpts] if len(ckpts) > 1 else str(ckpts[0]),
        "parameters": sum(p.numel() for p in model.network.parameters()),
        "threads": torch.get_num_threads(),
        "train_processes": tc.processes,
        **training,
        **results,
        "predictions": str(predictions),
    }
    summary_path = args.summary or where / f"results_{family}.json"
    Path(summary_path).write_text(json.dumps(summary, indent=2) + "\n")
    print_summary(summary)
    return summary


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument(
        "--config", type=Path, help="a G2P config to train (hybridseq/configs/g2p_*.yaml)"
    )
    what.add_argument(
        "--score-only",
        type=Path,
        nargs="+",
        metavar="CKPT",
        help="evaluate this checkpoint (several: their ensemble)",
    )
    p.add_argument("--minutes", type=float, help="training budget (sets train.max_minutes)")
    p.add_argument("--out", type=Path, help="run directory (default runs/g2p-<family>)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override")
    p.add_argument("--data", type=Path, default=prepare.DEFAULT_OUT, help="prepared data dir")
    p.add_argument("--beam", type=int, default=5, help="beam size of the beam decoding")
    p.add_argument("--predictions", type=Path, help="predictions file (beam output)")
    p.add_argument("--summary", type=Path, help="JSON summary file")
    p.add_argument("--test-words", type=int, help="score only the first N test words (smoke)")
    p.add_argument(
        "--average",
        type=int,
        metavar="N",
        help="keep the last N validations' weights (train.keep_checkpoints), average them, and "
        "report the average instead of best if its WER on all dev words is lower",
    )
    args = p.parse_args()
    if args.average is not None and args.average < 1:
        p.error(f"--average {args.average}: must be >= 1")
    if args.score_only and (args.minutes is not None or args.set or args.out):
        p.error("--minutes, --set and --out configure training; --score-only trains nothing")
    return args


if __name__ == "__main__":
    run(parse_args())
