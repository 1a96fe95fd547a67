"""Problem families: seeded problem generators and their worked solutions (sheet.py).

The families here take every answer form a reference set holds (integers, negatives,
decimals, fractions, radicals, tuples) in wordy problems: the curation test bed. Each
problem opens with a scene sentence and names a person or an object as well as numbers,
so two problems of one family differ in their words and not only in their digits (fuzzy
tracing needs that). The short whole-number drills a tiny model can learn are in
drills.py; `FAMILIES` holds both.
"""

from __future__ import annotations

import math
import random
from decimal import Decimal
from fractions import Fraction

from curate.synth.drills import DRILLS
from curate.synth.latex import Radical, Value, signed, tex
from curate.synth.sheet import Family, Problem, Sheet, Solution
from curate.synth.words import (
    CITIES,
    CLUBS,
    FLYERS,
    FOODS,
    FRIENDS,
    GAMES,
    ITEMS,
    LIQUIDS,
    MEASURES,
    NAMES,
    PAIRS,
    PLACES,
    RACES,
    SETTINGS,
    SHOPS,
    THINGS,
    TRAILS,
)  # fmt: skip


def _paren(value: Value) -> str:
    text = tex(value)
    return f"({text})" if text.startswith("-") else text


def _x_term(coef: int) -> str:
    return {1: "x", -1: "-x"}.get(coef, f"{coef}x")


# -- multi-step arithmetic: integers, negatives ----------------------------------------


def _draw_arithmetic(rng: random.Random) -> tuple[str, dict]:
    name = rng.choice(NAMES)
    if rng.random() < 0.5:
        item, friend = rng.choice(ITEMS), rng.choice(FRIENDS)
        a, b, c = rng.randint(5, 60), rng.randint(2, 9), rng.randint(3, 15)
        d = rng.randint(1, a + b * c - 1)
        text = (
            f"{name} has {a} {item}. {name} buys {b} packs with {c} {item} in each pack, then gives {d} {item} "
            f"to {friend}. How many {item} does {name} have now?"
        )
        return text, {"kind": "shopping", "name": name, "item": item, "a": a, "b": b, "c": c, "d": d}
    city = rng.choice(CITIES)
    start, rate, hours, rise = rng.randint(-5, 15), rng.randint(2, 6), rng.randint(3, 8), rng.randint(1, 12)
    text = (
        f"At dawn, {name} read a temperature of ${start}^\\circ$C in {city}. It fell by ${rate}^\\circ$C every "
        f"hour for {hours} hours and then rose by ${rise}^\\circ$C. What was the temperature then, in degrees Celsius?"
    )
    return text, {"kind": "temperature", "city": city, "start": start, "rate": rate, "hours": hours, "rise": rise}


def _solve_arithmetic(p: dict, sheet: Sheet) -> tuple[str, str, Value]:
    if p["kind"] == "shopping":
        name, item, a, b, c, d = p["name"], p["item"], p["a"], p["b"], p["c"], p["d"]
        packs = sheet.compute(b * c)
        sheet.note(f"the {b} packs hold ${b} \\times {c} = {packs}$ {item}")
        total = sheet.compute(a + packs)
        sheet.note(f"with the {a} {item} {name} already had, that makes ${a} + {packs} = {total}$")
        left = sheet.compute(total - d)
        sheet.note(f"giving away {d} leaves ${total} - {d} = {left}$")
        return f"find how many {item} {name} has after buying and giving away", f"{name} has ${left}$ {item}", left
    start, rate, hours, rise = p["start"], p["rate"], p["hours"], p["rise"]
    drop = sheet.compute(rate * hours)
    sheet.note(f"over {hours} hours it fell by ${rate} \\times {hours} = {drop}$ degrees")
    low = sheet.compute(start - drop)
    sheet.note(f"it then stood at ${start} - {drop} = {low}^\\circ$C")
    final = sheet.compute(low + rise)
    sheet.note(f"rising by {rise} degrees gives ${low} + {rise} = {final}^\\circ$C")
    return f"find the temperature in {p['city']} after it fell and rose", f"it was ${final}^\\circ$C", final


# -- means: decimals ---------------------------------------------------------------------


def _draw_mean(rng: random.Random) -> tuple[str, dict]:
    name, (quantity, objects, unit) = rng.choice(NAMES), rng.choice(MEASURES)
    values = [rng.randint(10, 99) for _ in range(rng.choice((4, 5)))]
    while sum(values) % len(values) == 0:  # a mean with decimals
        values[-1] += 1
    listed = ", ".join(map(str, values[:-1])) + f" and {values[-1]}"
    text = (
        f"{name} measured the {quantity} of {len(values)} {objects}: {listed} {unit}. "
        f"What is the mean {quantity} of the {objects}, in {unit}?"
    )
    return text, {"quantity": quantity, "objects": objects, "unit": unit, "values": values}


def _solve_mean(p: dict, sheet: Sheet) -> tuple[str, str, Value]:
    values, n = p["values"], len(p["values"])
    total = sheet.compute(sum(values))
    sheet.note(f"the total is ${' + '.join(map(str, values))} = {total}$")
    mean = sheet.compute(Decimal(total) / n)
    sheet.note(f"dividing by {n} gives $\\frac{{{total}}}{{{n}}} = {mean}$")
    return f"find the mean {p['quantity']} of the {n} {p['objects']}", f"the mean is ${mean}$ {p['unit']}", mean


# -- linear equations: integers, negatives, fractions ------------------------------------


def _draw_linear(rng: random.Random) -> tuple[str, dict]:
    name = rng.choice(NAMES)
    a, c = rng.sample(range(1, 13), 2)
    b, d = rng.randint(-20, 20), rng.randint(-20, 20)
    equation = f"{_x_term(a)} {signed(b)} = {_x_term(c)} {signed(d)}"
    template = rng.randrange(3)
    if template == 0:
        text = f"{name} writes the equation ${equation}$ on the board. What value of $x$ makes it true?"
    elif template == 1:
        text = f"In a balance puzzle, {name} finds that ${equation}$ holds. Solve for $x$."
    else:

        def then(n: int) -> str:
            return f"adding {n}" if n >= 0 else f"subtracting {-n}"

        text = (
            f"{name} thinks of a number $x$. Multiplying it by {a} and then {then(b)} gives the same result "
            f"as multiplying it by {c} and then {then(d)}. Find $x$."
        )
    return text, {"a": a, "b": b, "c": c, "d": d}


def _solve_linear(p: dict, sheet: Sheet) -> tuple[str, str, Value]:
    a, b, c, d = p["a"], p["b"], p["c"], p["d"]
    k = sheet.compute(a - c)
    sheet.note(f"subtracting ${_x_term(c)}$ from both sides gives ${_x_term(k)} {signed(b)} = {d}$")
    r = sheet.compute(d - b)
    sheet.note(f"moving the constant over gives ${_x_term(k)} = {d} {signed(-b)} = {r}$")
    x = sheet.compute(Fraction(r, k))
    sheet.note(f"dividing by ${k}$ gives $x = {tex(x)}$")
    return f"solve ${_x_term(a)} {signed(b)} = {_x_term(c)} {signed(d)}$ for $x$", f"$x = {tex(x)}$", x


# -- linear systems: tuples --------------------------------------------------------------


def _draw_system(rng: random.Random) -> tuple[str, dict]:
    name, x, y = rng.choice(NAMES), rng.randint(-15, 20), rng.randint(-15, 20)
    s, d = x + y, x - y
    (more, fewer), game, place = rng.choice(PAIRS), rng.choice(GAMES), rng.choice(PLACES)
    templates = [
        f"{name} has two secret numbers $x$ and $y$. Their sum is ${s}$ and their difference $x - y$ is ${d}$. "
        "Which ordered pair $(x, y)$ is it?",
        f"{name} is looking for numbers $x$ and $y$ with $x + y = {s}$ and $x - y = {d}$. "
        "Find the ordered pair $(x, y)$.",
        f"On the {place} noticeboard, {name} finds a puzzle: two numbers $x$ and $y$ satisfy $x + y = {s}$ "
        f"and $x - y = {d}$. What is $(x, y)$?",
    ]
    if d > 0:  # wordings that say "exceeds"
        templates.append(
            f"The sum of two numbers $x$ and $y$ is ${s}$, and $x$ exceeds $y$ by ${d}$. "
            f"{name} wants the ordered pair $(x, y)$. What is it?"
        )
        templates.append(
            f"In a {game}, {name} scores $x$ points in the first round and $y$ in the second. The rounds "
            f"total ${s}$ points and the first beats the second by ${d}$. Find $(x, y)$."
        )
        if y > 0:  # and wordings that count things
            templates.append(
                f"{name} has {s} {more} and {fewer} in all, with {d} more {more} than {fewer}. Writing $x$ for the "
                f"number of {more} and $y$ for the number of {fewer}, find $(x, y)$."
            )
    return rng.choice(templates), {"s": s, "d": d}


def _solve_system(p: dict, sheet: Sheet) -> tuple[str, str, Value]:
    s, d = p["s"], p["d"]
    two_x = sheet.compute(s + d)
    sheet.note(f"adding the two equations gives $2x = {s} {signed(d)} = {two_x}$")
    x = sheet.compute(Fraction(two_x, 2))
    sheet.note(f"halving gives $x = {tex(x)}$")
    y = sheet.compute(s - x)
    sheet.note(f"substituting back, $y = {s} - {_paren(x)} = {tex(y)}$")
    return "find $x$ and $y$ from their sum and difference", f"$(x, y) = {tex((x, y))}$", (x, y)


# -- fractions ---------------------------------------------------------------------------


def _draw_fractions(rng: random.Random) -> tuple[str, dict]:
    name = rng.choice(NAMES)
    b, d = rng.randint(2, 12), rng.randint(2, 12)
    a = rng.choice([n for n in range(1, 2 * b) if math.gcd(n, b) == 1])
    c = rng.choice([n for n in range(1, 2 * d) if math.gcd(n, d) == 1])
    first, second = f"\\frac{{{a}}}{{{b}}}", f"\\frac{{{c}}}{{{d}}}"
    kind = rng.choice(("jug", "worksheet", "trail", "meal"))
    if kind == "meal":
        food = rng.choice(FOODS)
        text = (
            f"{name} eats ${first}$ of a {food} at lunch and ${second}$ of a {food} at dinner. "
            f"How much {food} does {name} eat in all?"
        )
    elif kind == "jug":
        liquid, other = rng.sample(LIQUIDS, 2)
        text = (
            f"{name} pours ${first}$ liter of {liquid} into a jug and then adds ${second}$ liter of {other}. "
            "How many liters of liquid are in the jug?"
        )
    elif kind == "worksheet":
        text = f"{name}'s worksheet asks for ${first} - {second}$ as a fraction in lowest terms. What is it?"
    else:
        text = (
            f"A {rng.choice(TRAILS)} has two parts, ${first}$ km and ${second}$ km long. {name} walks both parts. "
            f"How many kilometers does {name} walk?"
        )
    return text, {"a": a, "b": b, "c": c, "d": d, "subtract": kind == "worksheet"}


def _solve_fractions(p: dict, sheet: Sheet) -> tuple[str, str, Value]:
    a, b, c, d, subtract = p["a"], p["b"], p["c"], p["d"], p["subtract"]
    common = math.lcm(b, d)
    sheet.note(f"the least common denominator of ${b}$ and ${d}$ is ${common}$")
    n1 = sheet.compute(a * (common // b))
    n2 = sheet.compute(c * (common // d))
    sheet.note(
        f"$\\frac{{{a}}}{{{b}}} = \\frac{{{n1}}}{{{common}}}$ and $\\frac{{{c}}}{{{d}}} = \\frac{{{n2}}}{{{common}}}$"
    )
    op = "-" if subtract else "+"
    numerator = sheet.compute(n1 - n2 if subtract else n1 + n2)
    sheet.note(f"$\\frac{{{n1}}}{{{common}}} {op} \\frac{{{n2}}}{{{common}}} = \\frac{{{numerator}}}{{{common}}}$")
    result = Fraction(numerator, common)
    if result.denominator != common:
        sheet.note(f"in lowest terms this is ${tex(result)}$")
    goal = f"compute $\\frac{{{a}}}{{{b}}} {op} \\frac{{{c}}}{{{d}}}$"
    return goal, f"the result is ${tex(result)}$", result


# -- modular arithmetic: remainders -----------------------------------------------------


def _draw_modular(rng: random.Random) -> tuple[str, dict]:
    name = rng.choice(NAMES)
    a, b, c, m = rng.randint(100, 999), rng.randint(10, 99), rng.randint(10, 99), rng.randint(3, 12)
    if rng.random() < 0.5:
        item = rng.choice(ITEMS)
        text = (
            f"{name} has {a} bags with {b} {item} in each bag, plus {c} loose {item}, and packs all the {item} "
            f"into boxes of {m}. How many {item} are left over once every box is full?"
        )
    else:
        text = (
            f"In the {rng.choice(SETTINGS)}, {name} must find the remainder when ${a} \\cdot {b} + {c}$ is divided "
            f"by ${m}$. What is the remainder?"
        )
    return text, {"a": a, "b": b, "c": c, "m": m}


def _solve_modular(p: dict, sheet: Sheet) -> tuple[str, str, Value]:
    a, b, c, m = p["a"], p["b"], p["c"], p["m"]
    mod = f"\\pmod{{{m}}}"
    r1 = sheet.compute(a % m)
    sheet.note(f"${a} \\equiv {r1} {mod}$")
    r2 = sheet.compute(b % m)
    sheet.note(f"${b} \\equiv {r2} {mod}$")
    product = sheet.compute(r1 * r2)
    sheet.note(f"the product reduces to ${r1} \\cdot {r2} = {product}$")
    r3 = sheet.compute(product % m)
    sheet.note(f"reducing, ${product} \\equiv {r3} {mod}$")
    r4 = sheet.compute(c % m)
    sheet.note(f"${c} \\equiv {r4} {mod}$")
    remainder = sheet.compute((r3 + r4) % m)
    sheet.note(f"adding the remainders, ${r3} + {r4} \\equiv {remainder} {mod}$")
    return f"find the remainder of ${a} \\cdot {b} + {c}$ modulo ${m}$", f"the remainder is ${remainder}$", remainder


# -- counting: permutations and combinations ---------------------------------------------


def _draw_counting(rng: random.Random) -> tuple[str, dict]:
    name, n, k = rng.choice(NAMES), rng.randint(5, 14), rng.randint(2, 4)
    template = rng.randrange(5)
    if template == 4:
        shop = rng.choice(SHOPS)
        text = (
            f"The {shop} offers {n} flavors. {name} orders a cup with {k} different flavors, and the order of the "
            f"scoops does not matter. How many different cups can {name} order?"
        )
        return text, {"n": n, "k": k, "ordered": False, "what": f"cups of {k} of the {n} flavors"}
    if template == 3:
        race = rng.choice(RACES)
        text = (
            f"{n} athletes, {name} among them, start the {race}. In how many ways can the first {k} places be filled?"
        )
        return text, {"n": n, "k": k, "ordered": True, "what": f"orders of the first {k} of {n} finishers"}
    if template == 2:
        things = rng.choice(THINGS)
        text = f"From a shelf of {n} {things}, {name} picks {k} to take on a trip. How many different selections are possible?"
        return text, {"n": n, "k": k, "ordered": False, "what": f"selections of {k} of the {n} {things}"}
    if template == 1:
        club = rng.choice(CLUBS)
        text = (
            f"{name}'s {club} has {n} members. In how many ways can {name} choose a team of {k} members "
            "if the order does not matter?"
        )
        return text, {"n": n, "k": k, "ordered": False, "what": f"teams of {k} from the {n} members"}
    things = rng.choice(THINGS)
    text = (
        f"{name} owns {n} different {things} and wants to line up {k} of them on a shelf. "
        "How many different arrangements are possible?"
    )
    return text, {"n": n, "k": k, "ordered": True, "what": f"arrangements of {k} of the {n} {things}"}


def _solve_counting(p: dict, sheet: Sheet) -> tuple[str, str, Value]:
    n, k = p["n"], p["k"]
    sheet.note(f"there are {n} choices for the first place, {n - 1} for the next, and so on for {k} places")
    ordered = n
    for i in range(1, k):
        product = sheet.compute(ordered * (n - i))
        sheet.note(f"${ordered} \\cdot {n - i} = {product}$")
        ordered = product
    count = ordered
    if not p["ordered"]:
        orders = sheet.compute(math.factorial(k))
        sheet.note(f"each group of {k} is counted ${k}! = {orders}$ times")
        count = sheet.compute(Fraction(ordered, orders))
        sheet.note(f"dividing gives $\\frac{{{ordered}}}{{{orders}}} = {tex(count)}$ groups")
    return f"count the {p['what']}", f"there are ${tex(count)}$ of them", count


# -- distances: radicals -----------------------------------------------------------------


def _draw_distance(rng: random.Random) -> tuple[str, dict]:
    name = rng.choice(NAMES)
    x1, y1 = rng.randint(-9, 9), rng.randint(-9, 9)
    x2 = x1 + rng.choice([v for v in range(-9, 10) if v])
    y2 = y1 + rng.choice([v for v in range(-9, 10) if v])
    template = rng.randrange(4)
    if template == 3:
        start, end = rng.sample(PLACES, 2)
        text = (
            f"{name} cuts straight across a park from the {start} at $({x1}, {y1})$ to the {end} at $({x2}, {y2})$, "
            "on a town map with one-kilometer squares. How long is the walk, in kilometers?"
        )
    elif template == 0:
        text = f"{name} plots the points $A({x1}, {y1})$ and $B({x2}, {y2})$. What is the distance between $A$ and $B$?"
    elif template == 1:
        text = (
            f"On a map with one-unit squares, {name}'s house is at $({x1}, {y1})$ and the {rng.choice(PLACES)} is at "
            f"$({x2}, {y2})$. How long is the straight path between them?"
        )
    else:
        text = (
            f"A {rng.choice(FLYERS)} flies in a straight line from $({x1}, {y1})$ to $({x2}, {y2})$ on a grid of "
            f"one-meter squares, as {name} records. How far does it fly, in meters?"
        )
    return text, {"x1": x1, "y1": y1, "x2": x2, "y2": y2}


def _solve_distance(p: dict, sheet: Sheet) -> tuple[str, str, Value]:
    x1, y1, x2, y2 = p["x1"], p["y1"], p["x2"], p["y2"]
    dx = sheet.compute(x2 - x1)
    sheet.note(f"the horizontal change is ${x2} - {_paren(x1)} = {dx}$")
    dy = sheet.compute(y2 - y1)
    sheet.note(f"the vertical change is ${y2} - {_paren(y1)} = {dy}$")
    square = sheet.compute(dx * dx + dy * dy)
    sheet.note(f"${_paren(dx)}^2 + {_paren(dy)}^2 = {dx * dx} + {dy * dy} = {square}$")
    distance = Radical.of_square_root(square)
    simplified = "" if tex(distance) == f"\\sqrt{{{square}}}" else f" = {tex(distance)}"
    sheet.note(f"taking the square root, the distance is $\\sqrt{{{square}}}{simplified}$")
    return "find the distance between the two points", f"the distance is ${tex(distance)}$", distance


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family("arithmetic", "Algebra", _draw_arithmetic, _solve_arithmetic),
        Family("mean", "Algebra", _draw_mean, _solve_mean),
        Family("linear", "Algebra", _draw_linear, _solve_linear),
        Family("system", "Algebra", _draw_system, _solve_system),
        Family("fractions", "Number Theory", _draw_fractions, _solve_fractions),
        Family("modular", "Number Theory", _draw_modular, _solve_modular),
        Family("counting", "Combinatorics", _draw_counting, _solve_counting),
        Family("distance", "Geometry", _draw_distance, _solve_distance),
    )
} | DRILLS
RICH = tuple(name for name in FAMILIES if name not in DRILLS)  # every answer form, wordy: the curation test bed

__all__ = ["FAMILIES", "RICH", "Family", "Problem", "Sheet", "Solution"]
