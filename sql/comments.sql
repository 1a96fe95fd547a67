-- What each view, table and column of the catalog holds: oxa writes these comments into
-- WS/catalog.duckdb and into the in-memory DuckDB it reads through, so `oxa sql WS
-- --describe [VIEW]`, duckdb_views(), duckdb_columns() and the duckdb shell's DESCRIBE
-- show them. The score views' comments, and those of the two candidates columns each
-- score tag adds, are beside the score view, in sql/score_view.sql.
-- docs/sql.md#columns holds the same text (with `code` marked); tests/test_catalog_comments.py
-- keeps the two equal, so change both together.
-- oxa runs every COMMENT after the views are made, and a column comment only where its
-- view has that column: samples and candidates have sampling, seed and finish_reason
-- once `oxa generate` has written samples.

COMMENT ON VIEW problems IS 'One row per distinct problem in the pool (pool/problems/).';
COMMENT ON COLUMN problems.problem_id IS 'oxa_problem_id(problem): 24 hex digits of MD5 of the normalized problem text';
COMMENT ON COLUMN problems.problem IS 'the problem text, an instruction suffix stripped';
COMMENT ON COLUMN problems.source IS 'the data set it came from (by default the name of the ingested file)';
COMMENT ON COLUMN problems.category IS 'the category the source gives it, if any';
COMMENT ON COLUMN problems.gold_answer IS 'the answer the source gave, as given (gold holds the one verification uses)';
COMMENT ON COLUMN problems.instruction IS 'the instruction suffix stripped from the problem text at ingest, if any';
COMMENT ON COLUMN problems.meta IS 'JSON of the other fields of the source row, where kept';
COMMENT ON COLUMN problems.source_file IS 'the file it was ingested from';
COMMENT ON COLUMN problems.source_row IS 'its 0-based row in that file (line in JSONL, item or row otherwise)';

COMMENT ON VIEW samples IS 'One row per candidate response (pool/samples/): ingested, or made by oxa generate.';
COMMENT ON COLUMN samples.sample_id IS 'oxa_sample_id(problem_id, response): 24 hex digits of MD5 of problem_id, a newline and the response';
COMMENT ON COLUMN samples.problem_id IS 'the problem it answers';
COMMENT ON COLUMN samples.response IS 'the response text, exactly as given';
COMMENT ON COLUMN samples.origin IS 'teacher (ingested) or self (made by oxa generate)';
COMMENT ON COLUMN samples.generator IS 'the model that wrote it (--generator at ingest, the --tag of oxa generate)';
COMMENT ON COLUMN samples.n_chars IS 'the length of the response in characters';
COMMENT ON COLUMN samples.source IS 'the data set it came from (by default the name of the ingested file; for a generated sample, that of its problem)';
COMMENT ON COLUMN samples.source_file IS 'the file it was ingested from (NULL when generated)';
COMMENT ON COLUMN samples.source_row IS 'its 0-based row in that file (line in JSONL, item or row otherwise)';
COMMENT ON COLUMN samples.source_index IS 'its position in the list of responses of its row, or among the completions of its prompt';
COMMENT ON COLUMN samples.sampling IS 'generated samples: JSON of how it was drawn (n, temperature, top_p, max_new_tokens, seed, instruction)';
COMMENT ON COLUMN samples.seed IS 'generated samples: the seed of its prompt, derived from the run seed and problem_id';
COMMENT ON COLUMN samples.finish_reason IS 'generated samples: stop (end of sequence) or length (max_new_tokens reached)';

COMMENT ON VIEW answers IS 'Every recorded gold answer (answers/), given by a source at ingest or found by oxa trace.';
COMMENT ON COLUMN answers.problem_id IS 'the problem it answers';
COMMENT ON COLUMN answers.gold_answer IS 'the answer text';
COMMENT ON COLUMN answers.gold_alternatives IS 'other accepted forms of the same answer, if any';
COMMENT ON COLUMN answers.answer_source IS 'the data set that gave it (the source at ingest, the reference set in a trace)';
COMMENT ON COLUMN answers.match_method IS 'how it was matched to the problem: given, exact, normalized or fuzzy';
COMMENT ON COLUMN answers.match_score IS '1.0, or the ratio of a fuzzy match';
COMMENT ON COLUMN answers.conflict IS 'true on every row of a problem with more than one distinct answer';
COMMENT ON COLUMN answers.source_file IS 'the file it was read from';
COMMENT ON COLUMN answers.source_row IS 'its 0-based row in that file';

COMMENT ON VIEW gold IS 'One row per problem with an answer: the one verification uses (given, then exact, normalized, fuzzy).';
COMMENT ON COLUMN gold.problem_id IS 'the problem it answers';
COMMENT ON COLUMN gold.gold_answer IS 'the answer text';
COMMENT ON COLUMN gold.gold_alternatives IS 'other accepted forms of the same answer, if any';
COMMENT ON COLUMN gold.answer_source IS 'the data set that gave it (the source at ingest, the reference set in a trace)';
COMMENT ON COLUMN gold.match_method IS 'how it was matched to the problem: given, exact, normalized or fuzzy';
COMMENT ON COLUMN gold.match_score IS '1.0, or the ratio of a fuzzy match';
COMMENT ON COLUMN gold.conflict IS 'true when the answers of the problem differ (trace_conflicts says how it was settled)';

COMMENT ON VIEW trace_conflicts IS 'One row per problem whose reference answers differed in the last oxa trace, with how it was settled.';
COMMENT ON COLUMN trace_conflicts.problem_id IS 'the problem';
COMMENT ON COLUMN trace_conflicts.resolution IS 'equivalent, consensus, priority_no_agreement, priority or dropped';
COMMENT ON COLUMN trace_conflicts.policy IS 'the --on-conflict policy of the trace';
COMMENT ON COLUMN trace_conflicts.gold_answer IS 'the answer taken (NULL when dropped)';
COMMENT ON COLUMN trace_conflicts.answer_source IS 'the data set of the answer taken';
COMMENT ON COLUMN trace_conflicts.match_method IS 'how the answer taken was matched';
COMMENT ON COLUMN trace_conflicts.answers IS 'the differing answers, sorted';
COMMENT ON COLUMN trace_conflicts.answer_support IS 'the teacher responses agreeing with each answer, in the same order';
COMMENT ON COLUMN trace_conflicts.responses IS 'the teacher responses of the problem';

COMMENT ON VIEW verify IS 'One verdict per sample: given at ingest, else from the last finished oxa verify run, against the current gold answer.';
COMMENT ON COLUMN verify.sample_id IS 'the sample judged';
COMMENT ON COLUMN verify.problem_id IS 'its problem';
COMMENT ON COLUMN verify.gold_key IS 'oxa_gold_key() of the gold answer it was judged against';
COMMENT ON COLUMN verify.pred_answer IS 'the answer taken from the response (its last box after the thinking)';
COMMENT ON COLUMN verify.verdict IS 'correct, incorrect, no_answer, bad_gold, timeout or error';
COMMENT ON COLUMN verify.reason IS 'why, for every verdict but correct and a plain incorrect (no_box, no_think, ...)';
COMMENT ON COLUMN verify.simple_verdict IS 'the last box compared as a string with the gold forms: correct, incorrect, no_answer or bad_gold';
COMMENT ON COLUMN verify.verifier IS 'what judged it (math-verify with its version and extraction, or given)';
COMMENT ON COLUMN verify.settings_hash IS 'the hash of the verification settings (given for a verdict given at ingest)';

COMMENT ON VIEW decontamination_run IS 'The last finished oxa decontaminate run (no row: none yet).';
COMMENT ON COLUMN decontamination_run.run_id IS 'the run (runs/decontaminate/<run_id>/)';
COMMENT ON COLUMN decontamination_run.finished_at IS 'when it finished (UTC)';
COMMENT ON COLUMN decontamination_run.fingerprint IS 'the fingerprint of its settings and benchmark files';
COMMENT ON COLUMN decontamination_run.stats IS 'its stats.json';

COMMENT ON VIEW contamination IS 'One row per (pool text, benchmark problem) match of the last finished oxa decontaminate run.';
COMMENT ON COLUMN contamination.problem_id IS 'the pool problem';
COMMENT ON COLUMN contamination.sample_id IS 'the response, where field is response; else NULL';
COMMENT ON COLUMN contamination.field IS 'problem or response: the text that holds the benchmark problem';
COMMENT ON COLUMN contamination.benchmark IS 'the benchmark set (aime24, or the name of a file)';
COMMENT ON COLUMN contamination.benchmark_problem IS 'the 0-based row of the benchmark problem in its file';
COMMENT ON COLUMN contamination.benchmark_problem_id IS 'oxa_problem_id() of the benchmark problem';
COMMENT ON COLUMN contamination.method IS 'exact, contained, near (contaminated) or template (the same problem with other numbers or expressions)';
COMMENT ON COLUMN contamination.score IS 'the share of the tokens of the benchmark problem covered by shared n-grams (0-1)';
COMMENT ON COLUMN contamination.shared_ngrams IS 'the distinct masked n-grams the two texts share';
COMMENT ON COLUMN contamination.evidence IS 'the longest shared run, or what differs (template)';
COMMENT ON COLUMN contamination.fingerprint IS 'the fingerprint of the settings and benchmark files of the run';

COMMENT ON VIEW contamination_checked IS 'The texts the last finished oxa decontaminate run checked (every pool problem; every response with --responses).';
COMMENT ON COLUMN contamination_checked.problem_id IS 'the pool problem';
COMMENT ON COLUMN contamination_checked.sample_id IS 'the response, where field is response; else NULL';
COMMENT ON COLUMN contamination_checked.field IS 'problem or response';
COMMENT ON COLUMN contamination_checked.fingerprint IS 'the fingerprint of the settings and benchmark files of the run';

COMMENT ON VIEW candidates IS 'One row per sample: every samples column, with its problem, gold answer, verdict and PPL under every scoring model; selection reads only this view.';
COMMENT ON COLUMN candidates.sample_id IS 'oxa_sample_id(problem_id, response): 24 hex digits of MD5 of problem_id, a newline and the response';
COMMENT ON COLUMN candidates.problem_id IS 'the problem it answers';
COMMENT ON COLUMN candidates.response IS 'the response text, exactly as given';
COMMENT ON COLUMN candidates.origin IS 'teacher (ingested) or self (made by oxa generate)';
COMMENT ON COLUMN candidates.generator IS 'the model that wrote it (--generator at ingest, the --tag of oxa generate)';
COMMENT ON COLUMN candidates.n_chars IS 'the length of the response in characters';
COMMENT ON COLUMN candidates.source IS 'the data set it came from (by default the name of the ingested file; for a generated sample, that of its problem)';
COMMENT ON COLUMN candidates.source_file IS 'the file it was ingested from (NULL when generated)';
COMMENT ON COLUMN candidates.source_row IS 'its 0-based row in that file (line in JSONL, item or row otherwise)';
COMMENT ON COLUMN candidates.source_index IS 'its position in the list of responses of its row, or among the completions of its prompt';
COMMENT ON COLUMN candidates.sampling IS 'generated samples: JSON of how it was drawn (n, temperature, top_p, max_new_tokens, seed, instruction)';
COMMENT ON COLUMN candidates.seed IS 'generated samples: the seed of its prompt, derived from the run seed and problem_id';
COMMENT ON COLUMN candidates.finish_reason IS 'generated samples: stop (end of sequence) or length (max_new_tokens reached)';
COMMENT ON COLUMN candidates.problem IS 'the problem text (problems.problem)';
COMMENT ON COLUMN candidates.category IS 'the category of the problem (problems.category)';
COMMENT ON COLUMN candidates.gold_answer IS 'the gold answer of the problem (gold.gold_answer; NULL without one)';
COMMENT ON COLUMN candidates.match_method IS 'how that answer was matched (gold.match_method)';
COMMENT ON COLUMN candidates.gold_conflict IS 'whether the answers of the problem differ (gold.conflict)';
COMMENT ON COLUMN candidates.pred_answer IS 'the answer taken from the response (verify.pred_answer; NULL before a verdict)';
COMMENT ON COLUMN candidates.verdict IS 'its verdict (verify.verdict; NULL before one)';

COMMENT ON TABLE runs IS 'One row per finished stage run, from runs/<stage>/<run_id>/stats.json and config.json.';
COMMENT ON COLUMN runs.run_id IS 'the run (its folder is runs/<stage>/<run_id>/)';
COMMENT ON COLUMN runs.stage IS 'the stage (ingest, trace, verify, score, ...)';
COMMENT ON COLUMN runs.config_fingerprint IS 'the fingerprint of its resolved config, which names its parts';
COMMENT ON COLUMN runs.started_at IS 'when it started (UTC)';
COMMENT ON COLUMN runs.finished_at IS 'when it finished (UTC)';
COMMENT ON COLUMN runs.status IS 'done (oxa status lists the runs without a row here: running, killed, failed)';
COMMENT ON COLUMN runs.stats IS 'its stats.json';

COMMENT ON TABLE subsets IS 'One row per published subset version, from subsets/<name>/<version>/card.json.';
COMMENT ON COLUMN subsets.name IS 'the name of the subset';
COMMENT ON COLUMN subsets.version IS 'the version (its folder is subsets/<name>/<version>/)';
COMMENT ON COLUMN subsets.created_at IS 'when it was published (UTC)';
COMMENT ON COLUMN subsets.strategy IS 'the selection strategy of its config';
COMMENT ON COLUMN subsets.n_rows IS 'the rows of its data.parquet';
COMMENT ON COLUMN subsets.run_id IS 'the oxa select run that made it';
COMMENT ON COLUMN subsets.description IS 'the description of its config';

COMMENT ON TABLE oxa_meta IS 'Settings of the catalog file (its rows are in catalog.duckdb only).';
COMMENT ON COLUMN oxa_meta.key IS 'root (the folder the views were written for), catalog_digest or oxa_version';
COMMENT ON COLUMN oxa_meta.value IS 'its value';
