-- Rows that no part should hold, for `oxa check` (one row per kind that has any):
-- ids missing or held twice (a part copied in under another name, or another file named
-- like a part), and rows whose parent is gone (a sample without its problem, a verdict,
-- score or answer without its sample or problem), left when a part was lost or removed.
-- Python adds one UNION ALL branch per scores_<tag> view where the last branch ends.
WITH found AS (
    SELECT 'pool/problems' AS folder, 'problem_id missing' AS problem, count(*) AS n_rows
    FROM problems WHERE problem_id IS NULL
    UNION ALL
    SELECT 'pool/problems', 'problem_id held by more than one row', count(*) - count(DISTINCT problem_id)
    FROM problems
    UNION ALL
    SELECT 'pool/samples', 'sample_id missing', count(*) FROM samples WHERE sample_id IS NULL
    UNION ALL
    SELECT 'pool/samples', 'sample_id held by more than one row', count(*) - count(DISTINCT sample_id)
    FROM samples
    UNION ALL
    SELECT 'pool/samples', 'sample whose problem is not in problems', count(*)
    FROM samples s ANTI JOIN problems p USING (problem_id)
    UNION ALL
    SELECT 'answers', 'answer whose problem is not in problems', count(*)
    FROM answers a ANTI JOIN problems p USING (problem_id)
    UNION ALL
    SELECT 'verify', 'verdict whose sample is not in samples', count(*)
    FROM read_parquet('{ws}/verify/{parts}', union_by_name = true) v ANTI JOIN samples s USING (sample_id)
    UNION ALL
    SELECT 'contamination', 'finding whose problem is not in problems', count(*)
    FROM contamination c ANTI JOIN problems p USING (problem_id)
    {score_checks}
)
SELECT folder, problem, n_rows FROM found WHERE n_rows > 0 ORDER BY folder, problem;
