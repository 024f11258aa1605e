"""hybridseq: sequence-to-sequence learning with LSTM-attention and Transformer-LSTM models.

The Python API (``hybridseq.api``) is re-exported here: ``train``, ``load``, ``synth``,
``summary``, ``demo``; and ``export`` (``hybridseq.export``: ONNX graphs that
``hybridseq.runtime`` decodes with onnxruntime). They are imported on first use, so that
``hybridseq.runtime`` can be imported where torch is not installed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from hybridseq.api import Model, demo, load, summary, synth, train

__version__ = "0.1.0"
__all__ = ["Model", "demo", "export", "load", "summary", "synth", "train"]
_API = ("Model", "demo", "load", "summary", "synth", "train")


def __getattr__(name: str) -> Any:
    """The API's names, imported (with torch) when first asked for."""
    if name == "export":  # the module, which is callable as its export() function
        return importlib.import_module("hybridseq.export")
    if name in _API:
        api = importlib.import_module("hybridseq.api")
        globals().update({n: getattr(api, n) for n in _API})
        return globals()[name]
    raise AttributeError(f"module 'hybridseq' has no attribute {name!r}")
