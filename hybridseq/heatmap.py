"""Attention heatmaps: where each output symbol looked, drawn as a labelled PNG.

One picture per ``Alignment`` (``hybridseq.predict`` and ``hybridseq.runtime`` give the same
fields): source symbols along the x axis, output symbols down the y axis, one cell per
(output step, source symbol) shaded by its attention weight, and a colour bar. The server's
page draws the same weights as an HTML table.

Needs matplotlib (the ``curves`` and ``forecast`` extras install it), imported when a picture
is drawn.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

CELL_INCHES = 0.28  # one symbol's cell: a 30 x 30 map is about 8.4 inches, labels readable
MIN_INCHES, MAX_INCHES = 3.0, 30.0


class Aligned(Protocol):
    """What is drawn: the fields of ``hybridseq.outputs.Alignment``."""

    source: list[str]  # S source symbols
    output: list[str]  # T output symbols
    weights: np.ndarray  # (T, S), each row sums to 1


def _pyplot():
    """matplotlib's pyplot on the file-only Agg backend, or a ValueError naming the extra."""
    try:
        import matplotlib
    except ImportError:
        raise ValueError(
            "attention heatmaps need matplotlib: pip install 'hybridseq[curves]' "
            "(or pip install matplotlib)"
        ) from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _size(n: int) -> float:
    """Inches along an axis of ``n`` symbols, with room for the labels."""
    return float(np.clip(1.5 + CELL_INCHES * n, MIN_INCHES, MAX_INCHES))


def _shown(symbol: str) -> str:
    """A symbol as a tick label: a blank one (a space token) would vanish."""
    return symbol if symbol.strip() else repr(symbol)


def draw(alignment: Aligned, path: str | Path, title: str | None = None) -> Path:
    """Write ``alignment`` as a heatmap PNG at ``path`` and return the path.

    The weights (T, S) are shown on a fixed 0-1 scale, so maps of different inputs compare;
    output step t's row is the decoder's attention when it emitted ``alignment.output[t]``.
    """
    weights = np.asarray(alignment.weights, dtype=np.float64)
    t, s = weights.shape
    if (t, s) != (len(alignment.output), len(alignment.source)):
        raise ValueError(
            f"alignment: weights {weights.shape} do not match {len(alignment.output)} output "
            f"x {len(alignment.source)} source symbols"
        )
    output = [_shown(y) for y in alignment.output]
    if t == 0:  # the model stopped at once: one empty row, so the source still shows
        weights, output, t = np.zeros((1, s)), ["(no output)"], 1
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(_size(s) + 1.2, _size(t)))
    image = ax.imshow(weights, cmap="Blues", vmin=0.0, vmax=1.0, aspect="equal")
    ax.set_xticks(range(s), [_shown(x) for x in alignment.source], fontsize=9)
    ax.set_yticks(range(t), output, fontsize=9)
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    rotate = max((len(x) for x in alignment.source), default=0) > 2
    ax.tick_params(axis="x", labelrotation=90 if rotate else 0)
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    if title:
        ax.set_title(title, fontsize=10, pad=12)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return Path(path)


def file_name(index: int) -> str:
    """The heatmap file of input line ``index`` (1-based): ``0001.png``, ..., ``12345.png``."""
    return f"{index:04d}.png"
