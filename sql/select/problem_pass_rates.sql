-- problem_pass_rates: per problem among the selection's candidates (`kept`, registered
-- by oxa), its samples, the judged ones (correct, incorrect, or no answer; bad_gold,
-- timeout, error and unverified samples judge nothing) and the correct ones.
SELECT
    problem_id,
    count(*) AS n_samples,
    count(*) FILTER (WHERE verdict IN ('correct', 'incorrect', 'no_answer')) AS n_judged,
    count(*) FILTER (WHERE verdict = 'correct') AS n_correct
FROM kept
GROUP BY problem_id;
