"""`oxa decontaminate`: the pool problems (and responses) that hold a benchmark problem
(copies, drifted or edited copies, copies inside a longer text) and the template
matches (the benchmark problem with other numbers), for selection to keep out. The stage
is imported on first use, so that the command line reads its settings without it.

Guide: docs/decontaminate.md.
"""

from curate.lazy import lazy_exports

_EXPORTS = {
    "CONTAMINATED": "curate.decontaminate.matching",
    "METHODS": "curate.decontaminate.matching",
    "DecontaminateConfig": "curate.decontaminate.config",
    "run_decontaminate": "curate.decontaminate.decontaminate",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
