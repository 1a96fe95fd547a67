"""Per-stage run folders: runs/<stage>/<run-id>/ with the resolved config (written at
the start), stats.json (written at the end), rejects/ parts and a log."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from curate.workspace.errors import DataCommitted, WorkspaceBusy
from curate.workspace.parts import PartWriter, atomic_write_json, fingerprint, owner_tag
from curate.workspace.progress import warn
from curate.workspace.schema import REJECTS
from curate.workspace.workspace import Workspace


def _now() -> datetime:
    return datetime.now(UTC).replace(microsecond=0)


@dataclass
class StageRun:
    """One run of a stage. `config` is the resolved config; its fingerprint names the
    run's parts and decides what a rerun may reuse."""

    ws: Workspace
    stage: str
    config: dict
    started_at: datetime = field(default_factory=_now)

    def __post_init__(self) -> None:
        # what this run has made visible to readers, once it has: from then on a failure
        # is not "nothing was done" (DataCommitted, exit code 3)
        self.published: str | None = None
        held = self.ws.check_catalog(self.stage)  # before any work: a held catalog is named now
        if held:
            warn(held)
        self.fingerprint = fingerprint(self.config)
        stamp = self.started_at.strftime("%Y%m%dT%H%M%SZ")
        run_id = f"{stamp}-{self.fingerprint[:8]}"
        suffix = 1
        while self.ws.run_dir(self.stage, run_id).exists():
            suffix += 1
            run_id = f"{stamp}-{self.fingerprint[:8]}-{suffix}"
        self.run_id = run_id
        self.dir = self.ws.run_dir(self.stage, run_id)
        self.dir.mkdir(parents=True)
        atomic_write_json(
            self.dir / "config.json",
            # owner: this process, so that `oxa status` tells a running run from a killed one
            {"stage": self.stage, "fingerprint": self.fingerprint, "config": self.config, "owner": owner_tag()},
        )
        self.rejects = PartWriter(
            self.dir / "rejects", "rejects", REJECTS, id_column="source_row", rows_per_part=250_000
        )

    @property
    def rejects_dir(self) -> Path:
        return self.dir / "rejects"

    def finish(self, stats: dict, status: str = "done") -> dict:
        """Close the rejects, write stats.json (the run's record) and bring the catalog up
        to date; a catalog that another process holds now gets the run from the next oxa
        command, and the run is still done. By now the run's data is published: a failure
        from here on is DataCommitted (see fail)."""
        self.published = self.published or "its data"
        self.rejects.close()
        finished = _now()
        stats = {
            "status": status,
            "run_id": self.run_id,
            "started_at": self.started_at.isoformat(),
            "finished_at": finished.isoformat(),
            "seconds": (finished - self.started_at).total_seconds(),
            **stats,
        }
        atomic_write_json(self.dir / "stats.json", stats)
        try:
            self.ws.sync_catalog(f"record run {self.run_id}")
        except WorkspaceBusy as exc:
            warn(
                f"{exc}; run {self.run_id} is done and recorded in {self.dir}, and enters the catalog "
                "with the next oxa command once it is free"
            )
        return stats

    def fail(self, error: BaseException) -> None:
        """Record why the run stopped. Before anything was published it `failed` and the
        caller re-raises; after (`published` is set), it is `committed` (the data is whole
        and kept, its bookkeeping is not) and DataCommitted is raised in place of `error`."""
        self.rejects.abort()
        committed = self.published is not None and isinstance(error, Exception) and not isinstance(error, DataCommitted)
        status = "committed" if committed else "failed"
        record = {"status": status, "run_id": self.run_id, "error": f"{type(error).__name__}: {error}"}
        if committed:
            record["published"] = self.published
        try:
            atomic_write_json(self.dir / "stats.json", record)
        except OSError as exc:  # a full disk: the error that stopped the run matters more
            warn(f"run {self.run_id}'s record could not be written ({exc.strerror or exc})")
        if committed:
            raise DataCommitted(
                f"oxa {self.stage} published {self.published}, then failed: {type(error).__name__}: {error}; the data "
                f"is whole and kept; run `oxa check {self.ws.root} --repair` to complete its record "
                "(after freeing space, if the disk is full)"
            ) from error
