"""`OXAConfig`: TRL's `SFTConfig` plus the OXA_Full settings (paper Eq. 5, A.1, A.3).

Every SFTConfig/TrainingArguments field works as usual; the fields below add the unlikelihood
term. Dataset contract (see train/sft/trainer.py): TRL prompt/completion (or messages) rows with
an integer `loss_type` column, 0 = promote (cross-entropy), 1 = suppress (unlikelihood).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from trl import SFTConfig

from curate.backends.token_logprobs import DEFAULT_CHUNK_SIZE
from curate.workspace import OxaError
from train.sft.loss import NORMALIZATIONS


@dataclass
class OXAConfig(SFTConfig):
    """SFTConfig with the unlikelihood weight, its normalization, the batch composition and the lm-head chunking."""

    ul_alpha: float = field(
        default=1e-4,
        metadata={
            "help": "Weight alpha of the unlikelihood term: L = L_CE + alpha * L_UL (Eq. 5). The paper uses 1e-4; "
            "0 trains OXA_MLE (negatives, if any, only feed the metrics)."
        },
    )
    ul_normalization: str = field(
        default="sequence",
        metadata={
            "help": "'sequence': each term is the mean over its own sequences of each sequence's token mean "
            "(Eq. 3-4, the paper's code); 'token': each term is its token sum over its token count. Either way over "
            "the whole global batch (all ranks and accumulation steps).",
            "choices": list(NORMALIZATIONS),
        },
    )
    ul_global: int | None = field(
        default=16,
        metadata={
            "help": "Exactly this many negatives (loss_type 1) in every global batch (per-device batch x gradient "
            "accumulation x ranks), like the paper code's ul_global (16 of 128). None or 0: plain random sampling. "
            "Ignored when the dataset has no negatives."
        },
    )
    ul_floor: float = field(
        default=1e-6,
        metadata={
            "help": "Smallest 1 - p in the unlikelihood term -log(max(1 - p, floor)), as in the paper's code: a "
            "negative token the model is surer of costs -log(floor) (13.8 nats at 1e-6) and gets no gradient."
        },
    )
    loss_chunk_size: int = field(
        default=DEFAULT_CHUNK_SIZE,
        metadata={
            "help": "Token rows per lm-head chunk when computing log-probs: extra memory is chunk x vocabulary "
            "fp32 numbers, never the full logits."
        },
    )

    def __post_init__(self):
        super().__post_init__()
        if self.ul_normalization not in NORMALIZATIONS:
            raise OxaError(f"ul_normalization must be one of {NORMALIZATIONS}, got {self.ul_normalization!r}")
        if self.ul_alpha < 0:
            raise OxaError(f"ul_alpha must be >= 0, got {self.ul_alpha}; use 0 for OXA_MLE")
        if self.ul_global is not None and self.ul_global < 0:
            raise OxaError(f"ul_global must be >= 0 or None, got {self.ul_global}")
        if not 0 < self.ul_floor < 1:
            raise OxaError(f"ul_floor must lie in (0, 1), got {self.ul_floor}; the paper's code uses 1e-6")
        if self.loss_chunk_size < 1:
            raise OxaError(f"loss_chunk_size must be positive, got {self.loss_chunk_size}")
        if self.packing:
            raise OxaError(
                "packing=True mixes promoted and suppressed sequences in one row and drops loss_type; "
                "use padding_free=True instead"
            )
