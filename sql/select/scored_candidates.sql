-- scored_candidates: the candidates view with one scoring model's columns also under the
-- plain names ppl and n_tokens, so a selection's filter reads the same names whatever
-- the model. oxa fills in {ppl} and {n_tokens}: "ppl_<tag>" and "n_tokens_<tag>", or
-- typed NULLs for a selection without a scores_tag.
CREATE OR REPLACE TEMP VIEW scored_candidates AS
SELECT *, {ppl} AS ppl, {n_tokens} AS n_tokens
FROM candidates;
