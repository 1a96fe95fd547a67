-- subset_contamination: the rows of a subset ($data) that the last decontamination matched,
-- per method (a row matched twice counts once per method), and its rows whose problem that
-- run did not check ('unchecked': ingested after it, or no run at all). {sample_id} is the
-- subset's sample_id column, or NULL for a subset of problems.
WITH subset AS (
    SELECT row_number() OVER () AS i, problem_id, {sample_id} AS sample_id FROM read_parquet($data)
)
SELECT c.method AS what, count(DISTINCT s.i) AS "rows"
FROM subset AS s
JOIN contamination AS c
  ON (c.field = 'problem' AND c.problem_id = s.problem_id)
  OR (c.field = 'response' AND c.sample_id = s.sample_id)
GROUP BY ALL
UNION ALL
SELECT 'unchecked' AS what, count(*) AS "rows"
FROM subset
WHERE problem_id NOT IN (SELECT problem_id FROM contamination_checked WHERE field = 'problem')
ORDER BY what;
