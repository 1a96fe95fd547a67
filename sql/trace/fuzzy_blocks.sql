-- trace/fuzzy_blocks: candidate reference rows for the pool problems that no exact or
-- normalized match found, by n-gram blocking (never all pairs). A text's blocking keys
-- are its word bigrams (words of 3+ letters, and numbers): a bigram keeps a number with
-- its context, so templated problems that differ only in their numbers still get
-- selective keys. A problem's rarest keys (each in at most $max_df reference rows, the
-- $rare_tokens rarest kept) select the reference rows that share them, and the
-- $max_candidates rows sharing the most are scored afterwards with rapidfuzz.
-- Inputs: unmatched(problem_id, match_text), refs (REFERENCE_ROWS). The reference side
-- is tokenized once: of its bigrams only those some problem holds are kept, as integer
-- ids (r_tokens), and the problems are numbered too, so the joins, counts and rankings
-- below hash integers, not strings (at 300k references and 26k problems: 14 -> 7 s,
-- 1.9 -> 1.4 GB). Ties still break on the token's text and the ref, as before.
WITH problem_ids AS MATERIALIZED (
    SELECT problem_id, row_number() OVER () AS p FROM unmatched
),
p_tokens AS MATERIALIZED (
    SELECT DISTINCT p, unnest(oxa_bigrams(match_text)) AS token FROM unmatched JOIN problem_ids USING (problem_id)
),
token_ids AS MATERIALIZED (
    SELECT token, row_number() OVER () AS t FROM (SELECT DISTINCT token FROM p_tokens)
),
r_tokens AS MATERIALIZED (  -- every occurrence in a reference of a bigram some problem holds
    SELECT ref, t
    FROM (SELECT ref, unnest(oxa_bigrams(match_text)) AS token FROM refs)
    JOIN token_ids USING (token)
),
df AS (
    SELECT t, count(*) AS df FROM r_tokens GROUP BY t
),
rare AS MATERIALIZED (
    SELECT p, t
    FROM p_tokens JOIN token_ids USING (token) JOIN df USING (t)
    WHERE df <= $max_df
    QUALIFY row_number() OVER (PARTITION BY p ORDER BY df, token) <= $rare_tokens
),
r_rare AS (
    SELECT DISTINCT ref, t FROM r_tokens WHERE t IN (SELECT t FROM rare)
),
shared AS (
    SELECT p, ref, count(*) AS shared
    FROM rare JOIN r_rare USING (t)
    GROUP BY p, ref
    QUALIFY row_number() OVER (PARTITION BY p ORDER BY shared DESC, ref) <= $max_candidates
)
SELECT u.problem_id, s.ref, u.match_text AS pool_text, r.match_text AS ref_text
FROM shared AS s
JOIN problem_ids USING (p)
JOIN unmatched AS u USING (problem_id)
JOIN refs AS r USING (ref);
