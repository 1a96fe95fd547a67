-- generate/todo: the problems one `oxa generate` worker is asked for, with the text that
-- goes into the prompt, and whether their completions are already written under this
-- config. oxa fills in {shard} (the worker's shard predicate over problem_id,
-- curate/score/shards.py) and {where} (the user's --where over the problems view, or true);
-- table done(problem_id) holds the problems finished under this config.
SELECT
    p.problem_id,
    p.problem,
    p.source,
    p.problem_id IN (SELECT problem_id FROM done) AS done
FROM problems AS p
WHERE {shard}
  AND ({where})
ORDER BY p.problem_id;
