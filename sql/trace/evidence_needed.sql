-- trace/evidence_needed: the answers tracing asks the pool's responses about before it
-- takes them (curate/trace/evidence.py): every usable answer of a problem found only by
-- fuzzy matching, and every answer of a problem whose references give differing
-- answers. One row per (problem, answer_key), with the forms of its first source row.
-- Inputs: matches(problem_id, ref, method, score, edit), refs (REFERENCE_ROWS).
WITH found AS (
    SELECT m.problem_id, m.method, r.answer_key, r.gold_answer, r.gold_alternatives, r.rank, r.ref
    FROM matches AS m JOIN refs AS r USING (ref)
    WHERE r.usable
)
SELECT
    problem_id,
    answer_key,
    first(gold_answer ORDER BY rank, ref) AS gold_answer,
    first(gold_alternatives ORDER BY rank, ref) AS gold_alternatives
FROM found
WHERE problem_id IN (
    SELECT problem_id FROM found GROUP BY problem_id HAVING min(method) = 3 OR count(DISTINCT answer_key) > 1
)
GROUP BY problem_id, answer_key
ORDER BY problem_id, answer_key;
