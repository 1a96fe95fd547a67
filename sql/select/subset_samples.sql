-- subset_samples: the published rows of a response subset with their selection `rank`;
-- `chosen` (registered by oxa) holds each selected sample with its rank, loss_type, PPL
-- bin and the PPL and length it was selected on. Not sorted here: oxa orders the rows by
-- rank a bucket at a time (curate/select/subset_data.py), as sorting the subset's text
-- at once would hold all of it in memory.
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
    ch.loss_type,
    ch.rank
FROM chosen AS ch
JOIN candidates AS c USING (sample_id);
