-- trl_prompt_completion: a response subset ($data: its data.parquet) as TRL conversational
-- prompt/completion rows, with loss_type (0: MLE, 1: unlikelihood); $suffix is appended
-- to each problem (the instruction, with its leading newline).
SELECT
    [{'role': 'user', 'content': problem || $suffix}] AS prompt,
    [{'role': 'assistant', 'content': response}] AS completion,
    loss_type
-- in the file's order: a plain scan keeps it (DuckDB's preserve_insertion_order, on by
-- default); ORDER BY file_row_number sorted the whole subset, long responses and all, in memory
FROM read_parquet($data);
