"""Locate the files the package ships beside its code: sql/, configs/, data_cards/ and
the built-in benchmark sets.

In a wheel they sit under curate/_resources/ (see pyproject.toml); in a source checkout
or an editable install they are the top-level folders of the repository.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parents[1]  # curate/


def resource_dir(name: str) -> Path:
    """The shipped folder `name` ('sql', 'configs' or 'data_cards')."""
    for candidate in (_PACKAGE_DIR / "_resources" / name, _PACKAGE_DIR.parent / name):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(f"oxa's '{name}' folder is missing from {_PACKAGE_DIR}; reinstall the package")


def sql_text(relative: str) -> str:
    """The text of sql/<relative>, e.g. 'views.sql' or 'queries/table_counts.sql'."""
    path = resource_dir("sql") / relative
    if not path.is_file():
        known = sorted(p.relative_to(resource_dir("sql")).as_posix() for p in resource_dir("sql").rglob("*.sql"))
        raise FileNotFoundError(f"no SQL file '{relative}' in oxa's sql/; known: {', '.join(known)}")
    return path.read_text(encoding="utf-8")


def benchmarks_dir() -> Path:
    """The built-in benchmark sets (JSON lists of {problem, answer, ...})."""
    return _PACKAGE_DIR / "data" / "benchmarks"
