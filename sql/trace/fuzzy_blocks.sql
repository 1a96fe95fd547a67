-- trace/fuzzy_blocks: candidate reference rows for the pool problems that no exact or
-- normalized match found, by n-gram blocking (never all pairs). A text's blocking keys
-- are its word bigrams (words of 3+ letters, and numbers): a bigram keeps a number with
-- its context, so templated problems that differ only in their numbers still get
-- selective keys. A problem's rarest keys (each in at most $max_df reference rows, the
-- $rare_tokens rarest kept) select the reference rows that share them, and the
-- $max_candidates rows sharing the most are scored afterwards with rapidfuzz.
-- Inputs: unmatched(problem_id, match_text), refs (REFERENCE_ROWS). The reference
-- side is scanned twice (counting keys, then finding the rare ones) rather than held.
WITH p_tokens AS (
    SELECT DISTINCT problem_id, unnest(oxa_bigrams(match_text)) AS token FROM unmatched
),
df AS (
    SELECT token, count(*) AS df
    FROM (SELECT unnest(oxa_bigrams(match_text)) AS token FROM refs)
    WHERE token IN (SELECT token FROM p_tokens)
    GROUP BY token
),
rare AS (
    SELECT problem_id, token
    FROM p_tokens JOIN df USING (token)
    WHERE df <= $max_df
    QUALIFY row_number() OVER (PARTITION BY problem_id ORDER BY df, token) <= $rare_tokens
),
r_rare AS (
    SELECT DISTINCT ref, token
    FROM (SELECT ref, unnest(oxa_bigrams(match_text)) AS token FROM refs)
    WHERE token IN (SELECT token FROM rare)
),
shared AS (
    SELECT problem_id, ref, count(*) AS shared
    FROM rare JOIN r_rare USING (token)
    GROUP BY problem_id, ref
    QUALIFY row_number() OVER (PARTITION BY problem_id ORDER BY shared DESC, ref) <= $max_candidates
)
SELECT s.problem_id, s.ref, u.match_text AS pool_text, r.match_text AS ref_text
FROM shared AS s
JOIN unmatched AS u USING (problem_id)
JOIN refs AS r USING (ref);
