-- subset_overlap: rows of two subsets' data.parquet ($first, $second) in both, only in the
-- first, only in the second, compared by {key} (sample_id, or problem_id for prompt sets).
WITH first AS (SELECT DISTINCT {key} AS k FROM read_parquet($first)),
     second AS (SELECT DISTINCT {key} AS k FROM read_parquet($second))
SELECT
    count(*) FILTER (WHERE first.k IS NOT NULL AND second.k IS NOT NULL) AS common,
    count(*) FILTER (WHERE second.k IS NULL) AS only_first,
    count(*) FILTER (WHERE first.k IS NULL) AS only_second
FROM first FULL OUTER JOIN second ON first.k = second.k;
