-- score/todo: the samples one `oxa score` worker is asked for, where their responses lie
-- (file, row), and whether the tag already holds a score for them under this config.
-- oxa fills in {shard} (the worker's shard predicate over sample_id, curate/score/shards.py)
-- and {where} (the user's --where over the candidates view, or true); table done(sample_id)
-- holds the ids scored under this config; parameter $glob names the pool/samples parts.
-- The order (file, row) is stable, so a rerun cuts the same blocks of rows.
SELECT
    s.filename AS file,
    s.file_row_number AS row,
    s.sample_id,
    s.problem_id,
    s.sample_id IN (SELECT sample_id FROM done) AS done
FROM read_parquet($glob, filename = true, file_row_number = true, union_by_name = true) AS s
WHERE {shard}
  AND s.sample_id IN (SELECT sample_id FROM candidates WHERE {where})
ORDER BY file, row;
