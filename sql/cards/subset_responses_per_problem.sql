-- subset_responses_per_problem: how many problems of a response subset ($data) have 1, 2,
-- ... responses in it.
SELECT responses, count(*) AS problems
FROM (SELECT problem_id, count(*) AS responses FROM read_parquet($data) GROUP BY problem_id)
GROUP BY responses
ORDER BY responses;
