"""`oxa subsets` and `oxa export`: immutable, versioned subset folders, their data cards
and plots, and the trainers' formats they are exported to.

Selection writes through this folder; nothing here knows how rows were selected. The
modules are imported on first use.

Guides: docs/select.md, docs/exports.md.
"""

from curate.lazy import lazy_exports

_EXPORTS = {
    "ExportConfig": "curate.subsets.export",
    "run_export": "curate.subsets.export",
    "check_checksums": "curate.subsets.subsets",
    "diff_subsets": "curate.subsets.subsets",
    "inputs_changed_since": "curate.subsets.subsets",
    "list_subsets": "curate.subsets.subsets",
    "load_card": "curate.subsets.subsets",
    "resolve_subset": "curate.subsets.subsets",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
