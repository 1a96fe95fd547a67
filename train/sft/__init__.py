"""`oxa train sft` and `oxa model prepare`: TRL's SFTTrainer with the unlikelihood term
(OXA_Full), its config, loss, k-negatives sampler, subset data and runs.

The entry points are imported on first use, so `train.sft.loss` needs torch alone.

Guides: docs/train.md, docs/oxa-trainer.md.
"""

from curate.lazy import lazy_exports

_EXPORTS = {
    "OXAConfig": "train.sft.config",
    "OXATrainer": "train.sft.trainer",
    "SftRunConfig": "train.sft.run",
    "run_sft": "train.sft.run",
    "PrepareConfig": "train.sft.model_prepare",
    "prepare_model": "train.sft.model_prepare",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
