"""The settings of `oxa decontaminate`, apart from the stage so that the command line
reads their defaults without importing it."""

from __future__ import annotations

from dataclasses import dataclass, field

from curate.benchmarks.names import BUILTIN
from curate.workspace.errors import OxaError


@dataclass
class DecontaminateConfig:
    """What to check the pool against, and how. Every field is also an `oxa decontaminate` option."""

    against: list[str] = field(default_factory=lambda: list(BUILTIN))  # built-in names or files/folders
    ngram: int = 8  # tokens per n-gram (open-r1's decontaminate.py: 8 words; lm-eval: 13)
    min_coverage: float = 0.8  # share of a benchmark problem's tokens a match must cover
    responses: bool = False  # also check every response (a benchmark problem quoted in a solution)
    mmlu_subjects: str = "stem"  # an MMLU file's subjects, as `oxa eval --mmlu-subjects`

    def check(self) -> None:
        if not self.against:
            raise OxaError(f"name at least one benchmark: --against {','.join(BUILTIN)} or a file")
        if self.ngram < 2:
            raise OxaError(f"--ngram must be at least 2 tokens, got {self.ngram}; the default is 8")
        if not 0.0 < self.min_coverage <= 1.0:
            raise OxaError(f"--min-coverage is a share in (0, 1], got {self.min_coverage}; the default is 0.8")
