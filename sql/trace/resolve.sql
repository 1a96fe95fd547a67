-- trace/resolve: every pool problem that tracing looked for, with what it found. The
-- chosen answer is the best match (exact, then normalized, then fuzzy; a higher score
-- first), then the source listed first in --answers, then the earlier row. A problem
-- whose usable answers differ (by answer_key, and math-verify did not find them equal)
-- is a conflict: kept with the chosen answer and conflict = true when $on_conflict =
-- 'priority', dropped when it is 'drop'. A problem matched only by rows without a
-- usable answer is a placeholder. Inputs: pool(problem_id, ...), refs (REFERENCE_ROWS),
-- matches(problem_id, ref, method, score), equivalent(problem_id).
WITH found AS (
    SELECT m.problem_id, m.method, m.score, r.*
    FROM matches AS m JOIN refs AS r USING (ref)
),
evidence AS (
    SELECT
        problem_id,
        count(*) AS n_matches,
        count(DISTINCT answer_key) FILTER (WHERE usable) > 1
            AND problem_id NOT IN (SELECT problem_id FROM equivalent) AS conflict,
        list(DISTINCT gold_answer ORDER BY gold_answer) FILTER (WHERE usable) AS answers
    FROM found
    GROUP BY problem_id
),
best AS (
    SELECT * FROM found WHERE usable
    QUALIFY row_number() OVER (PARTITION BY problem_id ORDER BY method, score DESC, rank, ref) = 1
)
SELECT
    p.problem_id,
    CASE
        WHEN b.problem_id IS NULL AND e.n_matches > 0 THEN 'placeholder'
        WHEN b.problem_id IS NULL THEN 'unmatched'
        WHEN e.conflict AND $on_conflict = 'drop' THEN 'conflict_dropped'
        ELSE ['exact', 'normalized', 'fuzzy'][b.method]
    END AS outcome,
    ['exact', 'normalized', 'fuzzy'][b.method] AS match_method,
    b.score AS match_score,
    b.answer_source,
    b.gold_answer,
    b.gold_alternatives,
    b.source_file,
    b.source_row,
    coalesce(e.conflict, false) AS conflict,
    coalesce(e.n_matches, 0) AS n_matches,
    e.answers
FROM pool AS p
LEFT JOIN evidence AS e USING (problem_id)
LEFT JOIN best AS b USING (problem_id)
ORDER BY p.problem_id;
