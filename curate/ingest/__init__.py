"""`oxa ingest`: pool sources (JSON Lines, JSON, parquet, Arrow, `datasets` folders) into
the workspace's problems, samples and given answers.

Reading files and mapping their columns (`sources`, `presets`) live here because tracing
and the trainer's benchmark loader read their own files the same way.

The stage is imported on first use, so that the CLI reads the presets without it.

Guide: docs/ingest.md.
"""

from curate.lazy import lazy_exports

_EXPORTS = {"IngestConfig": "curate.ingest.ingest", "run_ingest": "curate.ingest.ingest"}
__all__ = list(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
