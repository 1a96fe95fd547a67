-- subset_problems: the published rows of a prompt subset (RL problems), in selection
-- order; `chosen` (registered by oxa) holds each selected problem with its rank and
-- pass rate.
SELECT
    p.problem_id,
    p.problem,
    g.gold_answer,
    p.source,
    ch.pass_rate,
    ch.n_judged,
    ch.n_correct
FROM chosen AS ch
JOIN problems AS p USING (problem_id)
LEFT JOIN gold AS g USING (problem_id)
ORDER BY ch.rank;
