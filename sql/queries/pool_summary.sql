-- pool_summary: per source, problems, samples, and problems with a gold answer.
SELECT
    p.source,
    count(DISTINCT p.problem_id) AS problems,
    count(s.sample_id) AS samples,
    count(DISTINCT g.problem_id) AS with_gold,
    count(DISTINCT p.problem_id) FILTER (WHERE g.conflict) AS gold_conflicts,
    round(avg(length(p.problem)), 1) AS avg_problem_chars
FROM problems AS p
LEFT JOIN samples AS s USING (problem_id)
LEFT JOIN gold AS g USING (problem_id)
GROUP BY p.source
ORDER BY p.source;
