"""Answer values and their LaTeX: integers, fractions, decimals, radicals and tuples.

Values are exact Python objects (int, Fraction, Decimal, Radical, tuple); `tex` writes
the canonical form a reference source would give, and `equivalent_forms` the other ways
a teacher writes the same value (0.75 for \\frac{3}{4}, \\sqrt{20} for 2\\sqrt{5}), which
string comparison misses and math-verify accepts.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction


@dataclass(frozen=True)
class Radical:
    """coef * sqrt(radicand), radicand square-free."""

    coef: int
    radicand: int

    @classmethod
    def of_square_root(cls, n: int) -> Radical | int:
        """sqrt(n) simplified; an int when n is a perfect square."""
        coef, radicand = 1, n
        for factor in range(2, math.isqrt(n) + 1):
            while radicand % (factor * factor) == 0:
                radicand //= factor * factor
                coef *= factor
        return coef if radicand == 1 else cls(coef, radicand)


Value = int | Fraction | Decimal | Radical | tuple


def tex(value: Value) -> str:
    if isinstance(value, tuple):
        return "(" + ", ".join(tex(v) for v in value) + ")"
    if isinstance(value, Radical):
        return (f"{value.coef}" if value.coef != 1 else "") + f"\\sqrt{{{value.radicand}}}"
    if isinstance(value, Fraction):
        if value.denominator == 1:
            return str(value.numerator)
        sign = "-" if value < 0 else ""
        return f"{sign}\\frac{{{abs(value.numerator)}}}{{{value.denominator}}}"
    return str(value)  # int, Decimal


def signed(n: int) -> str:
    """'+ 5' or '- 5', for writing a term after another."""
    return f"- {-n}" if n < 0 else f"+ {n}"


def _terminates(q: int) -> bool:
    while q % 2 == 0:
        q //= 2
    while q % 5 == 0:
        q //= 5
    return q == 1


def equivalent_forms(value: Value) -> list[str]:
    """Other LaTeX forms of `value`, each different from tex(value) as a string."""
    if isinstance(value, tuple):
        return ["\\left(" + ", ".join(tex(v) for v in value) + "\\right)"]
    if isinstance(value, Radical):
        if value.coef > 1:
            return [f"\\sqrt{{{value.coef**2 * value.radicand}}}"]
        return [f"{value.radicand}^{{1/2}}", f"\\frac{{\\sqrt{{{4 * value.radicand}}}}}{{2}}"]
    if isinstance(value, Decimal):
        exact = Fraction(value)
        return [f"\\frac{{{exact.numerator}}}{{{exact.denominator}}}", f"{value}0"]
    if isinstance(value, Fraction) and value.denominator != 1:
        p, q = abs(value.numerator), value.denominator
        sign = "-" if value < 0 else ""
        forms = [f"{sign}\\dfrac{{{p}}}{{{q}}}", f"{sign}{p}/{q}"]
        if _terminates(q):
            forms.append(str(Decimal(value.numerator) / Decimal(q)))
        if sign:
            forms.append(f"\\frac{{-{p}}}{{{q}}}")
        return forms
    n = int(value)
    return [f"{n}.0", f"\\frac{{{2 * n}}}{{2}}"]
