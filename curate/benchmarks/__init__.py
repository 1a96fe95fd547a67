"""The evaluation sets oxa knows: the six built-in benchmarks by name, benchmark-layout
files, verl prompt parquet, published subsets, and multiple-choice files (GPQA, MMLU).
Read by `oxa eval` and GRPO (to evaluate on them) and by `oxa decontaminate` (to keep
them out of training data), so both read the same problems with the same ids. The
readers are imported on first use, so that the command line has the names without them.

Guide: docs/eval.md (the sets), docs/decontaminate.md (checking a pool against them).
"""

from curate.lazy import lazy_exports

_EXPORTS = {
    "BUILTIN": "curate.benchmarks.names",
    "Problem": "curate.benchmarks.sets",
    "PromptSet": "curate.benchmarks.sets",
    "load_prompt_set": "curate.benchmarks.sets",
    "resolve_sets": "curate.benchmarks.sets",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
