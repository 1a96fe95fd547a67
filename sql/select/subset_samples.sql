-- subset_samples: the published rows of a response subset, in selection order; `chosen`
-- (registered by oxa) holds each selected sample with its rank, loss_type, PPL bin and
-- the PPL and length it was selected on.
SELECT
    c.sample_id,
    c.problem_id,
    c.problem,
    c.response,
    c.gold_answer,
    c.source,
    c.origin,
    c.generator,
    c.verdict,
    ch.scores_tag,
    ch.ppl,
    ch.n_tokens,
    ch.ppl_bin,
    ch.loss_type
FROM chosen AS ch
JOIN candidates AS c USING (sample_id)
ORDER BY ch.rank;
