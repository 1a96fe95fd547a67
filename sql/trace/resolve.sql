-- trace/resolve: every pool problem that tracing looked for, with what it found.
-- Inputs: pool(problem_id, ...), found (trace/found.sql: matches with their reference
-- rows, support and eligibility), support (curate/trace/evidence.py), equivalent
-- (problem_id): differing answers math-verify found equal. A problem whose usable
-- answers are all ineligible (unconfirmed fuzzy matches) is 'fuzzy_unconfirmed' and
-- gets no answer.
--
-- The chosen answer is the best eligible match (exact, then normalized, then fuzzy; a
-- higher score first), then the source listed first in --answers, then the earlier row.
-- Eligible answers that differ (by answer_key, and math-verify did not find them equal)
-- are a conflict, settled by $on_conflict: 'consensus' takes the answer most teacher
-- responses agree with when it has support and more than any other answer (else the
-- priority choice, resolution 'priority_no_agreement'); 'priority' keeps the priority
-- choice; 'drop' gives the problem no answer. A conflict keeps conflict = true.
WITH matched AS (
    SELECT problem_id, count(*) AS n_matches, count(*) FILTER (WHERE usable) AS n_usable
    FROM found
    GROUP BY problem_id
),
eligible AS (
    SELECT * FROM found WHERE eligible
),
keyed AS (
    SELECT problem_id, answer_key, max(support) AS support, max(responses) AS responses,
           first(gold_answer ORDER BY method, score DESC, rank, ref) AS gold_answer
    FROM eligible
    GROUP BY problem_id, answer_key
),
answers AS (
    SELECT
        problem_id,
        count(*) > 1 AS differ,
        count(*) > 1 AND problem_id NOT IN (SELECT problem_id FROM equivalent) AS conflict,
        list(gold_answer ORDER BY gold_answer) AS answers,
        list(support ORDER BY gold_answer) AS answer_support,
        max(responses) AS responses
    FROM keyed
    GROUP BY problem_id
),
ranked AS (
    SELECT
        problem_id,
        answer_key,
        support,
        row_number() OVER (PARTITION BY problem_id ORDER BY support DESC, answer_key) AS place,
        lead(support) OVER (PARTITION BY problem_id ORDER BY support DESC, answer_key) AS runner_up
    FROM keyed
),
consensus AS (  -- the answer with the most support, when it has some and no other has as much
    SELECT problem_id, answer_key FROM ranked WHERE place = 1 AND support > 0 AND support > coalesce(runner_up, -1)
),
by_priority AS (
    SELECT * FROM eligible
    QUALIFY row_number() OVER (PARTITION BY problem_id ORDER BY method, score DESC, rank, ref) = 1
),
by_consensus AS (
    SELECT e.* FROM eligible AS e JOIN consensus USING (problem_id, answer_key)
    WHERE problem_id IN (SELECT problem_id FROM answers WHERE conflict)
    QUALIFY row_number() OVER (PARTITION BY problem_id ORDER BY method, score DESC, rank, ref) = 1
),
chosen AS (
    SELECT * FROM by_consensus WHERE $on_conflict = 'consensus'
    UNION ALL BY NAME
    SELECT * FROM by_priority
    WHERE $on_conflict <> 'consensus' OR problem_id NOT IN (SELECT problem_id FROM by_consensus)
)
SELECT
    p.problem_id,
    CASE
        WHEN m.problem_id IS NULL THEN 'unmatched'
        WHEN m.n_usable = 0 THEN 'placeholder'
        WHEN b.problem_id IS NULL THEN 'fuzzy_unconfirmed'
        WHEN a.conflict AND $on_conflict = 'drop' THEN 'conflict_dropped'
        ELSE ['exact', 'normalized', 'fuzzy'][b.method]
    END AS outcome,
    CASE
        WHEN NOT coalesce(a.differ, false) THEN NULL
        WHEN NOT a.conflict THEN 'equivalent'
        WHEN $on_conflict = 'drop' THEN 'dropped'
        WHEN $on_conflict = 'priority' THEN 'priority'
        WHEN b.problem_id IN (SELECT problem_id FROM by_consensus) THEN 'consensus'
        ELSE 'priority_no_agreement'
    END AS resolution,
    ['exact', 'normalized', 'fuzzy'][b.method] AS match_method,
    b.score AS match_score,
    b.answer_source,
    b.gold_answer,
    b.gold_alternatives,
    b.source_file,
    b.source_row,
    b.support,
    coalesce(a.conflict, false) AS conflict,
    coalesce(m.n_matches, 0) AS n_matches,
    a.answers,
    a.answer_support,
    coalesce(a.responses, (SELECT max(responses) FROM support AS s WHERE s.problem_id = p.problem_id)) AS responses
FROM pool AS p
LEFT JOIN matched AS m USING (problem_id)
LEFT JOIN answers AS a USING (problem_id)
LEFT JOIN chosen AS b USING (problem_id)
ORDER BY p.problem_id;
