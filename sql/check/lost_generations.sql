-- Problems that `oxa generate` marked done (pool/self/<tag>/done-*.parquet) holding fewer
-- of their generated samples now than it wrote: a samples part was lost, and the marker
-- would stop a rerun from making them again. For `oxa check`.
WITH done AS (
    SELECT problem_id, sum(written) AS written
    FROM read_parquet('{done}', union_by_name = true)
    GROUP BY problem_id
),
have AS (
    SELECT problem_id, count(*) AS n
    FROM samples
    WHERE origin = 'self' AND generator = $generator
    GROUP BY problem_id
)
SELECT problem_id
FROM done LEFT JOIN have USING (problem_id)
WHERE done.written > coalesce(have.n, 0)
ORDER BY problem_id;
