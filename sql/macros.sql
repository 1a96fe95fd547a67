-- Macros shared by the catalog and by oxa's own stages (ingest computes ids with these),
-- so `SELECT oxa_problem_id('...')` in a plain duckdb shell gives the id oxa stores.

-- The normalization behind problem_id: Unicode NFC; every run of whitespace (ASCII
-- whitespace and the Unicode separators, category Z: no-break space, ideographic space,
-- ...) becomes one space; leading and trailing spaces are removed. Case, punctuation and
-- LaTeX are left as they are: "x^2" and "x^{2}" are different problems here (tracing
-- uses a stronger normalization to match them).
-- The pattern matches only what must change (a run of two or more whitespace characters,
-- or one that is not a plain space), which keeps the common case fast.
CREATE OR REPLACE MACRO oxa_normalize_problem(t) AS
    trim(regexp_replace(
        nfc_normalize(t),
        '[\t\n\x0B\f\r\p{Z}]{2,}|[\t\n\x0B\f\r\x{A0}\x{1680}\x{2000}-\x{200A}\x{2028}\x{2029}\x{202F}\x{205F}\x{3000}]',
        ' ', 'g'));

-- Ids are content hashes, not secrets: MD5 (about twice as fast as SHA-256 here, which
-- matters over 2.6M long responses), cut to 24 hex digits (96 bits; the chance of any
-- collision among 10^9 ids is below 10^-11).

-- problem_id: the first 24 hex digits of MD5 of the normalized problem (UTF-8).
CREATE OR REPLACE MACRO oxa_problem_id(t) AS
    left(md5(oxa_normalize_problem(t)), 24);

-- sample_id: the first 24 hex digits of MD5 of problem_id, a newline, and the
-- response exactly as given (responses are not normalized).
CREATE OR REPLACE MACRO oxa_sample_id(problem_id, response) AS
    left(md5(problem_id || chr(10) || response), 24);

-- gold_key: the gold answer a verdict was judged against: the first 24 hex digits of MD5
-- of its accepted forms (gold_answer, then gold_alternatives) joined by U+001F; NULL
-- when there is no gold answer. The verify view keeps verdicts whose gold_key is the
-- current gold's, so a changed gold answer never leaves a stale verdict in view.
CREATE OR REPLACE MACRO oxa_gold_key(gold_answer, gold_alternatives) AS
    CASE WHEN gold_answer IS NOT NULL THEN left(md5(array_to_string(
        list_prepend(gold_answer, coalesce(gold_alternatives, []::VARCHAR[])), chr(31))), 24) END;
