"""No way out of a workspace through symbolic links: a data folder, a subset folder or a
version folder that is a link is refused, with one line naming it, by every command that
opens the workspace; nothing is read or written through it."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from curate.select import SelectConfig, run_select
from curate.subsets import ExportConfig, run_export
from curate.workspace import OxaError, Workspace
from tests.conftest import write_jsonl
from tests.pools import add_pool

COMMANDS = {  # every command that reads, writes or exports, as a user runs it (WS filled in)
    "status": ["status", "{ws}"],
    "sql": ["sql", "{ws}", "SELECT count(*) FROM samples"],
    "ingest": ["ingest", "{ws}", "{source}", "--map", "problem=problem", "--map", "response=response"],
    "trace": ["trace", "{ws}", "--answers", "{source}", "--map", "problem=problem", "--map", "gold_answer=response"],
    "verify": ["verify", "{ws}"],
    "decontaminate": ["decontaminate", "{ws}", "--against", "aime24"],
    "select": ["select", "{ws}", "sft-random", "--set", "N=2", "--set", "where=true"],
    "export": ["export", "{ws}", "s", "--format", "hf", "-o", "{out}"],
    "subsets list": ["subsets", "list", "{ws}"],
}


@pytest.fixture
def pool(ws: Workspace, tmp_path: Path) -> Workspace:
    rows = [{"problem": f"What is {i} + 1?", "response": f"{i + 1}", "verdict": "correct"} for i in range(4)]
    add_pool(ws, tmp_path, rows)
    return ws


def _oxa(args: list[str], ws: Workspace, tmp_path: Path):
    from typer.testing import CliRunner

    from curate.cli import app, main

    source = write_jsonl(tmp_path / "more.jsonl", [{"problem": "What is 9 + 1?", "response": "10"}])
    filled = [a.format(ws=ws.root, source=source, out=tmp_path / "export") for a in args]
    assert main  # errors reach the user as `error: ...` through main(); CliRunner shows the exception
    return CliRunner().invoke(app, filled)


def _refused_by_every_command(ws: Workspace, tmp_path: Path, link: Path) -> None:
    for name, args in COMMANDS.items():
        result = _oxa(args, ws, tmp_path)
        assert result.exit_code != 0, name
        assert isinstance(result.exception, OxaError), (name, result.exception)
        assert f"{link} is a symbolic link" in str(result.exception), name


def test_a_linked_subset_folder_is_refused_and_nothing_is_published_through_it(pool, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    link = pool.root / "subsets" / "sft-random"
    link.symlink_to(elsewhere, target_is_directory=True)
    _refused_by_every_command(pool, tmp_path, link)
    with pytest.raises(OxaError, match="is a symbolic link"):
        run_select(Workspace.open(pool.root), SelectConfig(name="sft-random", strategy="random", n=2))
    assert list(elsewhere.iterdir()) == []  # nothing published outside


def test_a_linked_version_folder_is_refused(pool, tmp_path):
    stats = run_select(pool, SelectConfig(name="s", strategy="random", n=2))
    version = Path(stats["path"])
    outside = tmp_path / "outside-version"
    shutil.move(version, outside)
    version.symlink_to(outside, target_is_directory=True)
    _refused_by_every_command(pool, tmp_path, version)
    with pytest.raises(OxaError, match="is a symbolic link"):
        run_export(Workspace.open(pool.root), ExportConfig("s", "hf", str(tmp_path / "x")))
    assert not (tmp_path / "export").exists() and not (tmp_path / "x").exists()


@pytest.mark.parametrize("folder", ["pool/samples", "verify", "contamination", "scores"])
def test_a_linked_data_folder_is_refused(pool, tmp_path, folder):
    real = pool.root / folder
    moved = tmp_path / f"moved-{folder.replace('/', '-')}"
    shutil.move(real, moved)
    real.symlink_to(moved, target_is_directory=True)
    before = sorted(p.name for p in moved.rglob("*"))
    _refused_by_every_command(pool, tmp_path, real)
    assert sorted(p.name for p in moved.rglob("*")) == before  # nothing written through it


def test_a_workspace_reached_through_a_link_is_fine(pool, tmp_path):
    alias = tmp_path / "alias"
    os.symlink(pool.root, alias, target_is_directory=True)
    ws = Workspace.open(alias)
    assert ws.root == pool.root and ws.status()["tables"]["samples"] == 4
