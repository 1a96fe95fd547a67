-- subset_ppl_lengths: per loss_type of a response subset ($data: its data.parquet), rows,
-- problems, the PPL distribution and the token-length percentiles.
SELECT
    loss_type,
    count(*) AS "rows",
    count(DISTINCT problem_id) AS problems,
    min(ppl) AS ppl_min,
    quantile_cont(ppl, 0.1) AS ppl_p10,
    quantile_cont(ppl, 0.5) AS ppl_p50,
    quantile_cont(ppl, 0.9) AS ppl_p90,
    max(ppl) AS ppl_max,
    avg(ppl) AS ppl_mean,
    quantile_cont(n_tokens, 0.5) AS tokens_p50,
    quantile_cont(n_tokens, 0.9) AS tokens_p90,
    quantile_cont(n_tokens, 0.99) AS tokens_p99,
    avg(n_tokens) AS tokens_mean,
    max(n_tokens) AS tokens_max
FROM read_parquet($data)
GROUP BY loss_type
ORDER BY loss_type;
