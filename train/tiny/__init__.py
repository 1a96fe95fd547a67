"""`oxa synth model`: the test bed's tokenizer and tiny Qwen2 models (base and instruct),
built and trained on the CPU from a synthetic world.

The entry points are imported on first use: the config needs no torch, the build does.

Guide: docs/test-bed.md.
"""

from curate.lazy import lazy_exports

_EXPORTS = {
    "TinyModelConfig": "train.tiny.config",
    "build_tiny_models": "train.tiny.models",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
