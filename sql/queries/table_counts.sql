-- table_counts: rows in each canonical table (`oxa status`).
SELECT 'problems' AS "table", count(*) AS "rows" FROM problems
UNION ALL SELECT 'samples', count(*) FROM samples
UNION ALL SELECT 'answers', count(*) FROM answers
UNION ALL SELECT 'verify', count(*) FROM verify
UNION ALL SELECT 'contamination', count(*) FROM contamination;
