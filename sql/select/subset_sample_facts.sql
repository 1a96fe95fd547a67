-- subset_sample_facts: everything a response subset's rows hold but the response itself,
-- for the chosen samples only: `chosen` (registered by oxa: each selected sample with its
-- rank, loss_type, PPL bin and the PPL and length it was selected on) is the smaller side
-- of every join, so the hash tables hold the subset's rows, not the pool's (the candidates
-- view, joined whole, built tables of every sample's verdict and score).
SELECT
    ch.sample_id,
    s.problem_id,
    p.problem,
    g.gold_answer,
    s.source,
    s.origin,
    s.generator,
    v.verdict,
    ch.scores_tag,
    ch.ppl,
    ch.n_tokens,
    ch.ppl_bin,
    ch.loss_type,
    ch.rank
FROM chosen AS ch
JOIN (SELECT sample_id, problem_id, source, origin, generator FROM samples) AS s USING (sample_id)
JOIN problems AS p USING (problem_id)
LEFT JOIN gold AS g USING (problem_id)
LEFT JOIN (
    SELECT sample_id, verdict FROM verify WHERE sample_id IN (SELECT sample_id FROM chosen)
) AS v USING (sample_id);
