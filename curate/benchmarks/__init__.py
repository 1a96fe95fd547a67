"""The evaluation sets oxa knows: the six built-in benchmarks by name, benchmark-layout
files, verl prompt parquet, published subsets, and multiple-choice files (GPQA, MMLU).
Read by `oxa eval` and GRPO (to evaluate on them) and by `oxa decontaminate` (to keep
them out of training data), so both read the same problems with the same ids.

Guide: docs/eval.md (the sets), docs/decontaminate.md (checking a pool against them).
"""

from curate.benchmarks.sets import BUILTIN, Problem, PromptSet, load_prompt_set, resolve_sets

__all__ = ["BUILTIN", "Problem", "PromptSet", "load_prompt_set", "resolve_sets"]
