-- verl_prompts: the problems of a subset ($data) as verl RL prompt rows (the layout of
-- data/formats/aime24.verl.parquet), one per problem in order of first appearance;
-- $suffix is appended to each problem. $data_source names the scorer of verl's default
-- reward (verl/utils/reward_score/__init__.py default_compute_score routes by it); the
-- pool's own source and oxa's problem_id ride in extra_info, which verl hands to the
-- reward function as it is.
SELECT
    $data_source AS data_source,
    [{'content': problem || $suffix, 'role': 'user'}] AS prompt,
    'math' AS ability,
    {'ground_truth': gold_answer, 'style': 'rule'} AS reward_model,
    {
        'index': row_number() OVER (ORDER BY first_row) - 1,
        'split': 'train',
        'source': source,
        'problem_id': problem_id
    } AS extra_info
FROM (
    SELECT problem_id, any_value(problem) AS problem, any_value(source) AS source,
           any_value(gold_answer) AS gold_answer, min(file_row_number) AS first_row
    FROM read_parquet($data, file_row_number = true)
    GROUP BY problem_id
)
ORDER BY first_row;
