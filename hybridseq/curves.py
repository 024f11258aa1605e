"""Learning curves: how a run went, written as it goes and drawn afterwards.

Training writes ``metrics.jsonl`` in the run directory, one JSON object per line:

    {"kind": "train", "step": 100, "loss": 1.93, "lr": 0.001, "tokens_per_s": 5400.0,
     "grad_norm": 0.82, "teacher_forcing": 1.0}
    {"kind": "valid", "step": 200, "loss": 1.71, "wer": 31.2, "per": 7.9}

(a ``train`` line every ``train.log_every`` steps, averaged over them; a ``valid`` line at every
validation, its metrics by name), and the same numbers as TensorBoard event files under
``tensorboard/`` when the ``tensorboard`` package is installed (``tensorboard --logdir runs``).
``plot`` draws the curves from ``metrics.jsonl`` (``hybridseq plot RUN``).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

CURVES_FILE = "metrics.jsonl"


class CurveWriter:
    """Appends a run's curve points to ``metrics.jsonl`` (and TensorBoard, where installed).

    On resume the lines past the resumed step (written after the checkpoint the run resumes
    from, then lost with the process) are dropped, so the file holds one history.
    """

    def __init__(self, out_dir: Path, resumed_at: int | None = None) -> None:
        self.path = Path(out_dir) / CURVES_FILE
        if resumed_at is None:
            self.path.write_text("")
        else:
            _truncate_after(self.path, resumed_at)
        self.board = _tensorboard(Path(out_dir) / "tensorboard", resumed_at)

    def write(self, kind: str, step: int, values: dict[str, float]) -> None:
        row = {"kind": kind, "step": step, **{k: _plain(v) for k, v in values.items()}}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.board is not None:
            for name, value in values.items():
                self.board.add_scalar(f"{kind}/{name}", value, step)
            self.board.flush()

    def close(self) -> None:
        if self.board is not None:
            self.board.close()


def _tensorboard(folder: Path, resumed_at: int | None):
    """A SummaryWriter, or None without the tensorboard package (metrics.jsonl still holds
    every number). On resume, TensorBoard drops the earlier events past the resumed step."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    purge = None if resumed_at is None else resumed_at + 1
    return SummaryWriter(str(folder), purge_step=purge)


def _plain(v: Any) -> float | None:
    """A JSON number (NaN and inf as null, which JSON has no spelling for)."""
    v = float(v)
    return v if math.isfinite(v) else None


def _truncate_after(path: Path, step: int) -> None:
    if not path.is_file():
        return
    kept = [line for line in read_curves(path) if line["step"] <= step]
    path.write_text("".join(json.dumps(row) + "\n" for row in kept))


def read_curves(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``metrics.jsonl`` (a run directory or the file itself); a line cut short
    by a killed process is left out."""
    path = Path(path)
    path = path / CURVES_FILE if path.is_dir() else path
    if not path.is_file():
        raise FileNotFoundError(
            f"{path}: not found; training writes its learning curves there (a run made "
            "before hybridseq wrote them has none)"
        )
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return rows


def plot(run: str | Path, out: str | Path | None = None) -> Path:
    """Draw a run's learning curves into a PNG (default ``RUN/curves.png``): training and
    validation loss, the learning rate, and one panel per validation metric."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = read_curves(run)
    train = [r for r in rows if r["kind"] == "train"]
    valid = [r for r in rows if r["kind"] == "valid"]
    metrics = [k for k in (valid[0] if valid else {}) if k not in ("kind", "step", "loss")]
    panels = ["loss", "lr", *metrics]
    fig, axes = plt.subplots(len(panels), 1, figsize=(7, 2.2 * len(panels)), sharex=True)
    for ax, name in zip(list(getattr(axes, "flat", [axes])), panels, strict=True):
        if name in ("loss", "lr"):
            _line(ax, train, name, "training")
        if name != "lr":
            _line(ax, valid, name, "validation", marker="o")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best")
    fig.axes[-1].set_xlabel("step")
    fig.suptitle(Path(run).name)
    fig.tight_layout()
    out = Path(out) if out is not None else Path(run) / "curves.png"
    fig.savefig(out, dpi=100)
    plt.close(fig)
    return out


def _line(ax, rows: list[dict], name: str, label: str, marker: str | None = None) -> None:
    points = [(r["step"], r[name]) for r in rows if r.get(name) is not None]
    if points:
        steps, values = zip(*points, strict=True)
        ax.plot(steps, values, label=label, marker=marker, markersize=3)
