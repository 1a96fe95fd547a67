"""verl's custom reward function: 1.0 where `oxa verify` would judge the completion correct,
else 0.0.

    custom_reward_function.path=$(python -c "import train.grpo.verl_reward as m; print(m.__file__)")
    custom_reward_function.name=compute_score

verl loads this file by its path as a module of its own (verl/trainer/ppo/reward.py,
get_custom_reward_fn: spec_from_file_location) and its reward managers call
`compute_score(data_source=..., solution_str=..., ground_truth=..., extra_info=...)`
(verl/workers/reward_manager/naive.py; the prime manager passes the same four
positionally), with `custom_reward_function.reward_kwargs` added as keyword arguments.
Those may set any VerifierSettings field (`+custom_reward_function.reward_kwargs.require_think=false`);
other keywords are ignored. oxa must be installed where verl runs.

The verdict is oxa verify's, under its default settings: train/eval/judge.py's
AnswerJudge extracts the answer as verify does (the last \\boxed{} after `</think>`) and
judges each (gold, answer) pair with curate/verify/mathcheck.py in a DeadlinePool.
math-verify's own timeouts use SIGALRM, which works only in a process's main thread, and
verl may call from a thread of its own; the pool's worker processes run math-verify in
their main thread, and its outside deadline bounds an answer that hangs (reward 0.0, as
`timeout`). Each process starts one pool, with one worker, at its first call and keeps it;
calls from several threads take turns.

The module imports only the standard library when verl loads it; oxa comes with the
first call.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import fields

_lock = threading.Lock()
_judges: dict = {}  # (pid, VerifierSettings) -> AnswerJudge: a forked process starts its own


def compute_score(data_source, solution_str, ground_truth, extra_info=None, **kwargs) -> float:
    """The reward of one completion, as verl calls it: 1.0 (correct) or 0.0. `data_source`
    and `extra_info` do not change the verdict: every row is judged as math."""
    return 1.0 if verdict(solution_str, ground_truth, **kwargs) == "correct" else 0.0


def verdict(solution_str: str | None, ground_truth, **settings) -> str:
    """oxa verify's verdict (correct, incorrect, no_answer, bad_gold, timeout, error) of a
    completion against its gold answer, or a list of the gold's accepted forms."""
    from curate.verify import VerifierSettings
    from train.eval.judge import AnswerJudge

    known = {f.name for f in fields(VerifierSettings)}
    chosen = VerifierSettings(**{name: value for name, value in settings.items() if name in known})
    if ground_truth is None:
        forms: tuple[str, ...] = ()
    elif isinstance(ground_truth, str):
        forms = (ground_truth,)
    elif isinstance(ground_truth, Iterable):  # a list, or the numpy array verl may hold it as
        forms = tuple(str(form) for form in ground_truth)
    else:
        forms = (str(ground_truth),)
    with _lock:
        key = (os.getpid(), chosen)
        if key not in _judges:
            _judges[key] = AnswerJudge(chosen, workers=1)
        [(_, judged, _)] = _judges[key].judge([forms], [solution_str])
    return judged
