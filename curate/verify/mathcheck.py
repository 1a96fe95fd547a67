"""Judging one (gold, answer) pair with math-verify: the work a verification worker does.

`judge` runs inside a DeadlinePool worker (one process, its main thread), so
math-verify's own signal-based timeouts work there as a first line of defence; the
pool's outside deadline is what guarantees progress. Gold answers are parsed once per
worker and kept. The gold is passed first to `verify` (it is not symmetric).
math-verify (and sympy under it, a second or more to import) is imported where pairs are
judged, so that importing this module for VerifierSettings costs nothing.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cache
from importlib.metadata import version

from curate import __version__
from curate.text.extract import as_math_input, braces_balanced
from curate.workspace.parts import fingerprint

EXTRACTIONS = ("box", "lenient")
# Each item is (kind, gold forms, payload): kind 'gold' checks that the gold parses;
# kind 'pair' judges the payload (an extracted answer, or in lenient mode the answer
# region) against the gold. The result is (verdict, reason, pred_answer).
GOLD, PAIR = "gold", "pair"
GOLD_OK = "ok"
GIVE_UP = ("deadline_s", "parse_timeout_s", "verify_timeout_s")  # settings that only produce timeouts

_CACHE_SIZE = 4096  # parsed golds and answers kept per worker
_CACHED_ANSWER_CHARS = 200


@dataclass(frozen=True)
class VerifierSettings:
    """Everything that decides a verdict; its hash keys the verdicts and the pair cache."""

    extraction: str = "box"  # 'box': the last \boxed{} only; 'lenient': math-verify's own extraction
    require_think: bool = True  # no </think> -> no_answer (no_think), the paper's rule
    float_rounding: int = 6  # math-verify verify()
    numeric_precision: int = 15
    strict: bool = True
    parse_timeout_s: int = 5  # math-verify's own (signal) timeouts, per call; 0 turns them off
    verify_timeout_s: int = 5
    deadline_s: float = 15.0  # wall clock per pair, enforced from outside the worker
    max_answer_chars: int = 2000  # a longer extracted answer is not parsed (verdict error)

    def versions(self) -> dict[str, str]:
        return {
            "oxa": __version__,
            "math-verify": version("math-verify"),
            "latex2sympy2_extended": version("latex2sympy2_extended"),
            "sympy": version("sympy"),
        }

    def settings_hash(self) -> str:
        """The hash of what decides a verdict. The timeouts are left out: they only decide
        when to give up (verdict timeout), so `oxa verify --retry timeout --deadline 60`
        re-judges the timeouts under the same hash instead of the whole pool."""
        decisive = {k: v for k, v in asdict(self).items() if k not in GIVE_UP}
        return fingerprint({**decisive, "versions": self.versions()})

    @property
    def verifier(self) -> str:
        return f"math-verify {version('math-verify')} ({self.extraction})"


class _TimeoutLog(logging.Handler):
    """math-verify reports its own timeouts only as log warnings ('Timeout during
    parsing/comparison') and returns [] or False; this tells them from real answers."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.fired: str | None = None

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("Timeout during"):
            self.fired = record.getMessage()


_settings = VerifierSettings()
_timeouts = _TimeoutLog()
_gold_cache: OrderedDict[tuple[str, ...], list | tuple] = OrderedDict()
_answer_cache: OrderedDict[str, tuple[list, str | None]] = OrderedDict()


# Typical answers of every shape: parsing them once leaves latex2sympy's ANTLR
# prediction cache warm (measured: a cold worker's first few hundred parses are about
# twice as slow). curate.verify.mathcheck_warm does this in the workers' fork server.
WARM_UP_ANSWERS = (
    "7", "-12", "3.5", "\\frac{3}{4}", "-\\frac{5}{12}", "\\dfrac{7}{2}", "3/4", "2\\sqrt{5}", "\\sqrt{20}",
    "\\frac{\\sqrt{3}}{2}", "3+2\\sqrt{2}", "(1, 2)", "\\left(3, -4\\right)", "[0, 1)", "(-\\infty, 2]",
    "\\{1, 2, 3\\}", "4\\pi", "\\pi r^2", "\\frac{\\pi}{6}", "x^2+3x-4", "2x - 1", "(x-1)(x+2)", "e^{2}",
    "\\ln 2", "\\log_{2} 8", "\\sin \\theta", "30^\\circ", "12\\%", "1.5 \\times 10^{-3}", "\\binom{10}{3}",
    "10!", "2^{10}", "a+b", "\\infty", "x = 3", "y = 2x + 1", "\\text{(A)}",
    "\\begin{pmatrix} 1 \\\\ 2 \\end{pmatrix}", "i", "3+4i",
)  # fmt: skip


@cache
def _math_verify():
    """math-verify, imported on first use: it brings sympy (half a second at start-up),
    which commands that never judge an answer (`oxa select`, `oxa sql`) should not pay."""
    import math_verify

    return math_verify


@cache
def _extraction() -> tuple:
    """The extraction configs of box mode: LaTeX, then plain expressions."""
    return (_math_verify().LatexExtractionConfig(), _math_verify().ExprExtractionConfig())


def warm_up() -> None:
    parsed = [_math_verify().parse(as_math_input(answer), _extraction()) for answer in WARM_UP_ANSWERS]
    for gold, answer in zip(parsed, parsed[1:]):
        _math_verify().verify(gold, answer)


def start_worker(settings: VerifierSettings) -> None:
    """DeadlinePool initializer."""
    global _settings
    _settings = settings
    logger = logging.getLogger("math_verify")
    logger.addHandler(_timeouts)
    logger.propagate = False  # the warnings are turned into verdicts, not printed


def _timeout(seconds: int) -> int | None:
    return seconds if seconds > 0 else None


def parse_gold(forms: tuple[str, ...]) -> list:
    """Every accepted form of the gold, parsed and concatenated (verify accepts a match
    with any of them)."""
    parsed: list = []
    for form in forms:
        parsed += _math_verify().parse(
            as_math_input(form), _extraction(), parsing_timeout=_timeout(_settings.parse_timeout_s)
        )
    return parsed


def parse_answer(payload: str) -> list:
    if _settings.extraction == "lenient":
        return _math_verify().parse(payload, parsing_timeout=_timeout(_settings.parse_timeout_s))
    return _math_verify().parse(
        as_math_input(payload), _extraction(), parsing_timeout=_timeout(_settings.parse_timeout_s)
    )


def judge(item: tuple[str, tuple[str, ...], str | None]) -> tuple[str, str | None, str | None]:
    kind, forms, payload = item
    try:
        return _judge(kind, forms, payload)
    except MemoryError:
        return "error", "out of memory", None
    except Exception as exc:  # only its type: str() of a huge sympy object may itself hang
        return "error", f"{type(exc).__name__} in math-verify", None


def _checked_gold(forms: tuple[str, ...]) -> list | tuple[str, str, None]:
    """The parsed gold, or the bad_gold verdict saying why there is none."""
    if not all(braces_balanced(form) for form in forms):
        return "bad_gold", "the gold answer's braces do not balance", None
    gold = parse_gold(forms)
    if _timeouts.fired:
        return "bad_gold", "the gold answer's parse timed out", None
    if not gold:
        return "bad_gold", "the gold answer does not parse", None
    return gold


def _cached(cache: OrderedDict, key: object, compute: Callable[[], object]) -> object:
    if key in cache:
        cache.move_to_end(key)
        return cache[key]
    value = cache[key] = compute()
    if len(cache) > _CACHE_SIZE:
        cache.popitem(last=False)
    return value


def _judge(kind: str, forms: tuple[str, ...], payload: str | None) -> tuple[str, str | None, str | None]:
    _timeouts.fired = None
    gold = _cached(_gold_cache, forms, lambda: _checked_gold(forms))
    if isinstance(gold, tuple):
        return gold
    if kind == GOLD:
        return GOLD_OK, None, None
    # one short answer (say "2") is given to many problems: parse it once per worker
    if len(payload) <= _CACHED_ANSWER_CHARS:
        pred, parse_timeout = _cached(_answer_cache, payload, lambda: (parse_answer(payload), _timeouts.fired))
    else:
        pred, parse_timeout = parse_answer(payload), _timeouts.fired
    extracted = next((p for p in reversed(pred) if isinstance(p, str)), None)
    if parse_timeout:
        return "timeout", "math-verify's parse timed out", extracted
    if not pred:
        if _settings.extraction == "lenient":
            return "no_answer", "math-verify found no answer", None
        return "incorrect", "the answer does not parse", None
    correct = _math_verify().verify(
        gold,
        pred,
        float_rounding=_settings.float_rounding,
        numeric_precision=_settings.numeric_precision,
        strict=_settings.strict,
        timeout_seconds=_timeout(_settings.verify_timeout_s),
    )
    if _timeouts.fired:
        return "timeout", "math-verify's comparison timed out", extracted
    return ("correct" if correct else "incorrect"), None, extracted
