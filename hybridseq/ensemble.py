"""Several trained models decoded as one: the ensemble speaks the same seam as a ``Seq2Seq``
(``encode`` / ``init_state`` / ``start_inputs`` / ``decode_step``), so greedy, beam search and
rollout decode it unchanged.

At each step every member takes the same previous output; a token ensemble returns the log of
the members' mean probability (the usual NMT ensemble, e.g. fairseq's), a vector ensemble the
members' mean output. Copy models (``model.copy``) combine the same way, over the extended
vocabulary their shared source gives them all.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from hybridseq.model import Seq2Seq


class PerMember(tuple):
    """One value per member (encodings or decoder states) that beam search can reorder."""

    def select(self, index: Tensor) -> PerMember:
        """Rows ``index`` (B',) of every member's value."""
        return PerMember(v.select(index) for v in self)


def _kind(model: Seq2Seq) -> tuple:
    """What members must share to be combined step by step."""
    return (
        model.token_target,
        model.head.out_features,
        model.quantiles,
        model.cov_dim,
        model.copies,
    )


class Ensemble(nn.Module):
    """Members with the same kind of target (tokens of one vocabulary, or vectors of one width,
    with the same quantile levels and covariates) combined at every decoding step."""

    def __init__(self, members: Sequence[Seq2Seq]) -> None:
        super().__init__()
        if len(members) < 2:
            raise ValueError(f"an ensemble needs at least 2 models, got {len(members)}")
        first = _kind(members[0])
        for i, m in enumerate(members[1:], start=2):
            if _kind(m) != first:
                raise ValueError(
                    f"ensemble: member 1 and member {i} differ in (token target, output width, "
                    f"quantiles, covariates, copy): {first} vs {_kind(m)}"
                )
        self.members = nn.ModuleList(members)

    @property
    def token_target(self) -> bool:
        return self.members[0].token_target

    @property
    def cov_dim(self) -> int:
        return self.members[0].cov_dim

    @property
    def quantiles(self) -> tuple[float, ...]:
        return self.members[0].quantiles

    def point(self, out):
        return self.members[0].point(out)

    @property
    def step_dtype(self) -> torch.dtype:
        return self.members[0].step_dtype

    def decode_in(self, dtype: torch.dtype) -> Ensemble:
        """Every member's decoder side in ``dtype`` (``Seq2Seq.decode_in``)."""
        for m in self.members:
            m.decode_in(dtype)
        return self

    def check_covariates(self, cov: Tensor | None, lead: tuple[int, ...]) -> None:
        self.members[0].check_covariates(cov, lead)

    def encode(
        self, src: Tensor, src_mask: Tensor | None = None, *, src_ext: Tensor | None = None
    ) -> PerMember:
        """src (B, S) or (B, S, D), src_ext (B, S) for copy models -> each member's
        ``Encoded``."""
        return PerMember(m.encode(src, src_mask, src_ext=src_ext) for m in self.members)

    def init_state(self, enc: PerMember) -> PerMember:
        return PerMember(m.init_state(e) for m, e in zip(self.members, enc, strict=True))

    def start_inputs(self, batch_size: int, device: torch.device) -> Tensor:
        return self.members[0].start_inputs(batch_size, device)

    def decode_step(
        self,
        prev: Tensor,
        state: PerMember,
        enc: PerMember,
        cov: Tensor | None = None,
        attention: bool = False,
    ) -> tuple[Tensor, PerMember] | tuple[Tensor, PerMember, Tensor]:
        """One output position for all members.

        Args:
            prev: (B,) previous ids or (B, D) previous vectors, the same for every member.
            attention: also return the members' mean attention weights (B, S).
        Returns:
            log mean probability (B, V) for tokens, or mean vectors (B, D) / quantiles
            (B, D, Q); the members' new states; with ``attention``, the mean weights (B, S).
        """
        outs, states, weights = [], [], []
        for m, s, e in zip(self.members, state, enc, strict=True):
            out, s, *attn = m.decode_step(prev, s, e, cov, attention=attention)
            outs.append(out)
            states.append(s)
            weights += attn
        stacked = torch.stack(outs)  # (K, B, ...)
        if self.token_target:
            logp = F.log_softmax(stacked.float(), dim=-1)
            combined = torch.logsumexp(logp, dim=0) - math.log(len(outs))
        else:
            combined = stacked.mean(0)
        if not attention:
            return combined, PerMember(states)
        return combined, PerMember(states), torch.stack(weights).mean(0)  # (B, S)
