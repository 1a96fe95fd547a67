"""`oxa subsets` and `oxa export`: immutable, versioned subset folders, their data cards
and plots, and the trainers' formats they are exported to.

Selection writes through this folder; nothing here knows how rows were selected.
"""

from curate.subsets.export import ExportConfig, run_export
from curate.subsets.subsets import check_checksums, diff_subsets, list_subsets, load_card, resolve_subset

__all__ = [
    "ExportConfig",
    "check_checksums",
    "diff_subsets",
    "list_subsets",
    "load_card",
    "resolve_subset",
    "run_export",
]
