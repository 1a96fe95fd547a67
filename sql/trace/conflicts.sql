-- trace/conflicts: the pool problems whose eligible answers (trace/found.sql) differ as
-- strings (by answer_key), with those answers; `oxa trace` asks math-verify whether they
-- are all equal (0.5 and \frac{1}{2} are no conflict). Input: found.
SELECT problem_id, list(DISTINCT gold_answer ORDER BY gold_answer) AS answers
FROM found
WHERE eligible
GROUP BY problem_id
HAVING count(DISTINCT answer_key) > 1
ORDER BY problem_id;
