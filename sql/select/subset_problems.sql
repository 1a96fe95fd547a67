-- subset_problems: the published rows of a prompt subset (RL problems) with their
-- selection `rank`, which oxa orders them by (curate/select/subset_data.py); `chosen`
-- (registered by oxa) holds each selected problem with its rank and pass rate.
SELECT
    p.problem_id,
    p.problem,
    g.gold_answer,
    p.source,
    ch.pass_rate,
    ch.n_judged,
    ch.n_correct,
    ch.rank
FROM chosen AS ch
JOIN problems AS p USING (problem_id)
LEFT JOIN gold AS g USING (problem_id);
