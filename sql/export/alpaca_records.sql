-- alpaca_records: a response subset ($data) as LLaMA-Factory alpaca records (instruction =
-- problem + $suffix, empty input, output, empty history, loss_type), as the paper's code
-- trains on.
SELECT
    problem || $suffix AS instruction,
    '' AS "input",
    response AS output,
    []::VARCHAR[] AS history,
    loss_type
FROM read_parquet($data, file_row_number = true)
ORDER BY file_row_number;
