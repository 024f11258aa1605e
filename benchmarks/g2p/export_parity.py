"""The G2P model through onnxruntime against torch: the same test words, WER and PER, greedy
and beam, for the float32 export and the int8 one (dynamic quantization of the matrix products).

    python benchmarks/g2p/export_parity.py runs/g2p-lstm_attention [--test runs/g2p-data/test.tsv]
        [--beam 5] [--limit N] [--threads N]

Prints one row per engine and decoding (WER, PER, words/s, and how many outputs differ from
torch's) and writes the rows as JSON with ``--json FILE``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from scoring import read_references, score

from hybridseq import api, runtime
from hybridseq.export import export

HERE = Path(__file__).resolve().parent


def decode(model, words: list[str], beam: int) -> tuple[list[str], float]:
    """Predictions of ``model`` (``api.Model`` or ``runtime.ExportedModel``) and the seconds."""
    start = time.perf_counter()
    hyps = model.predict(words, beam=beam)
    return hyps, time.perf_counter() - start


def rows_for(name: str, model, words: list, refs: list, beams: list[int], base: dict) -> list:
    """One row per beam size: scores, speed, outputs that differ from torch's (``base``)."""
    rows = []
    for beam in beams:
        hyps, seconds = decode(model, words, beam)
        base.setdefault(beam, hyps)
        differ = sum(a != b for a, b in zip(hyps, base[beam], strict=True))
        row = {"engine": name, "beam": beam, **score(hyps, refs)}
        row.update(words_per_s=round(len(words) / seconds, 1), differ_from_torch=differ)
        rows.append(row)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", help="a trained G2P run or checkpoint directory")
    p.add_argument("--test", default=str(HERE.parents[1] / "runs/g2p-data/test.tsv"))
    p.add_argument("--beam", type=int, default=5)
    p.add_argument("--limit", type=int, help="only the first N test words (smoke test)")
    p.add_argument("--threads", type=int, help="onnxruntime threads (default: its own)")
    p.add_argument("--json", help="also write the rows here")
    args = p.parse_args()
    words, refs = read_references(args.test)
    words, refs = words[: args.limit], refs[: args.limit]
    beams, base = [1, args.beam], {}
    rows = rows_for("torch", api.load(args.run, device="cpu"), words, refs, beams, base)
    with tempfile.TemporaryDirectory() as tmp:
        for quantize in (None, "int8"):
            out = export(args.run, Path(tmp) / (quantize or "fp32"), quantize=quantize)
            model = runtime.load(out, threads=args.threads)
            name = f"onnxruntime {quantize or 'fp32'}"
            rows += rows_for(name, model, words, refs, beams, base)
    print(f"{len(words)} test words ({args.test})")
    print(f"{'engine':<18}{'beam':>5}{'WER':>8}{'PER':>8}{'words/s':>10}{'differ':>8}")
    for r in rows:
        print(
            f"{r['engine']:<18}{r['beam']:>5}{r['wer']:>8.2f}{r['per']:>8.2f}"
            f"{r['words_per_s']:>10.1f}{r['differ_from_torch']:>8}"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1) + "\n")


if __name__ == "__main__":
    main()
