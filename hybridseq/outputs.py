"""What a token model's decoding gives beside its text, in one shape for every reader: torch
prediction (``predict``), the onnxruntime decoders (``runtime``), the server and its page, and
the heatmap files. Plain numpy, so a deployment without torch imports it too."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass
class Alignment:
    """Where each output symbol looked: the attention weights of the decoder step that emitted
    it over the source symbols."""

    source: list[str]  # S source symbols, as the model's tokenizer split the input
    output: list[str]  # T output symbols
    weights: np.ndarray  # (T, S) float32; each row sums to 1

    def to_dict(self, digits: int = 4) -> dict[str, Any]:
        """JSON-ready: ``{"source": [...], "output": [...], "weights": [[...] * S] * T}``."""
        rounded = np.round(self.weights.astype(np.float64), digits).tolist()
        return {"source": self.source, "output": self.output, "weights": rounded}


@dataclass
class Prediction:
    """One of a source's n best outputs."""

    output: str
    score: float  # total log-probability (beam search: over the length penalty)
    alignment: Alignment | None  # with ``attention=True``

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"output": self.output, "score": round(self.score, 6)}
        if self.alignment is not None:
            d["attention"] = self.alignment.to_dict()
        return d
