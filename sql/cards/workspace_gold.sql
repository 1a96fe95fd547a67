-- workspace_gold: the pool's gold answers by how they were found (given, exact, normalized,
-- fuzzy match), with conflicts, and the problems without one.
SELECT coalesce(g.match_method, 'none') AS match_method,
       count(*) AS problems,
       count(*) FILTER (WHERE g.conflict) AS conflicts
FROM problems AS p
LEFT JOIN gold AS g USING (problem_id)
GROUP BY ALL
ORDER BY ALL;
