-- scores_<tag>: PPL of each sample under one scoring model (WS/scores/<tag>/, described
-- by its manifest.json). oxa writes one such view per tag, {view} and {tag} filled in.
CREATE OR REPLACE VIEW {view} AS
SELECT * FROM read_parquet('{ws}/scores/{tag}/{parts}', union_by_name = true);
