-- trace_summary: gold answers per answer source and match method, with their conflicts and mean match score.
SELECT
    answer_source,
    match_method,
    count(*) AS problems,
    count(*) FILTER (WHERE conflict) AS conflicts,
    round(avg(match_score), 4) AS mean_score
FROM gold
GROUP BY answer_source, match_method
ORDER BY answer_source, match_method;
