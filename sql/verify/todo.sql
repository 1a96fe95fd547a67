-- verify/todo: the samples of one pool/samples part that still need a verdict under the
-- run's settings: no verdict yet, or one judged against another gold answer (a verdict
-- given at ingest holds against any). Inputs (created by `oxa verify`): table
-- gold(problem_id, gold_key, gold_answer, gold_alternatives) and table done(sample_id,
-- gold_key, given); parameter $file.
-- `row` is the sample's row in the file, so its response can be read alongside.
SELECT
    s.file_row_number AS row,
    s.sample_id,
    s.problem_id,
    g.gold_key,
    g.gold_answer,
    g.gold_alternatives
FROM read_parquet($file, file_row_number = true) AS s
LEFT JOIN gold AS g USING (problem_id)
ANTI JOIN done AS d ON d.sample_id = s.sample_id AND (d.given OR d.gold_key IS NOT DISTINCT FROM g.gold_key)
ORDER BY row;
