-- scores_<tag>: PPL of each sample under one scoring model (WS/scores/<tag>/, described
-- by its manifest.json). oxa writes one such view per tag, {view} and {tag} filled in:
-- the view's name is the tag with '-' and '.' written as '_' (scores_qwen2_5_math_1_5b),
-- while the two columns the tag adds to candidates (sql/views.sql) keep the tag as it is,
-- so a query writes them in double quotes ("ppl_qwen2.5-math-1.5b"). The comments on the
-- view and on those two columns are here; oxa runs every COMMENT once candidates is made
-- (sql/comments.sql has the others).
CREATE OR REPLACE VIEW {view} AS
SELECT * FROM read_parquet('{ws}/scores/{tag}/{parts}', union_by_name = true);

COMMENT ON VIEW {view} IS 'One row per sample scored by the scoring model {tag} (scores/{tag}/, described by its manifest.json).';
COMMENT ON COLUMN {view}.sample_id IS 'the scored sample';
COMMENT ON COLUMN {view}.n_tokens IS 'the response tokens scored';
COMMENT ON COLUMN {view}.nll_sum IS 'the sum of their negative log-likelihoods (natural log)';
COMMENT ON COLUMN {view}.ppl IS 'the perplexity, exp(nll_sum / n_tokens)';
COMMENT ON COLUMN {view}.truncated IS 'true when the sequence was cut at --max-tokens';
COMMENT ON COLUMN candidates."ppl_{tag}" IS 'the PPL of the sample under the scoring model {tag} ({view}.ppl; NULL where not scored); in SQL: "ppl_{tag}"';
COMMENT ON COLUMN candidates."n_tokens_{tag}" IS 'the tokens {tag} scored ({view}.n_tokens); in SQL: "n_tokens_{tag}"';
