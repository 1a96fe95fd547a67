"""The workspace: one folder, its DuckDB catalog and the parquet parts under it.

Everything the stages share about where data lives and how it is written (atomic parts,
run folders, table schemas, shipped SQL and config files, errors, progress) sits here,
so that a stage folder holds its own logic and nothing else.

Guides: docs/workspace.md, docs/sql.md; the contract: docs/architecture.md.
"""

from curate.workspace.errors import DataCommitted, DiskFull, MissingExtra, OxaError, WorkspaceBusy, WorkspaceDamaged
from curate.workspace.workspace import Workspace, check_tag

__all__ = [
    "DataCommitted",
    "DiskFull",
    "MissingExtra",
    "OxaError",
    "Workspace",
    "WorkspaceBusy",
    "WorkspaceDamaged",
    "check_tag",
]
