"""The GRPO reward: oxa verify's extraction and judging, per completion, with a deadline
that a pathological answer cannot outlast."""

import time

import pytest

from curate.verify import VerifierSettings
from train.grpo.reward import VERDICTS, MathVerifyReward

# math-verify's own (signal) timeouts off: only the pool's outside deadline can stop a hang
DEADLINE_S = 3.0
SETTINGS = VerifierSettings(
    deadline_s=DEADLINE_S, parse_timeout_s=0, verify_timeout_s=0, max_answer_chars=100, require_think=False
)


def assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


@pytest.fixture(scope="module")
def reward():
    with MathVerifyReward(SETTINGS, workers=2) as reward:
        yield reward


def test_rewards_follow_oxa_verify_rules(reward):
    metrics: dict[str, float] = {}
    completions = [
        assistant("<think>2+2</think> The answer is \\boxed{4}."),  # correct
        assistant("<think>half</think> \\boxed{0.5}"),  # correct by math-verify, not by string
        assistant("<think>2+2</think> \\boxed{5}"),  # wrong
        assistant("<think>no box</think> it is four"),  # no answer
        assistant("<think>\\boxed{4}</think> so I am not sure"),  # a box before </think> only: no answer
        assistant("<think>x</think> \\boxed{4} then \\boxed{7}"),  # the last box counts
        assistant("<think>x</think> \\boxed{" + "1+" * 60 + "1}"),  # longer than max_answer_chars
        "<think>plain text</think> \\boxed{4}",  # a non-conversational completion
    ]
    golds = ["4", "\\frac{1}{2}", "4", "4", "4", "4", "4", "4"]
    rewards = reward(
        prompts=[None] * len(golds),
        completions=completions,
        gold_answer=golds,
        gold_alternatives=[[]] * len(golds),
        log_metric=metrics.__setitem__,
    )
    assert rewards == [1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0]
    assert metrics == {
        "verify/correct": 3 / 8,
        "verify/incorrect": 2 / 8,
        "verify/no_answer": 2 / 8,
        "verify/timeout": 0.0,
        "verify/error": 1 / 8,
        "verify/bad_gold": 0.0,
    }


def test_gold_alternatives_and_bad_gold(reward):
    verdicts = reward.verdicts(
        [assistant("\\boxed{1.5}"), assistant("\\boxed{3/2}"), assistant("\\boxed{2}"), assistant("\\boxed{1}")],
        [("\\frac{3}{2}",), ("1.5", "\\frac{3}{2}"), ("7", "2"), ("  ",)],
    )
    assert verdicts == ["correct", "correct", "correct", "bad_gold"]


def test_pathological_answer_gets_zero_within_the_deadline(reward):
    reward.verdicts([assistant("\\boxed{1}")], [("1",)])  # workers started and warm
    before = dict(reward.counts)
    start = time.monotonic()
    rewards = reward(
        prompts=[None, None],
        completions=[assistant("<think>x</think> \\boxed{9^{9^{9^{9}}}}"), assistant("\\boxed{5}")],
        gold_answer=["1", "5"],
    )
    elapsed = time.monotonic() - start
    assert rewards == [0.0, 1.0]
    assert elapsed < DEADLINE_S + 5  # one deadline and a little, not a hang
    assert reward.counts["timeout"] == before["timeout"] + 1


def test_counts_cover_every_verdict():
    reward = MathVerifyReward(SETTINGS, workers=1)
    try:
        assert reward([None], [assistant("\\boxed{3}")], gold_answer=["3"]) == [1.0]
        assert set(reward.counts) == set(VERDICTS)
        assert reward.counts["correct"] == 1 and sum(reward.counts.values()) == 1
        assert reward.__name__ == "accuracy"
    finally:
        reward.close()
