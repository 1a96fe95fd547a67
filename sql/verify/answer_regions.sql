-- verify/answer_regions: the answer region of each response of one pool/samples part, in
-- file order (curate/text/extract.py's answer_region): the text after the last
-- $think_end; without one, the whole response, or NULL when $require_think. The thinking,
-- most of an R1 response's bytes, is cut off here in DuckDB's threads: only the region
-- reaches Python. `missing` marks a NULL response (no region either way).
-- Parameters: $file, rows $first <= row < $end (whole row groups: the others are not
-- read), $think_end, $require_think.
SELECT
    file_row_number AS row,
    response IS NULL AS missing,
    CASE
        WHEN contains(response, $think_end) THEN split_part(response, $think_end, -1)
        WHEN NOT $require_think THEN response
    END AS region
FROM read_parquet($file, file_row_number = true)
WHERE file_row_number >= $first AND file_row_number < $end;
