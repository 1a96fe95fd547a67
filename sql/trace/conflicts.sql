-- trace/conflicts: the pool problems whose matched reference rows give usable answers
-- that differ as strings (by answer_key), with those answers; `oxa trace` asks
-- math-verify whether they are all equal (0.5 and \frac{1}{2} are no conflict).
-- Inputs: refs (REFERENCE_ROWS), matches(problem_id, ref, method, score).
SELECT problem_id, list(DISTINCT gold_answer ORDER BY gold_answer) AS answers
FROM matches JOIN refs USING (ref)
WHERE usable
GROUP BY problem_id
HAVING count(DISTINCT answer_key) > 1
ORDER BY problem_id;
