"""Package attributes imported on first use (PEP 562), as TRL and transformers do.

The stage packages name their entry points (`from curate.ingest import run_ingest`,
`from train.sft import OXATrainer`) without importing them when a light module of theirs
is wanted: `oxa --help` reads the ingest presets without the ingest stage, the preset
resolver and the loss start without TRL and run where it is not installed.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_exports(package: str, exports: dict[str, str]) -> tuple[Callable[[str], object], Callable[[], list[str]]]:
    """`__getattr__` and `__dir__` for `package`, whose names in `exports` live in the given modules."""

    def __getattr__(name: str) -> object:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(module), name)

    def __dir__() -> list[str]:
        return sorted({*vars(importlib.import_module(package)), *exports})

    return __getattr__, __dir__
