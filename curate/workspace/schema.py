"""The canonical tables' Arrow schemas (docs/architecture.md §3).

Later stages may add columns; the catalog's views read parts with union_by_name, so an
added column shows up as NULL in older parts.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

# A perplexity is exp(mean negative log-likelihood): finite and at least 1 (fp32 scoring
# may land a hair below, hence the tolerance). One rule for a PPL a source carries
# (ingest drops that score, not its sample) and a PPL in the catalog (select drops the row).
PPL_FLOOR = 1.0 - 1e-6


def valid_ppl(ppl: np.ndarray) -> np.ndarray:
    """Whether each PPL can be one: finite and >= PPL_FLOOR (NaN for a null is invalid)."""
    with np.errstate(invalid="ignore"):
        return np.isfinite(ppl) & (ppl >= PPL_FLOOR)


PROBLEMS = pa.schema(
    [
        ("problem_id", pa.string()),
        ("problem", pa.string()),
        ("source", pa.string()),
        ("category", pa.string()),
        ("gold_answer", pa.string()),
        ("instruction", pa.string()),  # instruction suffix stripped from the text, if any
        ("meta", pa.string()),  # JSON of the source row's other fields, where kept
        ("source_file", pa.string()),
        ("source_row", pa.int64()),
    ]
)

SAMPLES = pa.schema(
    [
        ("sample_id", pa.string()),
        ("problem_id", pa.string()),
        ("response", pa.string()),
        ("origin", pa.string()),  # 'teacher' | 'self'
        ("generator", pa.string()),
        ("n_chars", pa.int64()),
        ("source", pa.string()),
        ("source_file", pa.string()),
        ("source_row", pa.int64()),
        ("source_index", pa.int32()),  # position in the row's response list, where exploded
    ]
)

# pool/samples parts written by `oxa generate` (origin 'self'): the samples' columns and
# how each was drawn; ingested parts lack these and read them as NULL.
SELF_SAMPLES = pa.schema(
    [
        *SAMPLES,
        ("sampling", pa.string()),  # JSON: n, temperature, top_p, max_new_tokens, seed, instruction
        ("seed", pa.int64()),  # the prompt's seed, derived from (seed, problem_id)
        ("finish_reason", pa.string()),  # 'stop' (end of sequence) | 'length' (max_new_tokens)
    ]
)

# pool/self/<tag>/done-*.parquet: the problems `oxa generate` finished under a config,
# written after their samples, so a rerun skips them.
GENERATED_PROBLEMS = pa.schema(
    [
        ("problem_id", pa.string()),
        ("fingerprint", pa.string()),
        ("completions", pa.int64()),  # drawn
        ("written", pa.int64()),  # new samples
        ("duplicates", pa.int64()),  # the same response as another sample of the problem
        ("empty", pa.int64()),  # no text
    ]
)

ANSWERS = pa.schema(
    [
        ("problem_id", pa.string()),
        ("gold_answer", pa.string()),
        ("gold_alternatives", pa.list_(pa.string())),  # other accepted forms, e.g. minerva's
        ("answer_source", pa.string()),
        ("match_method", pa.string()),  # 'exact' | 'normalized' | 'fuzzy' | 'given'
        ("match_score", pa.float64()),
        ("conflict", pa.bool_()),
        ("source_file", pa.string()),
        ("source_row", pa.int64()),
    ]
)

# One row per problem whose references gave differing answers, as the last trace settled it.
TRACE_CONFLICTS = pa.schema(
    [
        ("problem_id", pa.string()),
        # 'equivalent' (math-verify found them equal), 'consensus', 'priority_no_agreement',
        # 'priority' or 'dropped'
        ("resolution", pa.string()),
        ("policy", pa.string()),  # the --on-conflict policy of the trace
        ("gold_answer", pa.string()),  # the answer taken (NULL when dropped)
        ("answer_source", pa.string()),
        ("match_method", pa.string()),
        ("answers", pa.list_(pa.string())),  # the differing answers, sorted
        ("answer_support", pa.list_(pa.int64())),  # teacher responses agreeing with each
        ("responses", pa.int64()),  # the problem's teacher responses
    ]
)

# The verifier and settings_hash of verdicts a source gives at ingest (`oxa ingest
# --verdict correct`): the verify view shows them whatever the gold and the last verify
# run, and `oxa verify` does not judge those samples again.
GIVEN = "given"

VERIFY = pa.schema(
    [
        ("sample_id", pa.string()),
        ("problem_id", pa.string()),
        ("gold_key", pa.string()),  # oxa_gold_key() of the gold judged against (sql/macros.sql)
        ("pred_answer", pa.string()),
        ("verdict", pa.string()),  # correct|incorrect|no_answer|bad_gold|timeout|error
        ("reason", pa.string()),  # why, for every verdict but correct and a plain incorrect
        ("simple_verdict", pa.string()),  # normalized string equality of the last box with the gold
        ("verifier", pa.string()),
        ("settings_hash", pa.string()),
    ]
)

# verify/.cache/<settings_hash>/: the verdict of each distinct (gold, answer) pair, and
# whether each gold parses, reused by later runs with the same settings.
PAIR_VERDICTS = pa.schema(
    [
        ("key", pa.string()),  # 'gold:<gold_key>' or a digest of (gold_key, answer)
        ("verdict", pa.string()),
        ("reason", pa.string()),
        ("pred_answer", pa.string()),  # the answer math-verify extracted (lenient mode)
    ]
)

SCORES = pa.schema(
    [
        ("sample_id", pa.string()),
        ("n_tokens", pa.int64()),
        ("nll_sum", pa.float64()),
        ("ppl", pa.float64()),
        ("truncated", pa.bool_()),
    ]
)

REJECTS = pa.schema(
    [
        ("source_file", pa.string()),
        ("source_row", pa.int64()),  # 0-based: line index in JSONL, item or row index otherwise
        ("source_index", pa.int32()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("preview", pa.string()),  # the start of the offending record, made printable
    ]
)

# data.parquet of a subset of responses (SFT; loss_type 0 = MLE, 1 = unlikelihood).
SUBSET_SAMPLES = pa.schema(
    [
        ("sample_id", pa.string()),
        ("problem_id", pa.string()),
        ("problem", pa.string()),
        ("response", pa.string()),
        ("gold_answer", pa.string()),
        ("source", pa.string()),
        ("origin", pa.string()),
        ("generator", pa.string()),
        ("verdict", pa.string()),
        ("scores_tag", pa.string()),  # the scoring model the row was selected on
        ("ppl", pa.float64()),
        ("n_tokens", pa.int64()),
        ("ppl_bin", pa.int32()),  # gaussian: the row's PPL bin (0-based), else null
        ("loss_type", pa.int64()),
    ]
)

# data.parquet of a subset of problems (RL prompts, strategy pass_rate).
SUBSET_PROBLEMS = pa.schema(
    [
        ("problem_id", pa.string()),
        ("problem", pa.string()),
        ("gold_answer", pa.string()),
        ("source", pa.string()),
        ("pass_rate", pa.float64()),
        ("n_judged", pa.int64()),
        ("n_correct", pa.int64()),
    ]
)

# A verl RL prompt file, exactly as verl's own (see data/formats/aime24.verl.parquet).
VERL_PROMPTS = pa.schema(
    [
        ("data_source", pa.string()),
        ("prompt", pa.list_(pa.field("element", pa.struct([("content", pa.string()), ("role", pa.string())])))),
        ("ability", pa.string()),
        ("reward_model", pa.struct([("ground_truth", pa.string()), ("style", pa.string())])),
        ("extra_info", pa.struct([("index", pa.int64()), ("split", pa.string())])),
    ]
)

# Part folders of the workspace and the schema each one holds.
# One row per (pool problem or response, benchmark problem) that `oxa decontaminate`
# matched (curate/decontaminate/matching.py).
CONTAMINATION = pa.schema(
    [
        ("problem_id", pa.string()),
        ("sample_id", pa.string()),  # the response's, where field = 'response'; else NULL
        ("field", pa.string()),  # 'problem' | 'response': the text that holds the benchmark problem
        ("benchmark", pa.string()),  # the set's name (aime24, or a file's name)
        ("benchmark_problem", pa.int64()),  # the benchmark problem's 0-based row in its file
        ("benchmark_problem_id", pa.string()),  # its problem_id (the same hash as the pool's)
        ("method", pa.string()),  # 'exact' | 'contained' | 'near' | 'template'
        ("score", pa.float64()),  # share of the benchmark problem's tokens covered by shared n-grams
        ("shared_ngrams", pa.int64()),  # distinct masked n-grams the two texts share
        ("evidence", pa.string()),  # the longest shared run, or what differs (template)
        ("fingerprint", pa.string()),  # the decontamination settings and benchmark files
    ]
)

# What `oxa decontaminate` has checked: every pool problem (and with --responses every
# response), under the settings' fingerprint, so a rerun checks only what is new.
CONTAMINATION_CHECKED = pa.schema(
    [
        ("problem_id", pa.string()),
        ("sample_id", pa.string()),
        ("field", pa.string()),
        ("fingerprint", pa.string()),
    ]
)

TABLE_FOLDERS: dict[str, tuple[str, pa.Schema]] = {
    "problems": ("pool/problems", PROBLEMS),
    "samples": ("pool/samples", SAMPLES),
    "answers": ("answers", ANSWERS),
    "trace_conflicts": ("answers/conflicts", TRACE_CONFLICTS),
    "verify": ("verify", VERIFY),
    "contamination": ("contamination", CONTAMINATION),
    "contamination_checked": ("contamination/checked", CONTAMINATION_CHECKED),
}
