"""`oxa train grpo`: RLVR with TRL's GRPOTrainer and a math-verify accuracy reward.

The entry points are imported on first use, so the reward needs no TRL.

Guide: docs/grpo.md.
"""

from curate.lazy import lazy_exports

_EXPORTS = {
    "OxaGRPOConfig": "train.grpo.grpo",
    "OxaGRPOTrainer": "train.grpo.grpo",
    "GRPORun": "train.grpo.grpo",
    "run_grpo": "train.grpo.grpo",
    "MathVerifyReward": "train.grpo.reward",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
