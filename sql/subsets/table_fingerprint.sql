-- table_fingerprint: an order-free digest of the rows a view holds, for the version of a
-- subset (curate/subsets/subsets.py): the row count and the sum of each row's hash over
-- {columns} (the view's columns but those that say where a row came from). How the rows
-- are split into parquet parts, and in what order they are read, does not change it; a
-- changed, added or removed row does. Parameter $given: the settings_hash of verdicts a
-- source gave at ingest, whose reason (it names the ingest run) is provenance too.
SELECT count(*) AS n_rows, coalesce(sum(hash({columns})), 0)::VARCHAR AS row_hash_sum
FROM {view};
