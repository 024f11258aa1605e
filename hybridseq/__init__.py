"""hybridseq: sequence-to-sequence learning with LSTM-attention and Transformer-LSTM models."""

__version__ = "0.1.0"
