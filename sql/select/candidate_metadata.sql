-- candidate_metadata: per candidate, the columns the selection strategies read, and
-- whether it passes the selection's filter ({where}, a SQL predicate from the config,
-- on lines of its own so that a trailing comment in it ends there; NULL counts as not
-- passing).
SELECT
    sample_id,
    problem_id,
    verdict,
    ppl,
    n_tokens,
    coalesce((
        {where}
    ), false) AS kept
FROM scored_candidates;
