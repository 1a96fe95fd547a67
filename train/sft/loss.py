"""The OXA objective (paper Eq. 3-5) on per-token log-probabilities: L = L_CE + alpha * L_UL.

Pure torch (no TRL), so the GPU benchmark can run it with torch + transformers alone.

Every sequence of a batch has a `loss_type`: 0 promotes it (cross-entropy, Eq. 3), 1 suppresses
it (unlikelihood -log(max(1 - p(s_t | s_<t), floor)), Eq. 4 with the paper code's floor 1e-6, from
log(1 - p) as curate.backends.token_logprobs computes it: exact near p = 1, where the negatives
the model is surest of lie). Each term uses only its own sequences and tokens, normalized over
the whole global batch:

- 'sequence' (Eq. 3-4 and the paper's code): the mean over the term's sequences of each
  sequence's token mean, i.e. every token weighs 1 / (K_s * M) with K_s its sequence's loss
  tokens and M the term's sequences in the global batch;
- 'token': the term's token sum over its token count in the global batch.

`count_terms` counts one micro-batch; summed over every micro-batch of an optimizer step and
every rank it gives the `TermCounts` that `oxa_loss` divides by, so the micro-batch losses add up
to the global objective whatever the per-device batch size, accumulation or number of ranks.

Token layout (padded and padding-free alike): `labels` (B, T) with -100 where no loss applies,
`sequence_index` (B, T) giving each token's sequence number within the micro-batch (-1 on
padding), `loss_type` (S,) one entry per sequence. Position t predicts labels[:, t + 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

NORMALIZATIONS = ("sequence", "token")


@dataclass(frozen=True)
class TermCounts:
    """Global denominators of one optimizer step: [ce_sequences, ul_sequences, ce_tokens, ul_tokens]."""

    counts: torch.Tensor

    def denominators(self, normalization: str) -> tuple[torch.Tensor, torch.Tensor]:
        pick = (0, 1) if normalization == "sequence" else (2, 3)
        # A term absent from the global batch has a zero numerator too; clamping keeps 0 / 0 out.
        return self.counts[pick[0]].clamp(min=1), self.counts[pick[1]].clamp(min=1)


def loss_targets(labels: torch.Tensor, sequence_index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mask (B, T-1) of the positions that predict a loss token, and those tokens' sequence numbers (N,)."""
    targets = labels[:, 1:]
    mask = targets != -100
    return mask, sequence_index[:, 1:][mask]


def count_terms(labels: torch.Tensor, sequence_index: torch.Tensor, loss_type: torch.Tensor) -> torch.Tensor:
    """[ce_sequences, ul_sequences, ce_tokens, ul_tokens] of one micro-batch (float64, on labels' device).

    A sequence counts only when it has at least one loss token (a fully masked one adds nothing).
    """
    _, token_sequence = loss_targets(labels, sequence_index)
    tokens = torch.bincount(token_sequence, minlength=loss_type.numel()).double()
    negative = loss_type.to(tokens.device) == 1
    present = (tokens > 0).double()
    return torch.stack(
        [present[~negative].sum(), present[negative].sum(), tokens[~negative].sum(), tokens[negative].sum()]
    )


@dataclass
class OXALossParts:
    """The objective of one micro-batch and the sums its metrics are made of (all detached but `loss`)."""

    loss: torch.Tensor  # ce + alpha * ul, this micro-batch's share of the global objective
    ce: torch.Tensor  # share of L_CE
    ul: torch.Tensor  # share of L_UL (unweighted)
    positive_tokens: torch.Tensor
    negative_tokens: torch.Tensor
    negative_prob_sum: torch.Tensor  # sum of p(token) over negative tokens
    positive_entropy_sum: torch.Tensor
    negative_entropy_sum: torch.Tensor


def oxa_loss(
    logp: torch.Tensor,
    log_complement: torch.Tensor,
    token_sequence: torch.Tensor,
    loss_type: torch.Tensor,
    counts: TermCounts,
    alpha: float,
    normalization: str = "sequence",
    floor: float = 1e-6,
    entropy: torch.Tensor | None = None,
) -> OXALossParts:
    """This micro-batch's share of L_CE + alpha * L_UL from its loss tokens' log p and log(1 - p) (N,).

    token_sequence (N,): each token's sequence number; loss_type (S,): 0 or 1 per sequence;
    counts: the global `TermCounts` of the step; floor: the smallest 1 - p in the UL term (a
    token the model is surer of costs -log(floor) and gets no gradient); entropy (N,),
    optional, feeds the metrics.
    """
    if normalization not in NORMALIZATIONS:
        raise ValueError(f"normalization must be one of {NORMALIZATIONS}, got {normalization!r}")
    if not 0 < floor < 1:
        raise ValueError(f"floor must lie in (0, 1), got {floor}")
    negative = loss_type.to(logp.device)[token_sequence] == 1
    ce_den, ul_den = counts.denominators(normalization)
    if normalization == "sequence":
        tokens_per_sequence = torch.bincount(token_sequence, minlength=loss_type.numel())
        weight = 1.0 / tokens_per_sequence[token_sequence].to(logp.dtype)
    else:
        weight = torch.ones_like(logp)
    ce_terms = torch.where(negative, 0.0, -logp * weight)
    ul_terms = torch.where(negative, -log_complement.clamp(min=math.log(floor)) * weight, 0.0)
    ce = ce_terms.sum() / ce_den.to(logp.dtype)
    ul = ul_terms.sum() / ul_den.to(logp.dtype)
    detached = logp.detach()
    zero = detached.new_zeros(())
    return OXALossParts(
        loss=ce + alpha * ul,
        ce=ce.detach(),
        ul=ul.detach(),
        positive_tokens=(~negative).sum(),
        negative_tokens=negative.sum(),
        negative_prob_sum=detached.exp()[negative].sum(),
        positive_entropy_sum=zero if entropy is None else entropy[~negative].sum(),
        negative_entropy_sum=zero if entropy is None else entropy[negative].sum(),
    )
