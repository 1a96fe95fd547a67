-- The catalog's views over the workspace's parquet parts (docs/architecture.md §2-3).
-- oxa writes this file into WS/catalog.duckdb with {ws} replaced by the workspace's
-- absolute path (DuckDB resolves a view's relative paths against the reader's working
-- directory, so relative paths would break `duckdb WS/catalog.duckdb` run elsewhere);
-- when the workspace is moved, oxa rewrites the views on the next open.
-- {parts} is the name pattern of oxa's parts (*-<16 hex digits>.parquet): a file of any
-- other name in these folders is never read. Each folder holds a zero-row
-- _schema-0000000000000000.parquet, so a view works before any data exists.
-- What each view and column holds, for a reader of the catalog, is in sql/comments.sql
-- (written into the catalog as its COMMENTs; `oxa sql WS --describe VIEW` prints them).

-- problems: one row per distinct problem (problem_id = oxa_problem_id(problem)).
CREATE OR REPLACE VIEW problems AS
SELECT * FROM read_parquet('{ws}/pool/problems/{parts}', union_by_name = true);

-- samples: one row per candidate response (sample_id = oxa_sample_id(problem_id, response)).
CREATE OR REPLACE VIEW samples AS
SELECT * FROM read_parquet('{ws}/pool/samples/{parts}', union_by_name = true);

-- answers: every recorded gold answer, given by a source at ingest or traced; a problem
-- with more than one distinct answer has conflict = true on all its rows.
CREATE OR REPLACE VIEW answers AS
SELECT * REPLACE (
    conflict OR count(DISTINCT gold_answer) OVER (PARTITION BY problem_id) > 1 AS conflict
)
FROM read_parquet('{ws}/answers/{parts}', union_by_name = true);

-- gold: the one answer each problem is judged against, by match method (given, exact,
-- normalized, fuzzy), then answer source and answer text for a stable choice.
CREATE OR REPLACE VIEW gold AS
SELECT problem_id, gold_answer, gold_alternatives, answer_source, match_method, match_score, conflict
FROM answers
QUALIFY row_number() OVER (
    PARTITION BY problem_id
    ORDER BY list_position(['given', 'exact', 'normalized', 'fuzzy'], match_method) NULLS LAST,
             answer_source, gold_answer
) = 1;

-- trace_conflicts: the problems whose reference answers differed in the last trace, with
-- how each was settled (resolution), the answers and how many teacher responses agree with each.
CREATE OR REPLACE VIEW trace_conflicts AS
SELECT * FROM read_parquet('{ws}/answers/conflicts/{parts}', union_by_name = true);

-- verify: one verdict per sample: the verdicts written under the settings of the last
-- finished `oxa verify` run (its settings_hash), judged against the problem's current
-- gold answer (gold_key, sql/macros.sql). Verdicts under other settings, or against a
-- gold answer that tracing has since changed, stay in verify/ but out of this view;
-- `oxa verify` fills the gaps. A verdict the source gave at ingest (verifier and
-- settings_hash 'given', `oxa ingest --verdict`) holds whatever the gold and the settings,
-- and comes before any judged one.
CREATE OR REPLACE VIEW verify AS
WITH parts AS (
    SELECT * FROM read_parquet('{ws}/verify/{parts}', union_by_name = true)
),
given AS (
    SELECT * FROM parts WHERE settings_hash = 'given'
)
SELECT * FROM given
UNION ALL BY NAME
SELECT v.*
FROM parts AS v
LEFT JOIN gold AS g USING (problem_id)
WHERE v.settings_hash = (
        SELECT json_extract_string(stats, '$.settings_hash') FROM runs
        WHERE stage = 'verify' AND status = 'done'
        -- finished_at has whole seconds; two runs within one second are told apart by finished_ns
        ORDER BY finished_at DESC, TRY_CAST(json_extract_string(stats, '$.finished_ns') AS BIGINT) DESC NULLS LAST,
                 run_id DESC
        LIMIT 1)
  AND v.gold_key IS NOT DISTINCT FROM oxa_gold_key(g.gold_answer, g.gold_alternatives)
  AND v.sample_id NOT IN (SELECT sample_id FROM given);

-- decontamination_run: the last finished `oxa decontaminate` run (no row: none yet), with
-- the fingerprint of its settings and benchmark files, which the two views below follow.
CREATE OR REPLACE VIEW decontamination_run AS
SELECT run_id, finished_at, json_extract_string(stats, '$.fingerprint') AS fingerprint, stats
FROM runs
WHERE stage = 'decontaminate' AND status = 'done'
ORDER BY finished_at DESC, TRY_CAST(json_extract_string(stats, '$.finished_ns') AS BIGINT) DESC NULLS LAST,
         run_id DESC
LIMIT 1;

-- contamination: the pool problems (and responses) that the last finished
-- `oxa decontaminate` run found to hold a benchmark problem, one row per (pool text,
-- benchmark problem): method 'exact', 'contained' or 'near' (contaminated) or 'template'
-- (the benchmark problem with other numbers or expressions). Rows of a killed run or of
-- other settings stay in contamination/ but out of this view.
CREATE OR REPLACE VIEW contamination AS
SELECT * FROM read_parquet('{ws}/contamination/{parts}', union_by_name = true)
WHERE fingerprint = (SELECT fingerprint FROM decontamination_run);

-- contamination_checked: what that run checked (field 'problem': every pool problem at
-- the time; 'response': every response, with --responses). A problem ingested since is
-- not in it until `oxa decontaminate` runs again.
CREATE OR REPLACE VIEW contamination_checked AS
SELECT * FROM read_parquet('{ws}/contamination/checked/{parts}', union_by_name = true)
WHERE fingerprint = (SELECT fingerprint FROM decontamination_run);

-- candidates: samples with their problem, gold answer, verdict and PPL under every
-- scoring model (columns ppl_<tag>, n_tokens_<tag>). Selection reads only this view.
CREATE OR REPLACE VIEW candidates AS
SELECT
    s.*,
    p.problem,
    p.category,
    g.gold_answer,
    g.match_method,
    g.conflict AS gold_conflict,
    v.pred_answer,
    v.verdict{score_columns}
FROM samples AS s
JOIN problems AS p USING (problem_id)
LEFT JOIN gold AS g USING (problem_id)
LEFT JOIN verify AS v USING (sample_id){score_joins};
