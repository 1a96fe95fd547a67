"""`oxa score` and `oxa generate`: the two model-backed stages, PPL columns per scoring
model and the model's own samples in the pool.

They share sharding, model fingerprints and prompts (here) and the inference backends
(`curate.backends`, which the trainer uses too); torch is imported only inside a run.

Guide: docs/score-generate.md.
"""

from curate.score.generate import GenerateConfig, run_generate
from curate.score.score import ScoreConfig, run_score

__all__ = ["GenerateConfig", "ScoreConfig", "run_generate", "run_score"]
