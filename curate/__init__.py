"""oxa curation layer: pool ingest, the workspace catalog, tracing, verification,
scoring columns, selection and versioned subsets. Imports without torch."""

__version__ = "0.1.0"
