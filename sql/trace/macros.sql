-- Macros of `oxa trace`'s matching SQL (sql/trace/*.sql).

-- oxa_bigrams: the blocking keys of a normalized problem text: its word bigrams, where
-- words are runs of 3+ letters and numbers ('find the 12 sum' -> 'find the', 'the 12', '12 sum').
CREATE OR REPLACE MACRO oxa_bigrams(text) AS (
    SELECT list_transform(range(1, len(w)), lambda i: w[i] || ' ' || w[i + 1])
    FROM (SELECT regexp_extract_all(text, '\p{L}{3,}|[0-9]+') AS w)
);
