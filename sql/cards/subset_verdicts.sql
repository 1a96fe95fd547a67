-- subset_verdicts: rows of a response subset ($data) per loss_type and verdict.
SELECT loss_type, coalesce(verdict, 'unverified') AS verdict, count(*) AS "rows"
FROM read_parquet($data)
GROUP BY ALL
ORDER BY loss_type, verdict;
