-- negative_rows: how many rows of a response subset ($data) have loss_type 1 (wrong
-- answers, suppressed by the unlikelihood term). `oxa export --format trl|alpaca`
-- refuses to hand them to a trainer that would train them as positives unless
-- --negatives says what they become.
SELECT count(*) AS negatives
FROM read_parquet($data)
WHERE loss_type = 1;
