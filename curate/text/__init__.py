"""Pure functions over math text: the boxed answer of a response, LaTeX and Unicode folds,
the instruction suffixes of prompts, the characters a text may not hold.

They read no files and import no other part of oxa, so ingest, trace, verify, the model
stages and the trainer's reward all share one definition of each rule.

Guide: docs/trace-verify.md.
"""
