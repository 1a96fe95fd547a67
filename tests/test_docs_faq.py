"""docs/faq.md quotes oxa's errors word for word: each `###` heading's quote, its varying
parts written `...`, is still in the source of curate/ and train/, so an error reworded in
the code fails here until the FAQ follows (docs/development.md, the documentation's own
checks).

The source is read as text: an f-string's literal parts are there as written, and a
message split over lines as adjacent literals ("... " "...") is joined first.
"""

from __future__ import annotations

import re
from functools import cache

from tests.doc_commands import ROOT, prose_lines

FAQ = ROOT / "docs" / "faq.md"
MIN_PIECE = 4  # shorter literal pieces (": ", "(of") would match anywhere

_ENTRY = re.compile(r"^### `([^`]+)`$")
_VARYING = re.compile(r"'?\.\.\.'?")  # a value, or one that !r prints between quotes
# a closing quote, a line break, an opening quote (an f/r prefix allowed): adjacent literals
_ADJACENT_LITERALS = re.compile(r"[\"']\n\s*[fFrRbB]{0,2}[\"']")


@cache
def source_text() -> str:
    files = sorted(path for top in ("curate", "train") for path in (ROOT / top).rglob("*.py"))
    return "\n".join(_ADJACENT_LITERALS.sub("", path.read_text(encoding="utf-8")) for path in files)


def faq_entries() -> list[tuple[str, list[str]]]:
    """(heading line, body lines) for every `###` heading, the body running to the next heading."""
    entries: list[tuple[str, list[str]]] = []
    for _, line in prose_lines(FAQ):  # a `#` in a code block is no heading
        if line.startswith("#"):
            if line.startswith("### "):
                entries.append((line, []))
            elif entries:
                entries.append(("", []))  # a section heading ends the entry above it
        elif entries and line.strip():
            entries[-1][1].append(line)
    return [(heading, body) for heading, body in entries if heading]


def literal_pieces(quote: str) -> list[str]:
    """The parts of a quoted error that the code writes as they are."""
    quote = quote.removeprefix("error: ")
    return [piece for piece in (p.strip() for p in _VARYING.split(quote)) if len(piece) >= MIN_PIECE]


def test_literal_pieces():
    assert literal_pieces("error: unknown preset '...'; presets: ...") == ["unknown preset", "; presets:"]
    assert literal_pieces("error: ...: selected ... of the target ...") == [": selected", "of the target"]


def test_every_entry_quotes_an_error_and_explains_it():
    entries = faq_entries()
    assert len(entries) >= 25, f"docs/faq.md has {len(entries)} entries; it should cover the errors users meet"
    problems = []
    for heading, body in entries:
        match = _ENTRY.match(heading)
        if not match:
            problems.append(f"{heading!r}: a heading is one backticked quote of the error as printed")
        elif not literal_pieces(match.group(1)):
            problems.append(f"{heading!r}: the quote has no literal text to check")
        if not body:
            problems.append(f"{heading!r}: no text under it (what it means, what to do)")
    assert not problems, "\n".join(problems)


def test_every_quoted_error_is_in_the_code():
    source = source_text()
    missing = [
        f"{heading}\n    not found in curate/ or train/: {piece!r}"
        for heading, _ in faq_entries()
        if (match := _ENTRY.match(heading))
        for piece in literal_pieces(match.group(1))
        if piece not in source
    ]
    assert not missing, "errors the FAQ quotes that the code no longer gives:\n" + "\n".join(missing)
