"""`oxa select`: cut a versioned subset from the candidates view with a strategy.

For each part of the config (one, or positives and negatives for `mix`): read the
columns the strategies need for every candidate, with the part's SQL filter evaluated
alongside (sql/select/); drop rows whose PPL or length the strategy needs but cannot
use (missing, NaN, infinite), recording why; run the strategy; account for every
candidate in the funnel. Then write the subset (data.parquet, the card, plots,
checksums) as a new version folder, or find that this version exists already.

Strategies (the paper's names in brackets):
- gaussian: Algorithm 1, each bin filled as printed or as the released script does
  (OXA_MLE; curate/select/gaussian.py).
- lowest_ppl: lowest PPL first (SFT_LP; and the unlikelihood negatives).
- random: a seeded shuffle (SFT).
- interval: PPL in [p_min, p_max], longest first (the PPL-interval sampling of Table 3).
- long_low_ppl: rows at least as long as a quantile of the candidates' lengths, lowest
  PPL first (Fig. 5b).
- pass_rate: problems whose pass rate over at least k judged samples lies in
  [min_pass_rate, max_pass_rate], in seeded order (the RLVR prompts of appendix A.3).
- mix: positives (loss_type 0) plus negatives (loss_type 1) (OXA_Full).
Every order breaks ties by a seeded key, and every sample strategy caps rows per problem.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from curate import __version__
from curate.select.config import SelectConfig, Selection
from curate.select.gaussian import GaussianParams, select_gaussian_bins
from curate.select.sampling import IdColumn, ProblemCap, RowOrder
from curate.select.subset_data import write_in_rank_order
from curate.subsets.cards import write_card
from curate.subsets.subsets import existing_version, input_fingerprints, inputs_on_disk, publish, subset_version
from curate.workspace import OxaError, Workspace
from curate.workspace.resources import sql_text
from curate.workspace.runs import StageRun
from curate.workspace.sandbox import check_expression, lock_down
from curate.workspace.schema import SUBSET_PROBLEMS, SUBSET_SAMPLES, valid_ppl

ProgressFn = Callable[[str], None]


@dataclass
class Candidates:
    """The candidates that pass a part's filter, as the arrays strategies read."""

    table: pa.Table  # sample_id, problem_id, verdict, ppl, n_tokens
    total: int  # candidates before the filter
    contaminated: int = 0  # candidates that pass the filter but hold a benchmark problem (left out of table)
    contaminated_problems: pa.Array | None = None  # their distinct problem_ids

    def __post_init__(self) -> None:
        self.ids_at = IdColumn(self.table["sample_id"], "sample_id")
        self.problems_at = IdColumn(self.table["problem_id"], "problem_id")
        self.ppl, self.ppl_missing = _numbers(self.table["ppl"], np.nan)
        self.length, self.length_missing = _numbers(self.table["n_tokens"], -1)

    def take(self, rows: np.ndarray, column: str) -> pa.Array:
        """A numeric column's values at `rows`, nulls kept."""
        values, missing = (self.ppl, self.ppl_missing) if column == "ppl" else (self.length, self.length_missing)
        return pa.array(values[rows], mask=missing[rows])


def _numbers(column: pa.ChunkedArray, fill: float) -> tuple[np.ndarray, np.ndarray]:
    """(values with nulls replaced by `fill`, where the nulls were)."""
    if column.null_count == 0:
        return column.to_numpy(), np.zeros(len(column), dtype=bool)
    return pc.fill_null(column, fill).to_numpy(), pc.is_null(column).to_numpy(zero_copy_only=False)


@dataclass
class PartResult:
    """One part's selection: the chosen rows and how every candidate was accounted for."""

    label: str
    loss_type: int
    selection: Selection
    chosen: pa.Table  # sample_id (or problem_id) and what the strategy chose it on
    unit: str  # 'samples' or 'problems'
    target: int
    funnel: dict  # {'unit', 'input', 'dropped': {reason: rows}, 'selected'}
    bins: list[dict] | None = None
    details: dict = field(default_factory=dict)
    invalid: pa.Table | None = None  # sample_id, reason of rows dropped for bad PPL/length

    def facts(self) -> dict:
        """What the run's stats and the card record of this part."""
        selected = self.funnel["selected"]
        return {
            "label": self.label,
            "strategy": self.selection.strategy,
            "loss_type": self.loss_type,
            "scores_tag": self.selection.scores_tag,
            "target": self.target,
            "selected": selected,
            "shortfall": max(self.target - selected, 0),
            "funnel": self.funnel,
            "bins": self.bins,
            "details": self.details,
        }


# -- reading candidates -------------------------------------------------------------------


def check_scores_tag(ws: Workspace, sel: Selection, label: str) -> None:
    if sel.scores_tag and sel.scores_tag not in ws.score_tags():
        raise OxaError(
            f"{label}: no scores for tag {sel.scores_tag!r} in {ws.root / 'scores'}; "
            f"tags: {', '.join(ws.score_tags()) or 'none yet (score the pool first)'}"
        )


def load_candidates(
    ws: Workspace, con: duckdb.DuckDBPyConnection, sel: Selection, label: str, dropped_methods: list[str] = ()
) -> Candidates:
    """The candidates that pass `sel.where`, with ppl and n_tokens under `sel.scores_tag`,
    less those the contamination view matches by one of `dropped_methods`."""
    tag = sel.scores_tag
    check_scores_tag(ws, sel, label)
    ppl, n_tokens = (f'"ppl_{tag}"', f'"n_tokens_{tag}"') if tag else ("NULL::DOUBLE", "NULL::BIGINT")
    con.execute(sql_text("select/scored_candidates.sql").replace("{ppl}", ppl).replace("{n_tokens}", n_tokens))
    query = sql_text("select/candidate_metadata.sql").replace("{where}", sel.where or "true")
    try:
        table = con.sql(query, params={"methods": list(dropped_methods)}).to_arrow_table()
    except duckdb.Error as exc:
        columns = con.sql("SELECT * FROM scored_candidates LIMIT 0").columns
        raise OxaError(
            f"{label}: the filter `{sel.where}` fails on the candidates view: {exc}\n"
            f"columns you can use: {', '.join(columns)}"
        ) from None
    passing = table.filter(table["kept"])
    contaminated = passing.filter(passing["contaminated"])
    kept = passing.filter(pc.invert(passing["contaminated"])).drop_columns(["kept", "contaminated"])
    if kept.num_rows == 0 and contaminated.num_rows:
        raise OxaError(
            f"{label}: every one of the {contaminated.num_rows:,} candidates that pass the filter "
            f"`{sel.where or 'true'}` holds a benchmark problem (`SELECT * FROM contamination`); "
            "check the pool, or keep them with exclude_contaminated = false"
        )
    if kept.num_rows == 0:
        raise OxaError(
            f"{label}: no candidates pass the filter `{sel.where or 'true'}` (of {table.num_rows:,} candidates)"
            + ("; ppl and n_tokens are NULL without a scores_tag" if not tag else "")
            + '; check it with `oxa sql WS "SELECT verdict, origin, count(*) FROM candidates GROUP BY ALL"`'
        )
    problems = pc.unique(contaminated["problem_id"].combine_chunks()) if contaminated.num_rows else None
    return Candidates(kept, table.num_rows, contaminated.num_rows, problems)


_DATA_DROPS = ("missing_ppl", "invalid_ppl", "missing_n_tokens", "invalid_n_tokens")


def _usable(c: Candidates, needs_ppl: bool, needs_length: bool) -> tuple[np.ndarray, dict, pa.Table | None]:
    """Rows whose PPL and length (where the strategy needs them) can be used; the others
    get the first drop reason that applies: missing_ppl, invalid_ppl (NaN, infinite,
    below 1: schema.valid_ppl, the rule ingest applies too), missing_n_tokens,
    invalid_n_tokens (< 0)."""
    checks = []
    if needs_ppl:
        checks += [c.ppl_missing, ~valid_ppl(c.ppl)]
    if needs_length:
        checks += [c.length_missing, c.length < 0]
    reason = np.zeros(c.table.num_rows, dtype=np.int8)  # 0: usable, else 1 + the index in _DATA_DROPS
    drops = {}
    for code, bad in enumerate(checks, start=1 if needs_ppl else 3):
        new = bad & (reason == 0)
        reason[new] = code
        drops[_DATA_DROPS[code - 1]] = int(new.sum())
    usable = reason == 0
    invalid = None
    if not usable.all():
        names = np.array(_DATA_DROPS)[reason[~usable] - 1]
        invalid = pa.table({"sample_id": c.table["sample_id"].filter(pa.array(~usable)), "reason": pa.array(names)})
    return usable, drops, invalid


def _check_available(label: str, sel: Selection, available: int, what: str, drops: dict) -> None:
    """N larger than what exists is an error, not a silently smaller subset."""
    if sel.n > available and not sel.allow_shortfall:
        dropped = ", ".join(f"{k} {v:,}" for k, v in drops.items() if v)
        raise OxaError(
            f"{label}: n = {sel.n:,} but only {available:,} {what}"
            + (f" (dropped: {dropped})" if dropped else "")
            + "; lower n, widen the filter, or accept a smaller subset with allow_shortfall = true"
        )


# -- the strategies -------------------------------------------------------------------------


def _sample_part(
    label: str, loss_type: int, sel: Selection, c: Candidates, needs_ppl: bool, needs_length: bool
) -> PartResult:
    """Every strategy that selects responses: drops, the strategy's own rows and order, the walk."""
    usable, bad_data, invalid = _usable(c, needs_ppl, needs_length)
    drops = {"filtered_out": c.total - c.table.num_rows - c.contaminated, "contaminated": c.contaminated, **bad_data}
    cap = ProblemCap(c.problems_at, sel.max_per_problem)
    ppl, length = c.ppl, c.length
    bins, bin_of, details = None, None, {}
    target = sel.n
    if sel.strategy in ("gaussian", "interval"):
        in_range = (ppl >= sel.p_min) & (ppl <= sel.p_max) & usable
        available = int(in_range.sum())
        drops["out_of_range"] = int(usable.sum()) - available
        _check_available(label, sel, available, f"candidates have a PPL in [{sel.p_min}, {sel.p_max}]", drops)
        if sel.strategy == "gaussian":
            params = GaussianParams(
                sel.mu, sel.sigma, sel.p_min, sel.p_max, sel.bin_width, sel.n, sel.rounding, sel.redistribute, sel.fill
            )
            chosen, bin_of, bins = select_gaussian_bins(in_range, ppl, length, c.ids_at, cap, params, sel.seed)
            target = sum(b["target"] for b in bins)
        else:
            rows = np.flatnonzero(in_range)
            chosen = cap.take(RowOrder(rows, c.ids_at, sel.seed, primary=-length[rows]), sel.n)
    else:
        if sel.strategy == "long_low_ppl" and usable.any():
            threshold = int(np.quantile(length[usable], sel.min_length_quantile, method="lower"))
            long_enough = usable & (length >= threshold)
            drops["too_short"] = int(usable.sum() - long_enough.sum())
            details["min_n_tokens"] = threshold
            usable = long_enough
        rows = np.flatnonzero(usable)
        available = len(rows)
        _check_available(label, sel, available, "candidates are usable", drops)
        primary = None if sel.strategy == "random" else ppl[rows]
        chosen = cap.take(RowOrder(rows, c.ids_at, sel.seed, primary=primary), sel.n)
    dropped = {**drops, "over_problem_cap": cap.skipped}
    dropped["beyond_target"] = available - cap.skipped - len(chosen)
    funnel = _funnel("samples", c.total, dropped, len(chosen))
    table = pa.table(
        {
            "sample_id": c.ids_at.arrow(chosen),
            "scores_tag": pa.array([sel.scores_tag] * len(chosen), pa.string()),
            "ppl": c.take(chosen, "ppl"),
            "n_tokens": c.take(chosen, "n_tokens"),
            "ppl_bin": pa.array(bin_of, pa.int32()) if bin_of is not None else pa.nulls(len(chosen), pa.int32()),
            "loss_type": pa.array([loss_type] * len(chosen), pa.int64()),
        }
    )
    return PartResult(label, loss_type, sel, table, "samples", target, funnel, bins, details, invalid)


def _funnel(unit: str, total: int, dropped: dict, selected: int) -> dict:
    """Every input row in exactly one place: dropped for a reason (filtered out, bad
    data, outside the strategy's rows, over the per-problem cap, beyond the target: never
    reached) or selected."""
    assert sum(dropped.values()) + selected == total, (total, dropped, selected)
    return {"unit": unit, "input": total, "dropped": dropped, "selected": selected}


def _pass_rate_part(label: str, sel: Selection, c: Candidates) -> PartResult:
    con = duckdb.connect()
    con.register("kept", c.table)
    rates = con.sql(sql_text("select/problem_pass_rates.sql")).to_arrow_table()
    con.close()
    judged = rates["n_judged"].to_numpy()
    correct = rates["n_correct"].to_numpy()
    enough = judged >= sel.k
    rate = np.divide(correct, judged, out=np.zeros(len(judged)), where=judged > 0)
    in_range = enough & (rate >= sel.min_pass_rate) & (rate <= sel.max_pass_rate)
    drops = {
        "fewer_than_k_samples": int((~enough).sum()),
        "pass_rate_out_of_range": int((enough & ~in_range).sum()),
    }
    rows = np.flatnonzero(in_range)
    _check_available(
        label, sel, len(rows), f"problems have a pass rate in [{sel.min_pass_rate}, {sel.max_pass_rate}]", drops
    )
    problem_ids = IdColumn(rates["problem_id"], "problem_id")
    chosen = ProblemCap(problem_ids, None).take(RowOrder(rows, problem_ids, sel.seed), sel.n)
    take = pa.array(chosen, pa.int64())
    table = pa.table(
        {
            "problem_id": problem_ids.arrow(chosen),
            "pass_rate": pa.array(rate[chosen], pa.float64()),
            "n_judged": rates["n_judged"].take(take),
            "n_correct": rates["n_correct"].take(take),
        }
    )
    samples = int(rates["n_samples"].to_numpy().sum())
    details = {
        "samples": {
            "candidates": c.total,
            "filtered_out": c.total - c.table.num_rows - c.contaminated,
            "contaminated": c.contaminated,
            "unjudged": samples - int(judged.sum()),
            "judged": int(judged.sum()),
        }
    }
    # problems whose every candidate held a benchmark problem: in the funnel's input, dropped first
    gone = 0
    if c.contaminated_problems is not None:
        gone = int(
            pc.sum(pc.invert(pc.is_in(c.contaminated_problems, value_set=rates["problem_id"].combine_chunks()))).as_py()
            or 0
        )
    dropped = {"contaminated": gone, **drops, "beyond_target": len(rows) - len(chosen)}
    funnel = _funnel("problems", rates.num_rows + gone, dropped, len(chosen))
    return PartResult(label, 0, sel, table, "problems", sel.n, funnel, None, details)


def select_candidates(c: Candidates, sel: Selection, label: str = "selection", loss_type: int = 0) -> PartResult:
    """Run one selection over candidates in memory; fails on a shortfall unless allowed."""
    if sel.strategy == "pass_rate":
        result = _pass_rate_part(label, sel, c)
    else:
        needs_ppl = sel.strategy != "random"
        needs_length = sel.strategy in ("gaussian", "interval", "long_low_ppl")
        result = _sample_part(label, loss_type, sel, c, needs_ppl, needs_length)
    if result.funnel["selected"] == 0 or (result.funnel["selected"] < result.target and not sel.allow_shortfall):
        raise OxaError(_shortfall_message(label, result))
    return result


def _shortfall_message(label: str, result: PartResult) -> str:
    sel = result.selection
    message = f"{label}: selected {result.funnel['selected']:,} of the target {result.target:,}"
    short = [b for b in result.bins or [] if b["achieved"] < b["target"]]
    if short:
        listed = ", ".join(f"{b['range']} {b['achieved']}/{b['target']}" for b in short[:8])
        message += f"; short bins (achieved/target): {listed}" + (", ..." if len(short) > 8 else "")
    over_cap = result.funnel["dropped"].get("over_problem_cap", 0)
    if over_cap:
        message += f"; the per-problem cap d = {sel.max_per_problem} skipped {over_cap:,} rows"
    fixes = ["lower n", "widen the filter"]
    if sel.strategy == "gaussian" and not sel.redistribute and sel.fill == "longest_first":
        fixes.insert(0, "set redistribute = true")
    if sel.max_per_problem is not None and over_cap:
        fixes.append("raise max_per_problem")
    if result.target == 0:
        return message + ". Every bin's target rounds down to 0: raise n, or use rounding = 'largest_remainder'"
    if result.funnel["selected"] == 0:
        return message + f". To fix: {' or '.join(fixes)}"
    return message + f". To fix: {', '.join(fixes)}, or accept it with allow_shortfall = true"


# -- the stage --------------------------------------------------------------------------------


def run_select(ws: Workspace, config: SelectConfig, progress: ProgressFn | None = None) -> dict:
    """Select `config`'s subset; returns the run's stats (also in stats.json). A version
    that exists already, whole and matching its card, is reported, never rewritten; an
    empty folder in its place is no version and is replaced; any other folder there
    (no card, a copy, damaged files) is WorkspaceDamaged, naming it and `oxa check WS
    --repair` (subsets.existing_version)."""
    config.validate()
    for label, _, part in config.parts():
        check_scores_tag(ws, part, label)
        if part.where is not None:  # its rows decide the version: the same every run
            check_expression(part.where, f"{label}: where", deterministic=True)
    tags = sorted({part.scores_tag for _, _, part in config.parts() if part.scores_tag})
    with ws.lock("subsets", f"oxa select {config.name}"):
        on_disk = inputs_on_disk(ws, tags)
        inputs = input_fingerprints(ws, tags)
        version = subset_version(config.resolved(), inputs)
        resolved = {
            "name": config.name,
            "description": config.description,
            # what --set changed from the selection the description was written for (cosmetic, as it is)
            "description_overrides": config.description_overrides(),
            "owner": config.owner,
            "selection": config.resolved(),
            "inputs": inputs,
            "version": version,
            "oxa_version": __version__,
        }
        run = StageRun(ws, "select", resolved)
        try:
            folder = existing_version(ws, config.name, version)
            if folder is not None:
                summary = f"{config.name}/{version} exists already; nothing written"
                stats = {"name": config.name, "version": version, "path": str(folder), "existing": True}
                return run.finish({"summary": summary, **stats})
            report = progress or (lambda message: None)
            return run.finish(_select_and_publish(ws, config, run, resolved, tags, on_disk, report))
        except BaseException as exc:
            run.fail(exc)
            raise


def _select_and_publish(
    ws: Workspace,
    config: SelectConfig,
    run: StageRun,
    resolved: dict,
    tags: list[str],
    on_disk: list[tuple],
    report: ProgressFn,
) -> dict:
    name, version = config.name, resolved["version"]
    con = ws.connect()
    try:
        lock_down(con, ws.root)  # the filters run here
        results = []
        for label, loss_type, part in config.parts():
            report(f"selecting {label} ({part.strategy})")
            candidates = load_candidates(ws, con, part, label, config.dropped_methods())
            results.append(select_candidates(candidates, part, label, loss_type))
        _check_disjoint(results)
        if inputs_on_disk(ws, tags) != on_disk:
            raise OxaError(
                "the workspace's tables changed while selecting (another process wrote parts); run select again"
            )
        _write_rejected(run, results)
        report("writing the subset and its card")
        created_at = datetime.now(UTC)  # microseconds: versions made in one second still sort by creation
        facts = {**resolved, "created_at": created_at.isoformat(), "run_id": run.run_id, "score_tags": tags}

        def fill(folder: Path) -> None:
            rows = _write_data(con, results, folder / "data.parquet")
            write_card(ws, con, folder, facts, results[0].unit, [r.facts() for r in results], rows)

        folder = publish(ws, name, version, fill)
    finally:
        con.close()
    rows = sum(r.funnel["selected"] for r in results)  # the catalog's subsets table reads the card
    decontamination = json.loads((folder / "card.json").read_text(encoding="utf-8"))["decontamination"]
    return {
        "summary": f"{name}/{version}: {rows:,} {results[0].unit}",
        "name": name,
        "version": version,
        "path": str(folder),
        "existing": False,
        "rows": rows,
        "parts": [r.facts() for r in results],
        "decontamination": decontamination,
        "warnings": decontamination_warnings(decontamination),
    }


def decontamination_warnings(facts: dict) -> list[str]:
    """One line for each way a subset may hold evaluation problems unknowingly."""
    if facts["run_id"] is None:
        return [
            "no `oxa decontaminate` run in this workspace: the subset was not checked against any benchmark "
            "(its card says so); run `oxa decontaminate WS` and select again"
        ]
    warnings = []
    if facts["rows_unchecked"]:
        warnings.append(
            f"{facts['rows_unchecked']:,} rows' problems were ingested after the last decontamination and were "
            "not checked; run `oxa decontaminate WS` again (it checks only what is new) and select again"
        )
    kept = {m: n for m, n in facts["rows_matched"].items() if n and m != "template"}
    if kept:
        listed = ", ".join(f"{m} {n:,}" for m, n in kept.items())
        warnings.append(f"the subset keeps rows that hold a benchmark problem ({listed}): exclude_contaminated = false")
    return warnings


def _check_disjoint(results: list[PartResult]) -> None:
    if len(results) < 2:
        return
    first, second = (set(r.chosen["sample_id"].to_pylist()) for r in results)
    both = first & second
    if both:
        raise OxaError(
            f"{len(both):,} samples are both positives and negatives (e.g. {sorted(both)[0]}); "
            "make the filters exclusive, e.g. verdict = 'correct' and verdict = 'incorrect'"
        )


def _write_rejected(run: StageRun, results: list[PartResult]) -> None:
    """The rows dropped for a missing or invalid PPL or length, by id, beside the run."""
    tables = [
        r.invalid.append_column("part", pa.array([r.label] * r.invalid.num_rows, pa.string()))
        for r in results
        if r.invalid is not None
    ]
    if tables:
        pq.write_table(pa.concat_tables(tables), run.dir / "dropped.parquet", compression="zstd")


def _write_data(con: duckdb.DuckDBPyConnection, results: list[PartResult], path: Path) -> int:
    """data.parquet: the chosen rows with their text, in selection order."""
    chosen = pa.concat_tables([r.chosen for r in results])
    chosen = chosen.append_column("rank", pa.array(np.arange(chosen.num_rows), pa.int64()))
    samples = results[0].unit == "samples"
    schema = SUBSET_SAMPLES if samples else SUBSET_PROBLEMS
    con.register("chosen", chosen)
    try:
        if samples:
            con.execute("CREATE OR REPLACE TEMP TABLE chosen_facts AS " + sql_text("select/subset_sample_facts.sql"))
        query = sql_text("select/subset_samples.sql" if samples else "select/subset_problems.sql")
        written = write_in_rank_order(con, query, chosen.num_rows, path, schema)
    finally:
        con.execute("DROP TABLE IF EXISTS chosen_facts")
        con.unregister("chosen")
    if written != chosen.num_rows:
        raise OxaError(
            f"the candidates view gave {written:,} rows for {chosen.num_rows:,} selected ids: a sample has "
            "more than one verdict or score row; check `SELECT sample_id, count(*) FROM candidates GROUP BY 1 HAVING count(*) > 1`"
        )
    return written
