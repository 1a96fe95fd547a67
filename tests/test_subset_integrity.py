"""Subsets defend themselves (issue 31): the card is the authority over a version folder's
files, an empty or incomplete version folder is not a version, a copied folder is named
rather than read, a damaged data.parquet is one line, and `oxa check` finds all of it."""

import hashlib
import shutil

import pytest
from typer.testing import CliRunner

from curate.check.finding import QUARANTINE
from curate.check.subsets import subset_findings
from curate.cli import app
from curate.select import SelectConfig, run_select
from curate.subsets.subsets import check_checksums, diff_subsets, list_subsets, resolve_subset
from curate.workspace import Workspace, WorkspaceDamaged
from curate.workspace.errors import EXIT_DAMAGED
from tests.pools import STRATEGY_POOL, TAG, add_pool

CORRECT = "verdict = 'correct'"


def config(**fields) -> SelectConfig:
    return SelectConfig(
        **{"name": "lp", "strategy": "lowest_ppl", "scores_tag": TAG, "where": CORRECT, "n": 3, **fields}
    )


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    """A workspace with two versions of `lp` (n=3, then n=2), made once: each test copies it."""
    tmp_path = tmp_path_factory.mktemp("published")
    ws = Workspace.init(tmp_path / "ws")
    add_pool(ws, tmp_path, STRATEGY_POOL)
    first = run_select(ws, config())["version"]
    second = run_select(ws, config(n=2))["version"]
    return ws.root, first, second


@pytest.fixture
def ws(published, tmp_path):
    root, _, _ = published
    return Workspace(shutil.copytree(root, tmp_path / "ws"))


@pytest.fixture
def versions(published):
    return published[1:]


def oxa(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def one_line_error(result, *pieces: str) -> str:
    """The message of a WorkspaceDamaged (exit 4: `oxa` prints it alone), one line, the pieces in it."""
    assert isinstance(result.exception, WorkspaceDamaged), result.output
    assert result.exception.exit_code == EXIT_DAMAGED
    message = str(result.exception)
    assert "\n" not in message
    for piece in pieces:
        assert piece in message, message
    return message


def forge(folder) -> None:
    """Edit data.parquet and rewrite checksums.sha256 to match, as `sha256sum` would."""
    with open(folder / "data.parquet", "ab") as handle:
        handle.write(b"forged")
    lines = []
    for line in (folder / "checksums.sha256").read_text().splitlines():
        digest, _, name = line.partition("  ")
        if name == "data.parquet":
            digest = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        lines.append(f"{digest}  {name}\n")
    (folder / "checksums.sha256").write_text("".join(lines))


def kinds(ws, deep: bool) -> list[tuple[str, str]]:
    return [(f.kind, f.path) for f in subset_findings(ws, deep=deep)]


# -- 1. the card is the authority ----------------------------------------------------------


def test_a_forged_checksums_file_is_refused_by_show_export_and_diff(ws, versions, tmp_path):
    first, second = versions
    folder = ws.root / "subsets" / "lp" / first
    forge(folder)
    assert check_checksums(folder) == ["checksums.sha256", "data.parquet"]
    for result in (
        oxa("subsets", "show", ws.root, f"lp/{first}"),
        oxa("subsets", "show", ws.root, f"lp/{first}", "--json"),
        oxa("export", ws.root, f"lp/{first}", "--format", "trl", "-o", tmp_path / "out.jsonl"),
        oxa("subsets", "diff", ws.root, f"lp/{first}", f"lp/{second}"),
    ):
        one_line_error(result, str(folder), "data.parquet", "card.json", f"oxa check {ws.root} --repair")
    assert not (tmp_path / "out.jsonl").exists()
    assert kinds(ws, deep=False) == [("subset-checksums", f"subsets/lp/{first}")]
    [finding] = subset_findings(ws, deep=True)
    assert (finding.kind, finding.repair) == ("subset-damaged", QUARANTINE)
    assert "data.parquet" in finding.problem and "oxa check" in finding.fix


def test_checksums_that_disagree_with_the_card_are_a_finding(ws, versions):
    first, _ = versions
    folder = ws.root / "subsets" / "lp" / first
    listed = (folder / "checksums.sha256").read_text()
    data_line = next(line for line in listed.splitlines() if line.endswith("  data.parquet"))
    (folder / "checksums.sha256").write_text(listed.replace(data_line, "0" * 64 + "  data.parquet"))
    assert check_checksums(folder) == ["checksums.sha256"]  # the data itself matches its card
    for deep in (False, True):
        assert kinds(ws, deep) == [("subset-checksums", f"subsets/lp/{first}")]
    one_line_error(oxa("subsets", "show", ws.root, f"lp/{first}"), "checksums.sha256")


def test_an_intact_workspace_has_no_findings_and_shows_ok(ws, versions):
    assert subset_findings(ws, deep=True) == []
    shown = oxa("subsets", "show", ws.root, "lp")
    assert shown.exit_code == 0 and "OK" in shown.output


# -- 2. an empty or incomplete version folder ------------------------------------------------


def test_select_publishes_into_an_empty_version_folder(ws, versions):
    """An empty folder holds nothing of a user's: it is no version (not 'exists already'),
    list and resolve pass it over, and select publishes the version in its place."""
    first, second = versions
    folder = ws.root / "subsets" / "lp" / first
    shutil.rmtree(folder)
    folder.mkdir()
    assert kinds(ws, deep=False) == [("subset-empty", f"subsets/lp/{first}")]
    assert [s["version"] for s in list_subsets(ws)] == [second] and resolve_subset(ws, "lp").name == second
    stats = run_select(ws, config())
    assert not stats["existing"] and stats["version"] == first
    assert check_checksums(folder) == [] and subset_findings(ws, deep=True) == []
    assert resolve_subset(ws, f"lp/{first}") == folder


def test_select_never_overwrites_a_version_folder_without_a_card(ws, versions):
    first, _ = versions
    folder = ws.root / "subsets" / "lp" / first
    (folder / "card.json").unlink()
    data = (folder / "data.parquet").read_bytes()
    with pytest.raises(WorkspaceDamaged, match=r"holds no card\.json.*oxa check .* --repair"):
        run_select(ws, config())
    assert (folder / "data.parquet").read_bytes() == data
    assert kinds(ws, deep=False) == [("subset-incomplete", f"subsets/lp/{first}")]
    one_line_error(oxa("subsets", "show", ws.root, f"lp/{first}"), str(folder), "card.json")


# -- 3. a way out of a damaged version -------------------------------------------------------


def test_select_over_a_damaged_version_says_how_to_get_out(ws, versions, tmp_path):
    """Not 'exists already' (which sent the user round in a loop): the folder is named,
    and once moved aside (what `oxa check WS --repair` does) the same select publishes anew."""
    first, _ = versions
    folder = ws.root / "subsets" / "lp" / first
    with open(folder / "data.parquet", "ab") as handle:
        handle.write(b"tampered")
    toml = tmp_path / "lp.toml"
    toml.write_text(f'name = "lp"\nstrategy = "lowest_ppl"\nscores_tag = "{TAG}"\nwhere = "{CORRECT}"\nN = 3\n')
    message = one_line_error(oxa("select", ws.root, toml), str(folder), "data.parquet", f"oxa check {ws.root} --repair")
    assert "exists already" not in message and "select" in message.split("--repair")[1]
    folder.rename(ws.root / "aside")  # what --repair does: move it out of subsets/
    stats = run_select(ws, config())
    assert not stats["existing"] and stats["version"] == first and check_checksums(folder) == []


# -- 4. copied folders -----------------------------------------------------------------------


def test_a_copied_subset_folder_is_named_not_read(ws, versions):
    first, second = versions
    shutil.copytree(ws.root / "subsets" / "lp", ws.root / "subsets" / "copy")
    assert [(s["name"], s["version"]) for s in list_subsets(ws)] == [("lp", first), ("lp", second)]
    with pytest.raises(WorkspaceDamaged, match=r"subsets/copy/.* holds the card of lp/.*oxa check .* --repair"):
        resolve_subset(ws, "copy")
    assert resolve_subset(ws, "lp").name == second
    listed = oxa("subsets", "list", ws.root)
    assert listed.exit_code == 0 and listed.output.count("lowest_ppl") == 2
    assert sorted(kinds(ws, deep=False)) == [("subset-copied", f"subsets/copy/{v}") for v in sorted(versions)]


def test_a_version_folder_copied_under_another_version_name(ws, versions):
    first, _ = versions
    shutil.copytree(ws.root / "subsets" / "lp" / first, ws.root / "subsets" / "lp" / "0123456789abcdef")
    with pytest.raises(WorkspaceDamaged, match="0123456789abcdef holds the card of lp/"):
        resolve_subset(ws, "lp/0123")
    with pytest.raises(WorkspaceDamaged, match="0123456789abcdef"):
        resolve_subset(ws, "lp")  # the newest might be the copy: refused, not guessed
    assert resolve_subset(ws, f"lp/{first}").name == first
    assert kinds(ws, deep=False) == [("subset-copied", "subsets/lp/0123456789abcdef")]


# -- 5. a damaged data.parquet in diff -------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncate", "flip"])
def test_diff_over_a_damaged_data_file_is_one_line(ws, versions, damage):
    first, second = versions
    data = ws.root / "subsets" / "lp" / second / "data.parquet"
    raw = bytearray(data.read_bytes())
    data.write_bytes(raw[: len(raw) // 2] if damage == "truncate" else raw[:-12] + bytes(b ^ 0xFF for b in raw[-12:]))
    result = oxa("subsets", "diff", ws.root, f"lp/{first}", f"lp/{second}")
    one_line_error(result, str(data.parent), "data.parquet", f"oxa check {ws.root} --repair")
    with pytest.raises(WorkspaceDamaged):
        diff_subsets(ws.root / "subsets" / "lp" / first, data.parent)
    assert kinds(ws, deep=False) == []  # only hashing finds it
    assert kinds(ws, deep=True) == [("subset-damaged", f"subsets/lp/{second}")]


# -- 6. the findings' own rules -------------------------------------------------------------


def test_findings_leave_temporary_folders_and_do_not_read_data_when_shallow(ws, versions, monkeypatch):
    first, _ = versions
    (ws.root / "subsets" / "lp" / f".{first}.0123~host~1.partial").mkdir()
    incomplete = ws.root / "subsets" / "lp" / "fedcba9876543210"
    incomplete.mkdir()
    (incomplete / "data.parquet").write_bytes(b"half")
    broken = ws.root / "subsets" / "lp" / first / "card.json"
    broken.write_text("{not json")

    def no_hashing(*args):
        raise AssertionError("deep=False hashed a file")

    monkeypatch.setattr(hashlib, "sha256", no_hashing)
    findings = {f.path: f for f in subset_findings(ws, deep=False)}
    assert {path: f.kind for path, f in findings.items()} == {
        f"subsets/lp/{first}": "subset-damaged",
        "subsets/lp/fedcba9876543210": "subset-incomplete",
    }
    assert all(f.repair == QUARANTINE for f in findings.values())
    assert "card.json" in findings[f"subsets/lp/{first}"].problem
    assert "card.json" in findings["subsets/lp/fedcba9876543210"].problem
