"""`oxa ingest`: pool sources (JSON Lines, JSON, parquet, Arrow, `datasets` folders) into
the workspace's problems, samples and given answers.

Reading files and mapping their columns (`sources`, `presets`) live here because tracing
and the trainer's benchmark loader read their own files the same way.
"""

from curate.ingest.ingest import IngestConfig, run_ingest

__all__ = ["IngestConfig", "run_ingest"]
