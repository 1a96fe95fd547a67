-- verdicts: per problem source, samples by verdict, and how often the simple verdict agrees with math-verify's.
SELECT
    p.source,
    count(*) AS samples,
    count(*) FILTER (WHERE v.verdict = 'correct') AS correct,
    count(*) FILTER (WHERE v.verdict = 'incorrect') AS incorrect,
    count(*) FILTER (WHERE v.verdict = 'no_answer') AS no_answer,
    count(*) FILTER (WHERE v.verdict = 'bad_gold') AS bad_gold,
    count(*) FILTER (WHERE v.verdict IN ('timeout', 'error')) AS timeout_or_error,
    count(*) FILTER (WHERE v.verdict IS NULL) AS unverified,
    round(avg((v.verdict = v.simple_verdict)::INTEGER) FILTER (
        WHERE v.verdict IN ('correct', 'incorrect') AND v.simple_verdict IN ('correct', 'incorrect')
    ), 4) AS simple_agreement
FROM samples AS s
JOIN problems AS p USING (problem_id)
LEFT JOIN verify AS v USING (sample_id)
GROUP BY p.source
ORDER BY p.source;
