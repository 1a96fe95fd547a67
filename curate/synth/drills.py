"""Drills: short word problems in two or three steps of whole-number arithmetic, which a
model of a few million parameters learns on a CPU in minutes.

Each step is an `Equation` on the sheet (left op right = value, numbers below a few
hundred), so the strategy styles can rewrite it; answers are whole numbers (negative in
`weather`). The problems have no scene sentence: what varies is a name, an object and
the numbers, so templated problems differ mostly in their numbers, and the world keeps
problems whose numbers agree apart (world.py).
"""

from __future__ import annotations

import random

from curate.synth.sheet import Family, Sheet
from curate.synth.words import CITIES, FRIENDS, GAMES, ITEMS, NAMES, THINGS

FIELDS = (
    "garden", "yard", "field", "pool", "room", "playground", "patio", "court", "rug", "poster", "table", "pen",
)  # fmt: skip
UNITS = ("meters", "feet", "yards", "centimeters")


def _draw_restock(rng: random.Random) -> tuple[str, dict]:
    name, item, friend = rng.choice(NAMES), rng.choice(ITEMS), rng.choice(FRIENDS)
    a, b = rng.randint(2, 20), rng.randint(2, 12)
    c = rng.randint(1, min(a + b - 1, 15))
    text = rng.choice(
        (
            f"{name} has {a} {item}, buys {b} more and gives {c} to {friend}. How many {item} does {name} have now?",
            f"{name} starts with {a} {item}, gets {b} more, then gives {friend} {c}. How many {item} are left?",
            f"There are {a} {item} in {name}'s box. {name} adds {b} and gives {c} away. How many are in the box now?",
        )
    )
    return text, {"name": name, "item": item, "a": a, "b": b, "c": c}


def _solve_restock(p: dict, sheet: Sheet) -> tuple[str, str, int]:
    name, item = p["name"], p["item"]
    total = sheet.equation(p["a"], "+", p["b"], f"after buying, {name} has {{}} {item}")
    left = sheet.equation(total, "-", p["c"], "after giving some away, {} are left")
    return f"find how many {item} {name} has now", f"{name} has ${left}$ {item}", left


def _draw_packs(rng: random.Random) -> tuple[str, dict]:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    packs, each, had = rng.randint(2, 5), rng.randint(2, 6), rng.randint(1, 15)
    text = rng.choice(
        (
            f"{name} had {had} {item} and buys {packs} packs of {each} {item}. How many {item} does {name} have now?",
            f"{name} buys {packs} bags with {each} {item} in each and already owns {had}. How many {item} in all?",
            f"A shop sells {item} in packs of {each}. {name} buys {packs} packs and has {had} at home. How many now?",
        )
    )
    return text, {"name": name, "item": item, "packs": packs, "each": each, "had": had}


def _solve_packs(p: dict, sheet: Sheet) -> tuple[str, str, int]:
    name, item = p["name"], p["item"]
    bought = sheet.equation(p["packs"], "*", p["each"], f"the packs hold {{}} {item}")
    total = sheet.equation(bought, "+", p["had"], f"with the {item} {name} had, that is {{}}")
    return f"find how many {item} {name} has now", f"{name} has ${total}$ {item}", total


def _draw_average(rng: random.Random) -> tuple[str, dict]:
    name, game = rng.choice(NAMES), rng.choice(GAMES)
    scores = [rng.randint(1, 15) for _ in range(3)]
    while sum(scores) % 3:
        scores[-1] += 1
    x, y, z = scores
    text = rng.choice(
        (
            f"{name} scored {x}, {y} and {z} points in three rounds of a {game}. What is the mean score?",
            f"In a {game}, {name}'s three scores were {x}, {y} and {z}. What is the average score?",
            f"Three friends of {name} score {x}, {y} and {z} in a {game}. Find their mean score.",
        )
    )
    return text, {"name": name, "game": game, "scores": scores}


def _solve_average(p: dict, sheet: Sheet) -> tuple[str, str, int]:
    x, y, z = p["scores"]
    pair = sheet.equation(x, "+", y, "the first two rounds give {}")
    total = sheet.equation(pair, "+", z, "with the third round, the total is {}")
    mean = sheet.equation(total, "/", 3, "dividing by the three rounds gives {}")
    return f"find {p['name']}'s mean score", f"the mean score is ${mean}$", mean


def _draw_guess(rng: random.Random) -> tuple[str, dict]:
    name = rng.choice(NAMES)
    times, number, plus = rng.randint(2, 5), rng.randint(1, 9), rng.randint(1, 15)
    result = times * number + plus
    text = rng.choice(
        (
            f"{name} thinks of a number, multiplies it by {times} and adds {plus}. The result is {result}. What is the number?",
            f"If {name}'s number is multiplied by {times} and then {plus} is added, the result is {result}. Find the number.",
            f"{name} says: {times} times my number, plus {plus}, makes {result}. What is {name}'s number?",
        )
    )
    return text, {"name": name, "times": times, "plus": plus, "result": result}


def _solve_guess(p: dict, sheet: Sheet) -> tuple[str, str, int]:
    before = sheet.equation(p["result"], "-", p["plus"], "before adding, the result was {}")
    number = sheet.equation(before, "/", p["times"], "undoing the multiplication gives {}")
    return f"find {p['name']}'s number", f"the number is ${number}$", number


def _draw_perimeter(rng: random.Random) -> tuple[str, dict]:
    name, place, unit = rng.choice(NAMES), rng.choice(FIELDS), rng.choice(UNITS)
    length, width = rng.randint(2, 15), rng.randint(1, 12)
    text = rng.choice(
        (
            f"{name}'s {place} is a rectangle {length} {unit} long and {width} {unit} wide. What is its perimeter?",
            f"A rectangular {place} measures {length} {unit} by {width} {unit}. {name} walks once around it. How far?",
            f"{name} puts a border around a {place} that is {length} {unit} long and {width} {unit} wide. How long is the border?",
        )
    )
    return text, {"place": place, "unit": unit, "length": length, "width": width}


def _solve_perimeter(p: dict, sheet: Sheet) -> tuple[str, str, int]:
    half = sheet.equation(p["length"], "+", p["width"], "one length and one width make {}")
    perimeter = sheet.equation(2, "*", half, "going all the way around doubles it: {}")
    return f"find the perimeter of the {p['place']}", f"the perimeter is ${perimeter}$ {p['unit']}", perimeter


def _draw_weather(rng: random.Random) -> tuple[str, dict]:
    city, when = rng.choice(CITIES), rng.choice(("At dawn", "At noon", "In the evening", "On Monday", "Last night"))
    start, fall, rise = rng.randint(-8, 15), rng.randint(1, 12), rng.randint(1, 12)
    text = rng.choice(
        (
            f"{when} in {city} it was {start} degrees. It fell by {fall} degrees and then rose by {rise}. What is the temperature now?",
            f"The thermometer in {city} showed {start} degrees. It dropped {fall} degrees, then climbed {rise}. What does it show now?",
        )
    )
    return text, {"city": city, "start": start, "fall": fall, "rise": rise}


def _solve_weather(p: dict, sheet: Sheet) -> tuple[str, str, int]:
    low = sheet.equation(p["start"], "-", p["fall"], "after the fall it was {}")
    now = sheet.equation(low, "+", p["rise"], "after the rise it is {}")
    return f"find the temperature in {p['city']} now", f"it is ${now}$ degrees", now


def _draw_shelves(rng: random.Random) -> tuple[str, dict]:
    name, thing = rng.choice(NAMES), rng.choice(THINGS)
    shelves, each = rng.randint(2, 5), rng.randint(2, 6)
    removed = rng.randint(1, shelves * each - 1)
    text = rng.choice(
        (
            f"{name} has {shelves} shelves with {each} {thing} on each and takes {removed} {thing} away. How many are left?",
            f"There are {shelves} rows of {each} {thing} in {name}'s room. {name} gives away {removed}. How many {thing} remain?",
            f"{name} packs {thing} into {shelves} boxes of {each}, then sells {removed} of them. How many {thing} are still there?",
        )
    )
    return text, {"name": name, "thing": thing, "shelves": shelves, "each": each, "removed": removed}


def _solve_shelves(p: dict, sheet: Sheet) -> tuple[str, str, int]:
    thing = p["thing"]
    total = sheet.equation(p["shelves"], "*", p["each"], f"the shelves hold {{}} {thing}")
    left = sheet.equation(total, "-", p["removed"], "taking some away leaves {}")
    return f"find how many {thing} are left", f"${left}$ {thing} are left", left


DRILLS: dict[str, Family] = {
    f.name: f
    for f in (
        Family("restock", "Algebra", _draw_restock, _solve_restock, scene=False, equations=True),
        Family("packs", "Algebra", _draw_packs, _solve_packs, scene=False, equations=True),
        Family("shelves", "Algebra", _draw_shelves, _solve_shelves, scene=False, equations=True),
        Family("average", "Algebra", _draw_average, _solve_average, scene=False, equations=True),
        Family("guess", "Algebra", _draw_guess, _solve_guess, scene=False, equations=True),
        Family("perimeter", "Geometry", _draw_perimeter, _solve_perimeter, scene=False, equations=True),
        Family("weather", "Algebra", _draw_weather, _solve_weather, scene=False, equations=True),
    )
}
