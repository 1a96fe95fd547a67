-- candidate_metadata: per candidate, the columns the selection strategies read, and
-- whether it passes the selection's filter ({where}, a SQL predicate from the config,
-- on lines of its own so that a trailing comment in it ends there; NULL counts as not
-- passing), and whether the last decontamination matched it by one of the methods the
-- subset leaves out ($methods: its problem, or with --responses the response itself).
SELECT
    sample_id,
    problem_id,
    verdict,
    ppl,
    n_tokens,
    coalesce((
        {where}
    ), false) AS kept,
    problem_id IN (
        SELECT problem_id FROM contamination WHERE field = 'problem' AND list_contains($methods::VARCHAR[], method)
    ) OR sample_id IN (
        SELECT sample_id FROM contamination WHERE field = 'response' AND list_contains($methods::VARCHAR[], method)
    ) AS contaminated
FROM scored_candidates;
