"""`oxa eval`: Pass@1 (mean over k samples), unbiased Pass@k, length and policy entropy on
benchmark sets; the benchmark loader and the answer judge are shared with GRPO.

The entry points are imported on first use, like the other trainer packages.

Guide: docs/eval.md.
"""

from curate.lazy import lazy_exports

_EXPORTS = {
    "EvalConfig": "train.eval.evaluate",
    "run_eval": "train.eval.evaluate",
    "EntropyConfig": "train.eval.entropy",
    "run_entropy": "train.eval.entropy",
    "pass_at_k": "train.eval.passk",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
