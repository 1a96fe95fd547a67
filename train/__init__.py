"""oxa trainer: TRL SFT with the unlikelihood term (OXA_Full), GRPO and evaluation.

Model-backed code lives here and needs the `train` extra (torch, transformers, trl):
    pip install torch==2.13.0 && pip install 'oxa[train]'

Guides: docs/train.md, docs/grpo.md, docs/eval.md.
"""
