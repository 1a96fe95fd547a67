"""A subset's data card, rendered from recorded facts only (docs/architecture.md §5).

card.json holds every fact: provenance (input fingerprints, the ingest runs and their
files, the files the rows come from with the license and source data sets their ingest
recorded, library versions), the selection and each part's funnel and per-bin targets,
the tracing and verification record (the tables, and the latest trace/verify run's
config and stats where the workspace has them), the scorers' manifests, the subset's
distributions, and its files' checksums. card.md renders them through the template
data_cards/subset_card.md, opening with Hugging Face dataset-card YAML whose `configs`
point at data.parquet, so the folder loads with `datasets.load_dataset(folder)`, and
whose `license` and `source_datasets` are those of the rows. README.md is the same card
under the name the Hub reads.

The description is the config's; when `--set` changed the selection it was written for,
a line rendered from the resolved config and the counts says what was selected instead.
"""

from __future__ import annotations

import json
import platform
import re
from importlib import metadata
from pathlib import Path
from string import Template

import duckdb
import yaml

from curate import __version__
from curate.subsets.plots import plot_lengths, plot_pass_rates, plot_ppl
from curate.subsets.subsets import INPUTS_FINGERPRINT, file_sha256
from curate.workspace import Workspace
from curate.workspace.parts import atomic_write_json, duckdb_path
from curate.workspace.resources import resource_dir, sql_text

_LIBRARIES = ("duckdb", "polars", "pyarrow", "numpy", "math-verify", "matplotlib")
_SIZE_CATEGORIES = [(1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")]
UNKNOWN = "unknown"  # the license of rows whose ingest named none (a Hub license id too)
# A license the Hub can take as its id (cc-by-4.0, apache-2.0, mit); other text is the
# Hub's `other` with the text as license_details.
_LICENSE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+-]*$")


def write_card(
    ws: Workspace, con: duckdb.DuckDBPyConnection, folder: Path, facts: dict, unit: str, parts: list[dict], rows: int
) -> None:
    """Write plots/, card.json, card.md and README.md into a subset folder holding data.parquet.

    `unit` is 'samples' or 'problems'; `parts` are the selection's facts of each part."""
    data = folder / "data.parquet"
    (folder / "plots").mkdir()
    if unit == "samples":
        plot_ppl(data, parts, folder / "plots" / "ppl.png")
        plot_lengths(data, parts, folder / "plots" / "length.png")
    else:
        plot_pass_rates(data, folder / "plots" / "pass_rate.png")
    sources = _row_sources(ws, con, data, unit)
    card = {
        "name": facts["name"],
        "version": facts["version"],
        "description": _description(facts, parts, rows, unit),
        "description_overrides": facts["description_overrides"],
        **_licenses(sources),
        "owner": facts["owner"],
        "created_at": facts["created_at"],
        "run_id": facts["run_id"],
        "rows": rows,
        "unit": unit,
        "selection": facts["selection"],
        "parts": parts,
        "provenance": {
            "oxa_version": __version__,
            "inputs": facts["inputs"],
            "inputs_fingerprint": INPUTS_FINGERPRINT,
            "libraries": _library_versions(),
            "ingest_runs": _ingest_runs(ws),
            "row_sources": sources,
        },
        "tracing": _tracing(ws, con),
        "verification": _verification(ws, con),
        "decontamination": decontamination_facts(con, data, unit, facts["selection"], parts),
        "scorers": {tag: _manifest(ws, tag) for tag in facts["score_tags"]},
        "distributions": _distributions(data, unit),
        "files": {
            p.relative_to(folder).as_posix(): {"sha256": file_sha256(p), "bytes": p.stat().st_size}
            for p in sorted([data, *(folder / "plots").iterdir()])
        },
    }
    atomic_write_json(folder / "card.json", card)
    text = render_markdown(card)
    (folder / "card.md").write_text(text, encoding="utf-8")
    (folder / "README.md").write_text(text, encoding="utf-8")


# -- facts from the workspace ---------------------------------------------------------------


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def _latest_runs(ws: Workspace, stage: str) -> list[dict]:
    """The finished runs of a stage, oldest first: run id, resolved config, stats."""
    runs = []
    for stats_path in sorted((ws.root / "runs" / stage).glob("*/stats.json")):
        stats = json.loads(stats_path.read_text(encoding="utf-8"))
        if stats.get("status") != "done":
            continue
        config_path = stats_path.parent / "config.json"
        config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.is_file() else {}
        runs.append({"run_id": stats_path.parent.name, "config": config.get("config"), "stats": stats})
    return runs


def _ingest_runs(ws: Workspace) -> list[dict]:
    return [
        {
            "run_id": run["run_id"],
            "files": run["stats"].get("files", []),
            "funnel": run["stats"].get("funnel"),
        }
        for run in _latest_runs(ws, "ingest")
    ]


def _recorded_files(ws: Workspace) -> dict[str, dict]:
    """Each pool file's ingest runs, license and source data sets, from the runs' stats.json:
    the latest run that read the file and named a license (source data sets) gives it, so
    ingesting a file again with --license records one without adding rows."""
    found: dict[str, dict] = {}
    for run in _latest_runs(ws, "ingest"):
        for file in run["stats"].get("files", []):
            known = found.setdefault(file["path"], {"ingest_runs": [], "license": None, "source_datasets": []})
            known["ingest_runs"].append(run["run_id"])
            known["license"] = file.get("license") or known["license"]
            known["source_datasets"] = file.get("source_datasets") or known["source_datasets"]
    return found


def _row_sources(ws: Workspace, con: duckdb.DuckDBPyConnection, data: Path, unit: str) -> list[dict]:
    """The pool files the subset's rows come from (a row's sample's file and its problem's),
    each with the rows it gave and what its ingest recorded."""
    recorded = _recorded_files(ws)
    empty = {"ingest_runs": [], "license": None, "source_datasets": []}
    return [
        {"source_file": r["source_file"], **recorded.get(r["source_file"], empty), "rows": r["rows"]}
        for r in _rows(con, _subset_query("cards/subset_source_files.sql", unit), {"data": duckdb_path(data)})
    ]


def _licenses(sources: list[dict]) -> dict:
    """The card's license (one, a list when the files differ, or 'unknown' for files whose
    ingest named none, with a note naming them) and source data sets."""
    named = {s["license"] or UNKNOWN for s in sources} or {UNKNOWN}
    licenses = sorted(named - {UNKNOWN}) + [UNKNOWN] * (UNKNOWN in named)
    unlicensed = [s["source_file"] or "(rows tied to no file)" for s in sources if not s["license"]]
    note = None
    if unlicensed:
        note = (
            f"no license was recorded for {len(unlicensed)} of the {len(sources)} pool files these rows come from: "
            f"{', '.join(unlicensed)}. `oxa ingest WS FILE --license ID` records one (it adds no rows); cards "
            "written after it show it"
        )
    return {
        "license": licenses[0] if len(licenses) == 1 else licenses,
        "license_note": note,
        "source_datasets": sorted({d for s in sources for d in s["source_datasets"]}),
    }


def _description(facts: dict, parts: list[dict], rows: int, unit: str) -> str:
    """The config's description; when --set changed the selection it was written for, with
    a line saying what was selected: the changes, and each part's count, strategy and filter."""
    overrides = facts["description_overrides"]
    if not overrides:
        return facts["description"]
    changed = ", ".join(f"{key} from {json.dumps(was)} to {json.dumps(now)}" for key, (was, now) in overrides.items())
    selection = facts["selection"]
    how = []
    for part in parts:
        where = (selection[part["label"]] if selection["strategy"] == "mix" else selection).get("where")
        how.append(f"by {part['strategy']}" + (f" where {where}" if where else "") + f" (target {part['target']:,})")
    if len(parts) == 1:
        selected = f"{rows:,} {unit} {how[0]}"
    else:
        selected = f"{rows:,} {unit}: " + "; ".join(f"{p['label']} {p['selected']:,} {h}" for p, h in zip(parts, how))
    line = f"(The description above is the config's; --set changed {changed}. Selected: {selected}.)"
    return f"{facts['description']}\n\n{line}"


def _subset_query(name: str, unit: str) -> str:
    """A cards/ query over a subset's rows, with {sample_id} its column (None for problems)."""
    return sql_text(name).replace("{sample_id}", "sample_id" if unit == "samples" else "NULL::VARCHAR")


def _rows(con: duckdb.DuckDBPyConnection, query: str, params: dict | None = None) -> list[dict]:
    relation = con.sql(query, params=params)
    return [dict(zip(relation.columns, row)) for row in relation.fetchall()]


def _tracing(ws: Workspace, con: duckdb.DuckDBPyConnection) -> dict:
    runs = _latest_runs(ws, "trace")
    return {"gold_answers": _rows(con, sql_text("cards/workspace_gold.sql")), "latest_run": runs[-1] if runs else None}


def _verification(ws: Workspace, con: duckdb.DuckDBPyConnection) -> dict:
    runs = _latest_runs(ws, "verify")
    return {"verdicts": _rows(con, sql_text("cards/workspace_verdicts.sql")), "latest_run": runs[-1] if runs else None}


def decontamination_facts(
    con: duckdb.DuckDBPyConnection, data: Path, unit: str, selection: dict, parts: list[dict]
) -> dict:
    """What the subset was checked against (the last `oxa decontaminate` run: benchmarks,
    settings, fingerprint), what its selection left out, and what it holds that the run
    matched or never checked."""
    runs = _rows(con, "SELECT run_id, stats FROM decontamination_run")
    query = _subset_query("cards/subset_contamination.sql", unit)
    found = {r["what"]: r["rows"] for r in _rows(con, query, {"data": duckdb_path(data)})}
    stats = json.loads(runs[0]["stats"]) if runs else {}
    return {
        "run_id": runs[0]["run_id"] if runs else None,
        "fingerprint": stats.get("fingerprint"),
        "benchmarks": stats.get("benchmarks", []),
        "settings": stats.get("settings"),
        "exclude_contaminated": selection["exclude_contaminated"],
        "drop_templates": selection["drop_templates"],
        "dropped": {p["label"]: p["funnel"]["dropped"].get("contaminated", 0) for p in parts},
        "rows_matched": {m: found.get(m, 0) for m in ("exact", "contained", "near", "template")},
        "rows_unchecked": found.get("unchecked", 0),
    }


def _manifest(ws: Workspace, tag: str) -> dict | None:
    path = ws.scores_folder(tag) / "manifest.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _distributions(data: Path, unit: str) -> dict:
    con = duckdb.connect()
    try:
        params = {"data": duckdb_path(data)}
        found = {"per_source": {r.pop("source"): r for r in _rows(con, sql_text("cards/subset_sources.sql"), params)}}
        if unit == "problems":
            rates = _rows(con, sql_text("cards/subset_pass_rates.sql"), params)
            found["pass_rate"] = {str(r["pass_rate"]): r["problems"] for r in rates}
            return found
        for row in _rows(con, sql_text("cards/subset_ppl_lengths.sql"), params):
            key = f"loss_type_{row.pop('loss_type')}"
            found.setdefault("rows", {})[key] = {"rows": row.pop("rows"), "problems": row.pop("problems")}
            found.setdefault("ppl", {})[key] = {
                k.removeprefix("ppl_"): v for k, v in row.items() if k.startswith("ppl")
            }
            found.setdefault("n_tokens", {})[key] = {
                k.removeprefix("tokens_"): v for k, v in row.items() if k.startswith("tokens")
            }
        responses = _rows(con, sql_text("cards/subset_responses_per_problem.sql"), params)
        found["responses_per_problem"] = {str(r["responses"]): r["problems"] for r in responses}
        for row in _rows(con, sql_text("cards/subset_verdicts.sql"), params):
            found.setdefault("verdicts", {}).setdefault(f"loss_type_{row['loss_type']}", {})[row["verdict"]] = row[
                "rows"
            ]
        return found
    finally:
        con.close()


# -- card.md ------------------------------------------------------------------------------


def render_markdown(card: dict) -> str:
    template = Template((resource_dir("data_cards") / "subset_card.md").read_text(encoding="utf-8"))
    bins = [p for p in card["parts"] if p["bins"]]
    return template.substitute(
        hub_yaml=yaml.safe_dump(_hub_metadata(card), sort_keys=False).strip(),
        name=card["name"],
        description=card["description"] or "(no description given)",
        version=card["version"],
        rows=f"{card['rows']:,}",
        unit=card["unit"],
        strategy=card["selection"]["strategy"],
        created_at=card["created_at"],
        run_id=card["run_id"],
        owner=card["owner"] or "-",
        license=_cell(_listed(card["license"])),
        source_datasets=_cell(_listed(card["source_datasets"]) or None),
        oxa_version=card["provenance"]["oxa_version"],
        selection=_selection_md(card),
        funnel="\n\n".join(_funnel_md(p) for p in card["parts"]),
        bins="\n\n".join(_bins_md(p) for p in bins) if bins else "No Gaussian-guided part in this subset.",
        distributions=_distributions_md(card),
        plots="\n\n".join(f"![{Path(name).stem}]({name})" for name in card["files"] if name.endswith(".png")),
        provenance=_provenance_md(card),
        tracing=_tracing_md(card),
        verification=_verification_md(card),
        decontamination=_decontamination_md(card),
        scorers=_scorers_md(card),
        files=_table(
            ["file", "bytes", "sha256"],
            [[f"`{n}`", f"{f['bytes']:,}", f"`{f['sha256']}`"] for n, f in card["files"].items()],
        ),
    )


def _hub_metadata(card: dict) -> dict:
    size = next((label for limit, label in _SIZE_CATEGORIES if card["rows"] < limit), "1M<n<10M")
    return {
        "pretty_name": card["name"],
        **_hub_license(card["license"]),
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["oxa", "math", "reasoning", "chain-of-thought"],
        "size_categories": [size],
        "source_datasets": card["source_datasets"],
        "configs": [{"config_name": "default", "data_files": [{"split": "train", "path": "data.parquet"}]}],
    }


def _hub_license(licenses: str | list[str]) -> dict:
    """The Hub's license keys (huggingface/hub-docs datasetcard.md): ids as given, one or a
    list; a license named in words is `other`, with its text as `license_details`."""
    given = [licenses] if isinstance(licenses, str) else licenses
    ids = list(dict.fromkeys(v if _LICENSE_ID.match(v) else "other" for v in given))
    texts = [v for v in given if not _LICENSE_ID.match(v)]
    return {"license": ids[0] if len(ids) == 1 else ids, **({"license_details": "; ".join(texts)} if texts else {})}


def _listed(value: str | list[str]) -> str:
    return value if isinstance(value, str) else ", ".join(value)


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value).replace("|", "\\|").replace("\n", " ")


def _selection_md(card: dict) -> str:
    selection = card["selection"]
    parts = (
        [(label, selection[label]) for label in ("positives", "negatives")]
        if selection["strategy"] == "mix"
        else [("selection", selection)]
    )
    blocks = []
    for (label, fields), part in zip(parts, card["parts"]):
        rows = [[f"`{k}`", f"`{v}`" if isinstance(v, str) else v] for k, v in fields.items()]
        rows += [["target", part["target"]], ["selected", part["selected"]], ["shortfall", part["shortfall"]]]
        rows += [[k, v] for k, v in part["details"].items() if not isinstance(v, dict)]
        blocks.append(f"**{label}** (loss_type {part['loss_type']})\n\n" + _table(["parameter", "value"], rows))
    return "\n\n".join(blocks)


def _funnel_md(part: dict) -> str:
    funnel = part["funnel"]
    rows = [[f"input ({funnel['unit']})", funnel["input"]]]
    rows += [[f"dropped: {reason}", n] for reason, n in funnel["dropped"].items()]
    rows.append(["**selected**", funnel["selected"]])
    samples = part["details"].get("samples")
    note = ""
    if samples:
        note = "\n\nSamples behind these problems: " + ", ".join(f"{k} {v:,}" for k, v in samples.items()) + "."
    return f"**{part['label']}**\n\n" + _table(["step", "rows"], rows) + note


def _bins_md(part: dict) -> str:
    rows = [
        [b["range"], b["available"], b["target"], b["achieved"], b["shortfall"], b["redistributed_in"]]
        for b in part["bins"]
        if b["target"] or b["achieved"]
    ]
    header = ["PPL bin", "available", "target", "achieved", "shortfall", "redistributed in"]
    return f"**{part['label']}** (bins with no target and nothing selected are left out)\n\n" + _table(header, rows)


def _distributions_md(card: dict) -> str:
    dist = card["distributions"]
    blocks = []
    if "ppl" in dist:
        blocks.append(
            "PPL\n\n"
            + _table(["part", *next(iter(dist["ppl"].values()))], [[k, *v.values()] for k, v in dist["ppl"].items()])
        )
        blocks.append(
            "Response tokens\n\n"
            + _table(
                ["part", *next(iter(dist["n_tokens"].values()))],
                [[k, *v.values()] for k, v in dist["n_tokens"].items()],
            )
        )
        blocks.append(
            "Responses per problem\n\n"
            + _table(["responses", "problems"], [[k, v] for k, v in dist["responses_per_problem"].items()])
        )
        verdict_rows = [
            [part, verdict, n] for part, counts in dist["verdicts"].items() for verdict, n in counts.items()
        ]
        blocks.append("Verdicts\n\n" + _table(["part", "verdict", "rows"], verdict_rows))
    if "pass_rate" in dist:
        blocks.append(
            "Pass rates\n\n" + _table(["pass rate", "problems"], [[k, v] for k, v in dist["pass_rate"].items()])
        )
    blocks.append(
        "Per source\n\n"
        + _table(["source", "rows", "problems"], [[k, v["rows"], v["problems"]] for k, v in dist["per_source"].items()])
    )
    return "\n\n".join(blocks)


def _provenance_md(card: dict) -> str:
    prov = card["provenance"]
    inputs = _table(["table", "fingerprint (its rows, order-free)"], [[k, f"`{v}`"] for k, v in prov["inputs"].items()])
    libraries = ", ".join(f"{k} {v}" for k, v in prov["libraries"].items())
    files = [
        [f"`{run['run_id']}`", f"`{f['path']}`", f.get("preset"), f.get("records")]
        for run in prov["ingest_runs"]
        for f in run["files"]
    ]
    ingest = _table(["ingest run", "file", "preset", "records"], files) if files else "No ingest runs recorded."
    rows = _table(
        ["file", "ingest runs", "license", "source data sets", "rows"],
        [
            [
                f"`{s['source_file']}`" if s["source_file"] else "(no file)",
                ", ".join(f"`{r}`" for r in s["ingest_runs"]),
                s["license"] or UNKNOWN,
                ", ".join(s["source_datasets"]),
                s["rows"],
            ]
            for s in prov["row_sources"]
        ],
    )
    note = f"\n\nLicense unknown: {card['license_note']}." if card["license_note"] else ""
    return (
        f"Inputs\n\n{inputs}\n\nWhere this subset's rows come from (a row counts under its response's file "
        f"and its problem's)\n\n{rows}{note}\n\nPool sources (every ingest run of the workspace)\n\n{ingest}"
        f"\n\nLibraries: {libraries}."
    )


def _latest_run_md(stage: str, run: dict | None) -> str:
    if run is None:
        return f"No {stage} run is recorded in this workspace's runs/{stage}/."
    config = json.dumps(run["config"], sort_keys=True, default=str)
    summary = run["stats"].get("summary", "")
    return f"Latest {stage} run `{run['run_id']}`: {summary}\n\nIts settings: `{config}`"


def _tracing_md(card: dict) -> str:
    tracing = card["tracing"]
    table = _table(
        ["gold answer found by", "problems", "conflicts"], [list(r.values()) for r in tracing["gold_answers"]]
    )
    return f"Gold answers of the pool's problems\n\n{table}\n\n" + _latest_run_md("trace", tracing["latest_run"])


def _verification_md(card: dict) -> str:
    verification = card["verification"]
    if verification["verdicts"]:
        table = _table(
            ["verifier", "settings hash", "verdict", "samples"], [list(r.values()) for r in verification["verdicts"]]
        )
    else:
        table = "No verdicts recorded in verify/."
    return f"Verdicts over the pool\n\n{table}\n\n" + _latest_run_md("verify", verification["latest_run"])


def _decontamination_md(card: dict) -> str:
    facts = card.get("decontamination")
    if facts is None:
        return "This card was written by an oxa that recorded no decontamination."
    if facts["run_id"] is None:
        return (
            "**Not checked against any benchmark**: the workspace had no `oxa decontaminate` run when this "
            "subset was selected, so nothing here says whether it holds evaluation problems."
        )
    sets = _table(
        ["benchmark", "problems", "file", "sha256"],
        [[b["name"], b["problems"], f"`{b['path']}`", f"`{b['sha256'][:16]}`"] for b in facts["benchmarks"]],
    )
    settings = ", ".join(f"{k} {v}" for k, v in facts["settings"].items())
    left_out = "contaminated candidates (exact, contained, near)" if facts["exclude_contaminated"] else "nothing"
    if facts["drop_templates"]:
        left_out += " and template matches" if facts["exclude_contaminated"] else "template matches only"
    dropped = ", ".join(f"{label} {n:,}" for label, n in facts["dropped"].items())
    kept = _table(["matched by", "rows in this subset"], [[m, n] for m, n in facts["rows_matched"].items()])
    return (
        f"Checked against, by `oxa decontaminate` run `{facts['run_id']}` (settings fingerprint "
        f"`{facts['fingerprint']}`; {settings}):\n\n{sets}\n\nThis selection left out {left_out}: "
        f"{dropped} candidates dropped as contaminated.\n\n{kept}\n\nRows whose problem that run did not "
        f"check (ingested after it): {facts['rows_unchecked']:,}."
    )


def _scorers_md(card: dict) -> str:
    if not card["scorers"]:
        return "This subset was selected without PPL."
    blocks = []
    for tag, manifest in card["scorers"].items():
        body = (
            f"```json\n{json.dumps(manifest, indent=2, sort_keys=True)}\n```"
            if manifest
            else "No manifest.json recorded."
        )
        blocks.append(f"`{tag}` (scores/{tag}/manifest.json)\n\n{body}")
    return "\n\n".join(blocks)
