-- trace_conflicts: every problem whose reference answers differed in the last trace, how
-- it was settled (consensus of the pool's responses, priority, dropped, or equivalent
-- forms), the answer taken, the differing answers and the teacher responses agreeing
-- with each.
SELECT
    c.resolution,
    c.problem_id,
    c.gold_answer,
    c.answer_source,
    c.answers,
    c.answer_support,
    c.responses,
    left(p.problem, 120) AS problem
FROM trace_conflicts AS c
LEFT JOIN problems AS p USING (problem_id)
ORDER BY c.resolution, c.problem_id;
