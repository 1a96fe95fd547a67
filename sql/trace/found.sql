-- trace/found: every match with its reference row, the pool's support for its answer,
-- and whether that answer is eligible.
-- - confirmed: at least $confirm_min of the problem's teacher responses agree with the
--   answer, and no other answer is shared by more of them (a stray response cannot
--   confirm a templated neighbour's answer against the plurality);
-- - eligible: usable, and found by an exact or normalized match, or confirmed, or (with
--   $keep_unconfirmed) a fuzzy match whose text differs only by drift (edit IS NULL).
-- Inputs: matches(problem_id, ref, method, score, edit), refs (REFERENCE_ROWS),
-- support(problem_id, answer_key, support, rival, responses) (curate/trace/evidence.py).
WITH weighed AS (
    SELECT
        m.problem_id,
        m.method,
        m.score,
        m.edit,
        r.*,
        coalesce(s.support, 0) AS support,
        s.responses,
        coalesce(s.support, 0) >= $confirm_min AND coalesce(s.support, 0) >= coalesce(s.rival, 0) AS confirmed
    FROM matches AS m
    JOIN refs AS r USING (ref)
    LEFT JOIN support AS s ON s.problem_id = m.problem_id AND s.answer_key = r.answer_key
)
SELECT *, usable AND (method < 3 OR confirmed OR ($keep_unconfirmed AND edit IS NULL)) AS eligible
FROM weighed;
