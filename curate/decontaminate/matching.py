"""Is this candidate a benchmark problem? The exact check of one pair that shares n-grams.

Coverage: the share of the benchmark problem's tokens that lie inside an n-gram of
masked tokens (numbers read as `#`) that the candidate also holds. A copy covers every
token, whatever surrounds it (an instruction before, a second problem after); a word
changed leaves only that word uncovered; reordered clauses stay covered clause by
clause. Boilerplate is a short run ("find the remainder when # is divided by #", "where
m and n are relatively prime positive integers. find m + n"): the rest of the problem,
its mathematical content, is not covered, so a pair below `min_coverage` is no match.

Numbers and expressions: a covered pair is a copy only if the benchmark problem's
numbers (as a multiset) and each of its expressions (a maximal run of tokens that are
not words: `x ^ # + # x`, `f ( x )`) appear in the candidate with the benchmark's own
numbers, and each number that lies in a covered stretch stands in its own place: inside
an n-gram the candidate holds with the numbers as they are. The same numbers in other
roles ("it was 11 degrees, fell by 5, rose by 2" against "it was 5 degrees, fell by 2,
rose by 11") are another problem. Otherwise it is the benchmark problem with other
numbers or expressions: a template match, reported under its own method and never
called contaminated.

Methods: 'exact' (the same tokens after normalization: formatting drift only),
'contained' (the benchmark problem's tokens, in order, inside a longer text), 'near'
(light edits: a word changed, a clause moved), 'template'.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from curate.decontaminate.ngrams import MASK

# Part of every run's fingerprint: raise it when a rule here or in ngrams.py changes what
# matches, so that a rerun checks everything again instead of keeping older findings.
RULES_VERSION = 3  # 3: a covered number must stand in its own place
METHODS = ("exact", "contained", "near", "template")
CONTAMINATED = ("exact", "contained", "near")  # what selection drops by default
_NEUTRAL = frozenset(",.;:!?'\"")  # punctuation between words, not an expression
_EVIDENCE_CHARS = 200


@dataclass(frozen=True)
class Match:
    method: str
    score: float  # coverage of the benchmark problem's tokens, 0-1
    evidence: str


def _is_word(token: str) -> bool:
    return token.isalpha() and (len(token) >= 2 or token in ("a", "i"))


def _masked(tokens: list[str]) -> list[str]:
    return [MASK if t.isdigit() else t for t in tokens]


def expressions(tokens: list[str]) -> list[list[str]]:
    """The maximal runs of tokens that are neither words nor punctuation between words."""
    runs, run = [], []
    for token in [*tokens, "."]:
        if _is_word(token) or token in _NEUTRAL:
            if run:
                runs.append(run)
            run = []
        else:
            run.append(token)
    return runs


def _contains(haystack: list[str], needle: list[str]) -> bool:
    """Whether `needle` is a contiguous run of `haystack` (tokens never hold spaces)."""
    return f" {' '.join(needle)} " in f" {' '.join(haystack)} "


def coverage(bench: list[str], candidate: list[str], n: int, mask: bool = True) -> tuple[float, list[bool]]:
    """The share of the benchmark's masked tokens inside an n-gram the candidate holds,
    and which tokens those are (n is the benchmark problem's own: at most its length).
    With mask=False the n-grams keep their numbers."""
    b, c = (_masked(bench), _masked(candidate)) if mask else (bench, candidate)
    size = min(n, len(b))
    if size == 0:
        return 0.0, []
    held = {tuple(c[i : i + size]) for i in range(len(c) - size + 1)}
    covered = [False] * len(b)
    for i in range(len(b) - size + 1):
        if tuple(b[i : i + size]) in held:
            covered[i : i + size] = [True] * size
    return sum(covered) / len(b), covered


def classify(bench: list[str], candidate: list[str], n: int, min_coverage: float) -> Match | None:
    """The match of a candidate's tokens with a benchmark problem's (both unmasked), or None."""
    score, covered = coverage(bench, candidate, n)
    if score < min_coverage:
        return None
    missing_numbers = Counter(t for t in bench if t.isdigit()) - Counter(t for t in candidate if t.isdigit())
    missing_expressions = [e for e in expressions(bench) if not _contains(candidate, e)]
    misplaced = [] if missing_numbers else _misplaced_numbers(bench, candidate, n, covered)
    if missing_numbers or missing_expressions or misplaced:
        parts = []
        if missing_numbers:
            parts.append("numbers not in the candidate: " + ", ".join(sorted(missing_numbers.elements())))
        if misplaced:
            parts.append("numbers in other places: " + ", ".join(misplaced))
        if missing_expressions:
            parts.append("expressions not in it: " + "; ".join(f"`{' '.join(e)}`" for e in missing_expressions))
        return Match("template", score, _clip("; ".join(parts)))
    if candidate == bench:
        return Match("exact", 1.0, "the same text after normalization")
    if _contains(candidate, bench):
        return Match(
            "contained", 1.0, f"the whole problem ({len(bench)} tokens) inside a text of {len(candidate)} tokens"
        )
    return Match("near", score, _clip("longest shared run: " + _longest_run(bench, covered)))


def _misplaced_numbers(bench: list[str], candidate: list[str], n: int, covered: list[bool]) -> list[str]:
    """The benchmark's numbers that lie in a covered stretch but in no n-gram the candidate
    holds with its numbers as they are: the candidate has them, in other roles."""
    _, in_place = coverage(bench, candidate, n, mask=False)
    return [token for token, masked, kept in zip(bench, covered, in_place) if token.isdigit() and masked and not kept]


def _longest_run(tokens: list[str], covered: list[bool]) -> str:
    best, start = (0, 0), None
    for i, flag in enumerate([*covered, False]):
        if flag and start is None:
            start = i
        elif not flag and start is not None:
            best = max(best, (i - start, start))
            start = None
    length, first = best
    return " ".join(tokens[first : first + length])


def _clip(text: str) -> str:
    return text if len(text) <= _EVIDENCE_CHARS else text[: _EVIDENCE_CHARS - 3] + "..."
