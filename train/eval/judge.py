"""Verdicts for generated completions, exactly as `oxa verify` gives them to samples.

The answer is extracted by curate/text/extract.py (the last box after `</think>`); each
distinct (gold, answer) pair is judged once by curate.verify.mathcheck.judge in a DeadlinePool,
whose wall-clock deadline is enforced from outside the worker, so a pathological answer
costs one deadline, never a hang. Precedence as in verify: bad_gold (no gold form, an
empty one, or one holding a control character), no_answer, an answer too long to parse (error), then math-verify's verdict (correct,
incorrect, bad_gold, timeout, error).
"""

from __future__ import annotations

import os

from curate.text.characters import codepoint, control_character
from curate.text.extract import extract_answers
from curate.verify.deadline_pool import DeadlinePool, ItemFailure
from curate.verify.mathcheck import PAIR, VerifierSettings, judge, start_worker

Verdict = tuple[str | None, str, str | None]  # (pred_answer, verdict, reason)


class AnswerJudge:
    """Judges completions against gold answers; workers start on first use."""

    def __init__(self, settings: VerifierSettings, workers: int = 0) -> None:
        self.settings = settings
        self.workers = workers or os.cpu_count() or 1
        self._pool: DeadlinePool | None = None

    def __enter__(self) -> AnswerJudge:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.close(kill=exc[0] is not None)
            self._pool = None

    def judge(self, golds: list[tuple[str, ...]], completions: list[str]) -> list[Verdict]:
        """One verdict per completion; golds[i] holds the accepted forms for completion i."""
        answers, reasons = extract_answers(completions, self.settings.require_think)
        out: list[Verdict | None] = [None] * len(completions)
        pairs: dict[tuple[tuple[str, ...], str], list[int]] = {}
        for i, (forms, answer) in enumerate(zip(golds, answers)):
            if not any(form.strip() for form in forms):
                out[i] = (answer, "bad_gold", "the gold answer is empty")
            elif (control := control_character(*forms)) is not None:  # damaged data, as verify rules
                out[i] = (answer, "bad_gold", f"the gold answer holds control character {codepoint(control)}")
            elif answer is None:
                out[i] = (None, "no_answer", reasons[i])
            elif len(answer) > self.settings.max_answer_chars:
                out[i] = (
                    answer[: self.settings.max_answer_chars],
                    "error",
                    f"answer_too_long: {len(answer):,} characters",
                )
            else:
                pairs.setdefault((forms, answer), []).append(i)
        keys = sorted(pairs)
        results = self._judge_pairs([(PAIR, forms, answer) for forms, answer in keys]) if keys else []
        for key, result in zip(keys, results):
            if isinstance(result, ItemFailure):
                result = ("timeout" if result.kind == "timeout" else "error", result.detail, None)
            verdict, reason, _ = result
            for i in pairs[key]:
                out[i] = (key[1], verdict, reason)
        return out  # type: ignore[return-value]

    def _judge_pairs(self, items: list[tuple]) -> list:
        if self._pool is None:
            self._pool = DeadlinePool(
                judge,
                workers=min(self.workers, len(items)),
                deadline_s=self.settings.deadline_s,
                initializer=start_worker,
                initargs=(self.settings,),
                preload=["curate.verify.mathcheck_warm"],
            )
        return self._pool.map(items)
