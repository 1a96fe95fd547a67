-- alpaca_records: a response subset ($data) as LLaMA-Factory alpaca records (instruction =
-- problem + $suffix, empty input, output, empty history, loss_type), as the paper's code
-- trains on.
SELECT
    problem || $suffix AS instruction,
    '' AS "input",
    response AS output,
    []::VARCHAR[] AS history,
    loss_type
-- in the file's order: a plain scan keeps it (DuckDB's preserve_insertion_order, on by
-- default); ORDER BY file_row_number sorted the whole subset, long responses and all, in memory
FROM read_parquet($data);
