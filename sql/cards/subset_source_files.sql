-- subset_source_files: the pool files that the rows of a subset ($data) come from, with how
-- many rows each gave: a row's sample's file and its problem's file (a response that
-- `oxa generate` wrote has no file; its problem has one), so a row may count under two
-- files. source_file NULL counts the rows tied to no file. {sample_id} is the subset's
-- sample_id column, or NULL for a subset of problems.
WITH subset AS (
    SELECT row_number() OVER () AS i, problem_id, {sample_id} AS sample_id FROM read_parquet($data)
),
row_files AS (
    SELECT s.i, x.source_file FROM subset AS s JOIN samples AS x USING (sample_id) WHERE x.source_file IS NOT NULL
    UNION
    SELECT s.i, x.source_file FROM subset AS s JOIN problems AS x USING (problem_id) WHERE x.source_file IS NOT NULL
)
SELECT f.source_file, count(*) AS "rows"
FROM subset AS s
LEFT JOIN row_files AS f USING (i)
GROUP BY f.source_file
ORDER BY f.source_file NULLS LAST;
