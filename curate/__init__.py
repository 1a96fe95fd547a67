"""oxa curation layer: pool ingest, the workspace catalog, tracing, verification,
scoring columns, selection and versioned subsets. Imports without torch.

Documentation: README.md (the documentation map).
"""

__version__ = "0.1.0"
