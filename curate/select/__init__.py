"""`oxa select`: training subsets from the candidates view (Gaussian-guided PPL sampling,
Algorithm 1, and the paper's baselines), published through `curate.subsets`. The stage is
imported on first use, so that the CLI reads the config's fields without it.

Guide: docs/select.md.
"""

from curate.lazy import lazy_exports

_EXPORTS = {
    "SelectConfig": "curate.select.config",
    "Selection": "curate.select.config",
    "load_select_config": "curate.select.config",
    "run_select": "curate.select.select",
}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
