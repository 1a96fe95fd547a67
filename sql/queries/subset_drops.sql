-- subset_drops: what each published subset dropped and why (its selection run's funnel), per part.
SELECT
    s.name,
    s.version,
    part ->> 'label' AS part,
    (part ->> 'loss_type')::INTEGER AS loss_type,
    (part -> 'funnel' ->> 'input')::BIGINT AS input,
    reason.key AS dropped_because,
    reason.value::BIGINT AS rows,
    (part -> 'funnel' ->> 'selected')::BIGINT AS selected
FROM subsets AS s
JOIN runs AS r USING (run_id),
    unnest(CAST(r.stats -> 'parts' AS JSON[])) AS t(part),
    json_each(part -> 'funnel' -> 'dropped') AS reason
WHERE reason.value::BIGINT > 0
ORDER BY s.name, s.created_at, part, rows DESC;
