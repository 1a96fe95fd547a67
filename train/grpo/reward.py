"""The GRPO reward: math-verify accuracy, judged exactly as `oxa verify` judges a sample.

Completions are judged by train/eval/judge.py's AnswerJudge, as `oxa eval` judges its
samples: the answer extracted by curate/text/extract.py (the last `\\boxed{}` after the last
`</think>`), each distinct (gold, answer) pair judged once by curate/verify/mathcheck.py's
`judge` in a DeadlinePool, whose every item has a wall-clock deadline enforced from
outside the worker process (math-verify's signal-based timeouts do not work in threads
and cannot stop a long call into C). So a pathological answer (`\\boxed{9^{9^{9^{9}}}}`)
costs one deadline and reward 0, never a hung run.

An instance is a TRL reward function (`GRPOTrainer(reward_funcs=[reward])`): it gets the
completions and the dataset's `gold_answer` / `gold_alternatives` columns as keyword
arguments, returns 1.0 (correct) or 0.0 per completion, and logs the share of each
verdict through TRL's `log_metric` (`verify/correct`, `verify/timeout`, ...). The pool
starts with the first batch and serves the whole run; `close()` (or leaving a `with`
block) stops it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

from curate.verify import VerifierSettings
from train.eval.judge import AnswerJudge

# Every verdict a completion can get; each is logged as a metric, so the set is fixed.
VERDICTS = ("correct", "incorrect", "no_answer", "timeout", "error", "bad_gold")


def completion_text(completion: str | Sequence[dict]) -> str:
    """The text of a completion: a string, or (conversational) its messages' contents."""
    if isinstance(completion, str):
        return completion
    return "".join(message.get("content") or "" for message in completion)


class MathVerifyReward:
    """Accuracy reward (1.0 correct, 0.0 otherwise) for TRL's GRPOTrainer."""

    def __init__(self, settings: VerifierSettings | None = None, workers: int = 0) -> None:
        self.__name__ = "accuracy"  # TRL names the reward's metrics after it: rewards/accuracy/mean
        self.settings = settings or VerifierSettings()  # as OxaGRPOConfig.require_think: as oxa verify
        self.counts: Counter[str] = Counter({verdict: 0 for verdict in VERDICTS})
        self._judge = AnswerJudge(self.settings, workers)  # its pool starts with the first completions

    def __enter__(self) -> MathVerifyReward:
        return self

    def __exit__(self, *exc: object) -> None:
        self._judge.__exit__(*exc)  # kills the workers when leaving on an exception

    def close(self) -> None:
        self._judge.__exit__(None, None, None)

    def verdicts(self, completions: Sequence, gold_forms: Sequence[tuple[str, ...]]) -> list[str]:
        """The verdict of each completion against its gold forms (gold first, then alternatives)."""
        judged = self._judge.judge(list(gold_forms), [completion_text(c) for c in completions])
        return [verdict for _, verdict, _ in judged]

    def __call__(
        self,
        prompts: list,
        completions: list,
        gold_answer: list[str],
        gold_alternatives: list[list[str] | None] | None = None,
        log_metric: Callable[[str, float], None] | None = None,
        **kwargs: object,
    ) -> list[float]:
        alternatives = gold_alternatives or [None] * len(gold_answer)
        forms = [(gold, *(alt or ())) for gold, alt in zip(gold_answer, alternatives, strict=True)]
        verdicts = self.verdicts(completions, forms)
        batch = Counter(verdicts)
        self.counts.update(batch)
        if log_metric is not None and verdicts:
            for verdict in VERDICTS:
                log_metric(f"verify/{verdict}", batch[verdict] / len(verdicts))
        return [1.0 if verdict == "correct" else 0.0 for verdict in verdicts]
