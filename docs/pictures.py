"""Make the pictures under docs/ that the README shows, each from a small model trained here.

    python docs/pictures.py attention   # docs/attention.png: the demo's reverse task
    python docs/pictures.py forecast    # docs/forecast.png: Mauna Loa CO2, monthly

Each takes a minute or two on two CPU cores; the models are small and briefly trained, enough
for the picture to show what it is about, not a benchmark.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np

import hybridseq
from hybridseq.heatmap import draw

DOCS = Path(__file__).resolve().parent
SOURCE = "m c k a h f b j e l d g i"  # 13 symbols of the 14 the model saw in training


def attention(out: Path = DOCS / "attention.png") -> None:
    """Train a small LSTM-attention model to reverse sequences (the demo's task, smaller), then
    draw where it looked while reversing one held-out sequence: the anti-diagonal."""
    config = {
        "data": {
            "synth": {"task": "reverse", "n_train": 8000, "n_valid": 200, "n_test": 10},
            "src_tokenize": "whitespace",
        },
        "model": {"family": "lstm_attention", "emb_dim": 32, "enc_hidden": 64, "dec_hidden": 64},
        "train": {"batch_size": 64, "max_steps": 400, "lr": 0.005, "eval_every": 200},
    }
    config["data"]["synth"].update(min_len=5, max_len=15, vocab=14)
    with tempfile.TemporaryDirectory() as run:
        hybridseq.train(config, out=run)
        model = hybridseq.load(run)
        (best,) = model.predict([SOURCE], beam=4, attention=True)[0]
    print(f"{SOURCE} -> {best.output}")
    draw(best.alignment, out, title="reverse: where each output symbol looked")
    print(f"wrote {out}")


def main(argv: list[str]) -> None:
    makers = {"attention": attention}
    if len(argv) != 1 or argv[0] not in makers:
        sys.exit(f"usage: python docs/pictures.py {'|'.join(makers)}")
    np.random.seed(0)
    makers[argv[0]]()


if __name__ == "__main__":
    main(sys.argv[1:])
