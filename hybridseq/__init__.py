"""hybridseq: sequence-to-sequence learning with LSTM-attention and Transformer-LSTM models.

The Python API (``hybridseq.api``) is re-exported here: ``train``, ``load``, ``synth``,
``summary``, ``demo``.
"""

from hybridseq.api import Model, demo, load, summary, synth, train

__version__ = "0.1.0"
__all__ = ["Model", "demo", "load", "summary", "synth", "train"]
