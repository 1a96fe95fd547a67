"""Sampling and scoring for evaluation: chat prompts, k seeded completions per problem,
and the policy's entropy at every generated token. Shared by `oxa eval` and
`oxa eval entropy`; the backends (curate/backends/) do the model work.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from curate.benchmarks.sets import PromptSet, problem_seed
from curate.workspace import OxaError

ProgressFn = Callable[[str, int, int], None]  # (what, done, total)

GENERATED = pa.schema(
    [("problem_id", pa.string()), ("sample_index", pa.int32())]
    + [("completion", pa.string()), ("token_ids", pa.list_(pa.int32())), ("finish_reason", pa.string())]
)


def load_chat_tokenizer(model: Path):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model)
    if not tokenizer.chat_template:
        raise OxaError(
            f"{model} has no chat template (tokenizer_config.json or chat_template.jinja); evaluation prompts "
            "are chat turns: add the template of the model's instruct version, or evaluate an instruct model"
        )
    return tokenizer


def prompt_ids(tokenizer, problem: str, instruction: str) -> tuple[int, ...]:
    """The problem (and instruction) as one user turn, followed by the assistant's header."""
    content = f"{problem}\n{instruction}" if instruction else problem
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True
    )
    return tuple(tokenizer(text, add_special_tokens=False)["input_ids"])


def generate_set(backend, tokenizer, prompts: PromptSet, settings, instruction: str, progress: ProgressFn) -> pa.Table:
    """settings.n completions per problem of the set (the GENERATED columns)."""
    from curate.backends.base import GenerateItem

    per_call = max(1, 4096 // settings.n)  # a few thousand sequences per call keep vLLM's batches full
    columns: dict[str, list] = {name: [] for name in GENERATED.names}
    problems = prompts.problems
    for start in range(0, len(problems), per_call):
        chunk = problems[start : start + per_call]
        items = [
            GenerateItem(
                p.problem_id, prompt_ids(tokenizer, p.problem, instruction), problem_seed(settings.seed, p.problem_id)
            )
            for p in chunk
        ]
        for problem, completions in zip(chunk, backend.generate(items, settings)):
            for index, completion in enumerate(completions):
                columns["problem_id"].append(problem.problem_id)
                columns["sample_index"].append(index)
                columns["completion"].append(completion.text)
                columns["token_ids"].append(list(completion.token_ids))
                columns["finish_reason"].append(completion.finish_reason)
        progress(f"{prompts.name}: generating", start + len(chunk), len(problems))
    return pa.table(columns, schema=GENERATED)


def entropy_means(scorer, tokenizer, prompts: PromptSet, generated: pa.Table, instruction: str) -> list[float | None]:
    """Per completion, the mean over its tokens of the entropy of the policy's next-token
    distribution (temperature 1) at that token's position, given the prompt."""
    from curate.backends.base import ScoreItem

    context = {p.problem_id: prompt_ids(tokenizer, p.problem, instruction) for p in prompts.problems}
    items = [
        ScoreItem(str(i), context[pid], tuple(ids))
        for i, (pid, ids) in enumerate(zip(generated["problem_id"].to_pylist(), generated["token_ids"].to_pylist()))
    ]
    scored = scorer.score([item for item in items if item.target_ids], with_entropy=True)
    means = {int(s.key): s.entropy_sum / s.n_tokens for s in scored if s.n_tokens}
    return [means.get(i) for i in range(len(items))]
