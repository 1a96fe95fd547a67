-- subset_pass_rates: problems of a prompt subset ($data) per pass rate.
SELECT round(pass_rate, 4) AS pass_rate, count(*) AS problems
FROM read_parquet($data)
GROUP BY ALL
ORDER BY pass_rate;
