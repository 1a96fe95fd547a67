-- verify/superseded: verdict rows that another row of the same sample replaced (same
-- settings hash and gold): `oxa verify --retry` judges a timeout or an error again and
-- writes a new row. Of each such sample's rows the first by (a decided verdict before a
-- timeout or error, then the part's name) stays; the others are listed here, with their
-- part, for `oxa verify` to rewrite that part without them. Parameter $glob.
WITH rows AS (
    SELECT filename, sample_id, settings_hash, gold_key, verdict
    FROM read_parquet($glob, union_by_name = true, filename = true)
),
repeated AS (
    SELECT sample_id, settings_hash, gold_key
    FROM rows
    GROUP BY ALL
    HAVING count(*) > 1
)
SELECT filename, sample_id, settings_hash
FROM rows SEMI JOIN repeated USING (sample_id, settings_hash, gold_key)
QUALIFY row_number() OVER (
    PARTITION BY sample_id, settings_hash, gold_key
    ORDER BY verdict IN ('timeout', 'error'), filename
) > 1
ORDER BY filename, sample_id;
