"""The documentation stays true to the repository: links and anchors resolve, the paths a
page names exist, every `§N` a docstring cites is a section of docs/architecture.md, each
package names its guide, the README's map reaches every page, the SQL examples run, and
the views have the columns docs/sql.md lists (docs/development.md, the documentation's
own checks)."""

from __future__ import annotations

import ast
import re
import unicodedata
from pathlib import Path

import pytest

from curate.workspace import Workspace
from curate.workspace.query import named_queries, run_query
from tests.doc_commands import DOC_FILES, fenced_blocks, headings, logical_lines, oxa_invocations, prose_lines

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.glob("*.md"))
CODE_DIRS = ("curate", "train", "sql", "tests", "bench", "configs")

_LINK = re.compile(r"(?<!!)\[([^\]]*)\]\(([^)\s]+)\)")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_REPO_PATH = re.compile(r"^(?:curate|train|sql|configs|bench|tests|data_cards|docs|\.ci)/[\w.\-/*]*$")


def github_slug(heading: str) -> str:
    """The anchor GitHub gives a heading: inline markup dropped, lower case, punctuation
    other than '-' and '_' removed, each space a '-'."""
    text = _LINK.sub(r"\1", heading)
    text = "".join(ch for ch in text.lower() if ch in " -_" or unicodedata.category(ch)[0] in "LMN")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    found: set[str] = set()
    for heading in headings(path):
        slug = base = github_slug(heading)
        suffix = 0
        while slug in found:  # GitHub numbers repeated headings
            suffix += 1
            slug = f"{base}-{suffix}"
        found.add(slug)
    return found


def test_the_slugs_are_githubs():
    assert github_slug("Clip-Cov and KL-Cov (OXA_Full+CC)") == "clip-cov-and-kl-cov-oxa_fullcc"
    assert github_slug("Demo (`bench/demo.py`)") == "demo-benchdemopy"
    assert github_slug("2. The workspace") == "2-the-workspace"
    assert github_slug("What `oxa train sft` trains on") == "what-oxa-train-sft-trains-on"


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_links_and_anchors_resolve(doc: Path):
    broken = []
    for number, line in prose_lines(doc):
        for _, target in _LINK.findall(line):
            if re.match(r"[a-z]+:", target):  # http:, https:, mailto:
                continue
            file_part, _, anchor = target.partition("#")
            linked = (doc.parent / file_part).resolve() if file_part else doc
            if not linked.exists():
                broken.append(f"{doc.name}:{number}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in anchors(linked):
                broken.append(f"{doc.name}:{number}: {target} (no heading with that anchor in {linked.name})")
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize("doc", DOC_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_repository_paths_named_in_prose_exist(doc: Path):
    missing = []
    for number, line in prose_lines(doc):
        for span in _CODE_SPAN.findall(line):
            path = span.rstrip(".,:;")
            if not _REPO_PATH.match(path) or "<" in path or re.search(r"/[A-Z]+[./]", path):
                continue  # a pattern such as `sql/queries/NAME.sql`
            found = any(ROOT.glob(path.rstrip("/"))) if "*" in path else (ROOT / path).exists()
            if not found:
                missing.append(f"{doc.name}:{number}: `{span}`")
    assert not missing, "paths named in the docs that the repository lacks:\n" + "\n".join(missing)


def test_every_section_a_docstring_cites_exists():
    sections = {m.group(1) for m in re.finditer(r"^## (\d+)\. ", (DOCS / "architecture.md").read_text(), re.M)}
    assert sections >= {"1", "2", "3", "4", "5"}
    cited = []
    for folder in CODE_DIRS:
        for path in (ROOT / folder).rglob("*"):
            if path.suffix not in (".py", ".sql", ".toml") or not path.is_file():
                continue
            text = path.read_text(encoding="utf-8")
            if path == Path(__file__):
                continue
            assert "DESIGN.md" not in text, f"{path.relative_to(ROOT)} cites DESIGN.md, which the repository lacks"
            for match in re.finditer(r"docs/architecture\.md §(\d+)(?:-(\d+))?", text):
                cited += [(path, n) for n in filter(None, match.groups())]
    assert cited, "no docstring cites docs/architecture.md"
    unknown = [f"{p.relative_to(ROOT)}: §{n}" for p, n in cited if n not in sections]
    assert not unknown, unknown


def _packages() -> list[Path]:
    return sorted(
        p / "__init__.py" for top in ("curate", "train") for p in (ROOT / top).iterdir() if (p / "__init__.py").exists()
    )


@pytest.mark.parametrize("init", _packages(), ids=lambda p: str(p.parent.relative_to(ROOT)))
def test_each_package_names_its_guide(init: Path):
    doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
    guides = re.findall(r"docs/[\w-]+\.md", doc)
    assert guides, f"{init.relative_to(ROOT)}'s docstring names no guide in docs/"
    assert all((ROOT / g).exists() for g in guides), guides


def test_the_architecture_draws_every_package():
    tree = (DOCS / "architecture.md").read_text()
    for init in _packages():
        package = init.parent
        assert f"\n  {package.name}/" in tree, f"{package.relative_to(ROOT)} is not in the architecture's layout"
        assert f"`{package.parent.name}.{package.name}`" in tree, f"{package.relative_to(ROOT)} owns nothing there"


def test_the_readme_is_a_front_door_that_reaches_every_page():
    readme = (ROOT / "README.md").read_text()
    assert len(readme.splitlines()) <= 250, "README.md is a front door: move details to docs/"
    linked = {Path(target.partition("#")[0]).name for _, target in _LINK.findall(readme)}
    assert not [p.name for p in PAGES if p.name not in linked], "pages the README's map does not reach"


# -- the SQL the pages show ----------------------------------------------------------


def _documented_tags() -> set[str]:
    """The score tags the pages' commands make (`oxa score ... --tag T`), and the demo's."""
    tags = {"base"}
    for doc in DOC_FILES:
        for block in fenced_blocks(doc):
            if block.language in ("bash", "sh", "shell", "console", "zsh"):
                for _, line in logical_lines(block):
                    for argv in oxa_invocations(line):
                        if argv[:1] == ["score"] and "--tag" in argv:
                            tags.add(argv[argv.index("--tag") + 1])
    return {t for t in tags if re.fullmatch(r"[\w.\-]+", t)}


@pytest.fixture(scope="module")
def documented_ws(tmp_path_factory) -> Workspace:
    ws = Workspace.init(tmp_path_factory.mktemp("docs") / "ws")
    for tag in sorted(_documented_tags()):
        ws.ensure_scores_folder(tag)
    return ws


def _documented_queries() -> list[tuple[str, str]]:
    queries = []
    for doc in DOC_FILES:
        for block in fenced_blocks(doc):
            where = f"{doc.relative_to(ROOT)}:{block.first_line}"
            if block.language == "sql":
                queries += [(where, q) for q in block.text.split(";") if q.strip() and not _only_comments(q)]
            elif block.language in ("bash", "sh", "shell", "console", "zsh"):
                for number, line in logical_lines(block):
                    for argv in oxa_invocations(line):
                        if argv[:1] == ["sql"] and len(argv) > 2 and not argv[2].startswith("-"):
                            queries.append((f"{doc.relative_to(ROOT)}:{number}", argv[2]))
    return queries


def _only_comments(sql: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in sql.splitlines())


def test_the_pages_show_sql():
    assert len(_documented_queries()) >= 6


@pytest.mark.parametrize("where,query", _documented_queries(), ids=lambda v: v if ":" in v else None)
def test_documented_sql_runs(documented_ws, where, query):
    """Every SQL block and `oxa sql WS "..."` query of the pages runs, as `oxa sql` runs it,
    in a workspace holding the score tags the pages' commands make."""
    run_query(documented_ws, query)


def test_documented_named_queries_exist():
    names = set(named_queries())
    used = set()
    for doc in DOC_FILES:
        text = doc.read_text(encoding="utf-8")
        used |= set(re.findall(r"--query[ =]([a-z_]+)", text))
    assert used and used <= names, f"named queries the pages use that sql/queries/ lacks: {used - names}"
    assert names <= set(re.findall(r"`([a-z_]+)`", (DOCS / "sql.md").read_text())), "named queries docs/sql.md omits"


def test_the_views_have_the_documented_columns(documented_ws):
    rows = {}
    for _, line in prose_lines(DOCS / "sql.md"):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and re.fullmatch(r"`[\w<>]+`", cells[0]):
            rows[cells[0].strip("`")] = set(re.findall(r"`(\w+)`", cells[2]))
    rows["candidates"] |= rows["samples"]  # "every `samples` column, with ..."
    con = documented_ws.connect()
    try:
        relations = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE NOT starts_with(table_name, 'scores_')"
        ).fetchall()
        for (name,) in relations:
            assert name in rows, f"docs/sql.md does not list {name}"
            columns = {c[0] for c in con.execute(f'DESCRIBE "{name}"').fetchall()}
            if name == "candidates":  # and ppl_<tag>, n_tokens_<tag> per tag
                columns = {c for c in columns if not c.startswith(("ppl_", "n_tokens_"))}
            assert columns <= rows[name], f"{name}: columns docs/sql.md does not list: {sorted(columns - rows[name])}"
        (view,) = con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_name = 'scores_base'"
        ).fetchone()
        assert {c[0] for c in con.execute(f"DESCRIBE {view}").fetchall()} <= rows["scores_<tag>"]
    finally:
        con.close()
