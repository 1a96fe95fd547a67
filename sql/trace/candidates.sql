-- trace/candidates: the reference rows that hold a pool problem, exactly (the problem_id
-- ingest would give the reference's text, method 1) or after the stronger normalization
-- (the same match_key, method 2); a row found both ways counts as exact. Inputs (made by
-- `oxa trace`): pool(problem_id, match_text, match_key), refs (REFERENCE_ROWS).
SELECT problem_id, ref, min(method) AS method, 1.0::DOUBLE AS score, NULL::VARCHAR AS edit
FROM (
    SELECT p.problem_id, r.ref, 1 AS method FROM pool AS p JOIN refs AS r ON r.exact_id = p.problem_id
    UNION ALL
    SELECT p.problem_id, r.ref, 2 AS method FROM pool AS p JOIN refs AS r ON r.match_key = p.match_key
)
GROUP BY problem_id, ref;
