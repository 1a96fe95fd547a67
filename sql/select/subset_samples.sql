-- subset_samples: the published rows of a response subset with their selection `rank`:
-- each chosen sample's response beside its facts (`chosen_facts`, made by oxa from
-- subset_sample_facts.sql), in the columns' order of data.parquet. The pool's responses
-- stream past the facts, the small side of the join. Not sorted here: oxa orders the rows
-- by rank a bucket at a time (curate/select/subset_data.py), as sorting the subset's text
-- at once would hold all of it in memory.
SELECT
    f.sample_id,
    f.problem_id,
    f.problem,
    s.response,
    f.gold_answer,
    f.source,
    f.origin,
    f.generator,
    f.verdict,
    f.scores_tag,
    f.ppl,
    f.n_tokens,
    f.ppl_bin,
    f.loss_type,
    f.rank
FROM (SELECT sample_id, response FROM samples) AS s
JOIN chosen_facts AS f USING (sample_id);
