"""`oxa check`: a workspace against its own records (docs/workspace.md, "Checking and repairing").

Cut by what is checked: parts against their records, leftovers of interrupted work,
subset folders, rows through the views; check.py runs them and repairs. Imported on
first use, so that `oxa --help` loads none of it.
"""

from curate.lazy import lazy_exports

_EXPORTS = {
    "CheckReport": "curate.check.check",
    "Finding": "curate.check.finding",
    "find_damage": "curate.check.check",
    "open_for_check": "curate.check.check",
    "repair_workspace": "curate.check.check",
    "run_check": "curate.check.check",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
