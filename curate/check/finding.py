"""One finding of `oxa check`: what is wrong with which file, the fix, and what `--repair`
does about it."""

from __future__ import annotations

from dataclasses import dataclass

# What `oxa check --repair` does with a finding. None: nothing automatic (the fix says what to do).
QUARANTINE = "quarantine"  # move the path aside, under .oxa-quarantine/<time>/ (never deleted)
REMOVE_TEMP = "remove-temp"  # a temporary file of a dead writer: removed (never read by anything)
RECORD_HASH = "record-hash"  # a part written before hashes were recorded: record its hash now
REBUILD_CATALOG = "rebuild-catalog"  # write catalog.duckdb again from the folders
MARK_KILLED = "mark-killed"  # record a killed run as killed (stats.json), keeping what it published
CLEAR_LOCK = "clear-lock"  # empty a lock file that names a dead process
FINISH_PUBLICATION = "finish-publication"  # carry out the rest of a killed trace's recorded publication
REGENERATE = "regenerate"  # forget generation's done markers of a lost part, so `oxa generate` redoes it


@dataclass(frozen=True)
class Finding:
    """`path` is relative to the workspace root; `problem` says what is wrong in one
    clause; `fix` says what to do; `repair` is what `--repair` does (one of the names
    above) or None."""

    kind: str
    path: str
    problem: str
    fix: str
    repair: str | None = None

    def line(self) -> str:
        return f"{self.kind}: {self.path}: {self.problem}; {self.fix}"
