-- subset_sources: rows and problems of a subset ($data: its data.parquet) per source.
SELECT source, count(*) AS "rows", count(DISTINCT problem_id) AS problems
FROM read_parquet($data)
GROUP BY source
ORDER BY "rows" DESC, source;
