"""The decoder seam: what greedy and beam search, vector rollout, prediction, scoring, the
export and the server need of a model, and all they may use.

``Seq2Seq`` and ``Ensemble`` both satisfy it: ``encode`` once per batch, ``init_state`` and
``start_inputs`` before the first step, then ``decode_step`` once per output position, which
returns its new state instead of keeping it (so ``select`` on the encoding and ``index_select``
on the state reorder beams). ``Encoded`` and ``State`` are whatever the model makes of them
(``model.Encoded`` and ``decoder.DecoderState`` for one model, a tuple of them per member for
an ensemble); decoders only pass them back, reorder them and select rows of them.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor

Encoded = Any  # what ``encode`` returns; has ``select(index)``
State = Any  # the decoder's recurrent state; a tuple tree of (L, B, H) tensors


@runtime_checkable
class Decodable(Protocol):
    """A sequence-to-sequence model as every decoder sees it."""

    @property
    def token_target(self) -> bool:
        """True: outputs are token ids (logits over a vocabulary); False: vectors."""
        ...

    @property
    def quantiles(self) -> tuple[float, ...]:
        """The quantile levels of a vector output ((): one point value per variable)."""
        ...

    @property
    def step_dtype(self) -> torch.dtype:
        """The dtype the decoding steps run in (half precision after ``decode_in``)."""
        ...

    def eval(self) -> Decodable: ...

    def encode(
        self, src: Tensor, src_mask: Tensor | None = None, *, src_ext: Tensor | None = None
    ) -> Encoded:
        """src (B, S) ids or (B, S, D_in) vectors, src_mask (B, S) bool (True = real);
        src_ext (B, S): a copy model's extended target ids of the source tokens, whose
        ``decode_step`` then gives log-probabilities over V + S entries."""
        ...

    def init_state(self, enc: Encoded) -> State: ...

    def start_inputs(self, batch_size: int, device: torch.device) -> Tensor:
        """The first step's input: BOS ids (B,) or zero vectors (B, D)."""
        ...

    def decode_step(
        self,
        prev: Tensor,
        state: State,
        enc: Encoded,
        cov: Tensor | None = None,
        attention: bool = False,
    ) -> tuple[Tensor, State] | tuple[Tensor, State, Tensor]:
        """prev (B,) ids or (B, D) vectors -> logits (B, V) (a copy model's log-probabilities
        (B, V + S)), vectors (B, D) or quantiles (B, D, Q), the new state and, with
        ``attention``, the step's weights (B, S)."""
        ...

    def point(self, out: Any) -> Any:
        """A vector output's point forecast: (..., D, Q) -> (..., D); else unchanged."""
        ...
