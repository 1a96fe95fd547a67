"""The transformers backend: exact scoring and seeded sampling on CPU or CUDA.

Scoring sorts the items by length and fills batches up to a token budget. Packed batches
(the default) lay several sequences end to end in one row with position ids restarting
at 0 for each; with no attention mask and no cache, transformers turns the restarts into
a block-diagonal causal mask, so no sequence sees another (tests/test_score.py checks
this against one-sequence-at-a-time scoring). Padded batches (`packed=False`) pad each
sequence on the right instead, with no attention mask: the causal mask alone keeps every
real token from the padding after it. Only the final hidden states of the scored positions go
through the lm head, in chunks (curate.backends.token_logprobs), never length x vocab logits. On a
CUDA out-of-memory error the budget is halved and the batch retried.

This module imports only torch and transformers (bench/gpu_score.py runs with nothing else).
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import os
from collections.abc import Sequence

import torch

from curate.backends.base import Completion, GenerateItem, SamplingSettings, ScoreItem, TokenScore
from curate.backends.token_logprobs import final_hidden_states, lm_head_weight, target_logprobs

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


class ModelLoadError(ValueError):
    """The model folder does not load (the message names the folder and the cause)."""


class HFBackend:
    name = "hf"

    def __init__(
        self,
        model_path,  # a model folder, or a model object already built
        *,
        dtype: str = "auto",
        device: str = "auto",
        token_budget: int = 16384,
        max_model_len: int | None = None,
        packed: bool = True,
        chunk_size: int = 512,  # rows per lm-head chunk: chunk_size x vocab fp32 logits at a time
    ) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        if device == "auto":  # under torchrun, each worker takes its own GPU (LOCAL_RANK)
            device = f"cuda:{os.environ.get('LOCAL_RANK', '0')}" if torch.cuda.is_available() else "cpu"
        self.device = torch.device(device)
        if dtype == "auto":
            dtype = "bfloat16" if self.device.type == "cuda" else "float32"
        if dtype not in _DTYPES:
            raise ValueError(f"unknown dtype {dtype!r}; choose auto, {', '.join(_DTYPES)}")
        self.dtype = dtype
        if isinstance(model_path, str | os.PathLike):
            try:
                self.model = AutoModelForCausalLM.from_pretrained(model_path, dtype=_DTYPES[dtype])
                self.tokenizer = AutoTokenizer.from_pretrained(model_path)
            except Exception as exc:  # whatever the folder's files make transformers raise
                raise ModelLoadError(f"cannot load a causal LM from {model_path}: {exc}") from exc
        else:  # a model built in memory (the benchmarks): scoring only, no tokenizer
            self.model, self.tokenizer = model_path.to(_DTYPES[dtype]), None
        self.model.to(self.device).eval()
        self.weight = lm_head_weight(self.model)
        self.token_budget = token_budget
        self.max_model_len = max_model_len or getattr(self.model.config, "max_position_embeddings", None)
        self.packed = packed
        self.chunk_size = chunk_size

    # -- scoring ---------------------------------------------------------------------

    # On a CPU, smaller scoring batches are faster: their activations stay in the caches, and
    # batching saves little there (bench/score.py: 1024 tokens beat 2048 and 8192). The scores
    # do not depend on the batching.
    CPU_SCORE_BUDGET = 1024

    @property
    def score_budget(self) -> int:
        """Tokens per scoring batch: the token budget, at most CPU_SCORE_BUDGET on a CPU."""
        return min(self.token_budget, self.CPU_SCORE_BUDGET) if self.device.type == "cpu" else self.token_budget

    def score(self, items: Sequence[ScoreItem], with_entropy: bool = False) -> list[TokenScore]:
        """One TokenScore per item, in the items' order."""
        order = sorted(range(len(items)), key=lambda i: -_length(items[i]))
        results: dict[int, TokenScore] = {}
        start = 0
        while start < len(order):
            rows = self._next_batch(items, order, start)
            batch = [i for row in rows for i in row]
            try:
                scores = self._score_batch([[items[i] for i in row] for row in rows], with_entropy)
            except torch.cuda.OutOfMemoryError:
                if len(batch) == 1 and self.token_budget <= _length(items[batch[0]]):
                    raise
                torch.cuda.empty_cache()
                self.token_budget = max(1, self.token_budget // 2)
                continue
            results.update(zip(batch, scores))
            start += len(batch)
        return [results[i] for i in range(len(items))]

    def _next_batch(self, items: Sequence[ScoreItem], order: list[int], start: int) -> list[list[int]]:
        """Rows of items from `start` on (longest first), each row as wide as the first
        item, while rows x width fits the budget. Packed, an item joins the current row
        while it fits there (next fit); padded, every item has a row of its own."""
        width = _length(items[order[start]])
        rows, fill = [[order[start]]], width
        for i in order[start + 1 :]:
            n = _length(items[i])
            if self.packed and fill + n <= width:
                rows[-1].append(i)
                fill += n
            elif (len(rows) + 1) * width <= self.score_budget:
                rows.append([i])
                fill = n
            else:
                break
        return rows

    @torch.no_grad()
    def _score_batch(self, rows: list[list[ScoreItem]], with_entropy: bool) -> list[TokenScore]:
        """Scores of the rows' items, row by row. Packed rows are filled to the common
        width with pad tokens whose positions restart at 0: a sequence of their own."""
        batch = [item for row in rows for item in row]
        sequences = [list(item.context_ids) + list(item.target_ids) for item in batch]
        width = max(sum(_length(item) for item in row) for row in rows)
        pad = getattr(self.tokenizer, "pad_token_id", None) or 0
        ids, positions, offsets = [], [], []
        k = 0
        for r, row in enumerate(rows):
            line, place = [], []
            for _ in row:
                offsets.append(r * width + len(line))
                place.extend(range(len(sequences[k])))
                line.extend(sequences[k])
                k += 1
            place.extend(range(width - len(line)))
            ids.append(line + [pad] * (width - len(line)))
            positions.append(place)
        inputs = {"input_ids": torch.tensor(ids, device=self.device)}
        if self.packed:
            inputs["position_ids"] = torch.tensor(positions, device=self.device)
        # Padded rows need no attention mask: the padding is on the right, and under the causal
        # mask no real token sees a later position. Without a mask, attention runs its causal
        # kernel (is_causal), which skips the blocks above the diagonal.
        hidden = final_hidden_states(self.model, **inputs).flatten(0, 1)
        # the hidden state at position p predicts token p + 1
        rows, targets, owner = [], [], []
        for k, (item, offset) in enumerate(zip(batch, offsets)):
            first = max(len(item.context_ids), 1)
            n = len(item.context_ids) + len(item.target_ids)
            rows.extend(range(offset + first - 1, offset + n - 1))
            targets.extend(sequences[k][first:n])
            owner.extend([k] * (n - first))
        index = torch.tensor(rows, dtype=torch.long, device=self.device)
        logp, _, entropy = target_logprobs(
            hidden.index_select(0, index),
            self.weight,
            torch.tensor(targets, dtype=torch.long, device=self.device),
            self.chunk_size,
            with_entropy,
        )
        owners = torch.tensor(owner, dtype=torch.long, device=self.device)
        nll = torch.zeros(len(batch), dtype=torch.float64, device=self.device).index_add_(0, owners, -logp.double())
        ent = None
        if entropy is not None:
            ent = torch.zeros(len(batch), dtype=torch.float64, device=self.device).index_add_(
                0, owners, entropy.double()
            )
        counts = torch.bincount(owners, minlength=len(batch)).tolist()
        nll_list = nll.tolist()
        return [
            TokenScore(item.key, counts[k], nll_list[k], None if ent is None else float(ent[k]))
            for k, item in enumerate(batch)
        ]

    # -- generation ------------------------------------------------------------------

    @torch.no_grad()
    def generate(self, items: Sequence[GenerateItem], settings: SamplingSettings) -> list[list[Completion]]:
        """settings.n completions per item, batched across items (left-padded, under the token budget).

        Each completion draws from its own generator, seeded from (item.seed, its index): each
        next token comes from the tempered, top-p-filtered distribution with one uniform number
        from the row's own stream (_NucleusSampler), so a row's draws do not depend on the rows
        beside it (shards and resumes agree). The decoding loop is transformers' own steps,
        cut to what sampling here needs: each distinct prompt of a batch is prefilled once and
        its cache copied to its n rows, and the rows that have stopped leave the batch
        (halving the work of a CPU evaluation, where most completions stop well before the
        longest)."""
        from transformers import StaticCache

        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [] if eos is None else [eos])
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else min(eos_ids, default=0)
        rows = sorted(
            ((i, j) for i in range(len(items)) for j in range(settings.n)), key=lambda r: -len(items[r[0]].prompt_ids)
        )
        out: list[list[Completion | None]] = [[None] * settings.n for _ in items]
        start = 0
        while start < len(rows):
            longest = len(items[rows[start][0]].prompt_ids)
            size = max(1, self.token_budget // (longest + settings.max_new_tokens))
            batch = rows[start : start + size]
            start += len(batch)
            # A static cache: the same tokens as a growing one, without copying it at every step.
            cache = StaticCache(config=self.model.config, max_cache_len=longest + settings.max_new_tokens)
            tokens = self._sample_batch(
                [items[i] for i, _ in batch], [j for _, j in batch], settings, cache, sorted(eos_ids), pad
            )
            for (i, j), row in zip(batch, tokens.tolist()):
                out[i][j] = self._completion(row, eos_ids)
        return out  # type: ignore[return-value]

    def _sample_batch(
        self, items: list[GenerateItem], indices: list[int], settings: SamplingSettings, cache, eos: list[int], pad: int
    ) -> torch.Tensor:
        """The generated ids (rows x max_new_tokens; what follows a row's first end-of-sequence
        token is to be ignored) of one batch: items[r] with sample index indices[r] per row,
        the rows of one prompt side by side."""
        eos_ids = torch.tensor(eos, dtype=torch.long, device=self.device)
        forward = functools.partial(self.model, use_cache=True, **{_cache_keyword(self.model): cache})
        prompts = [items[0].prompt_ids]
        owner = [0]  # each row's prompt
        for r in range(1, len(items)):
            if items[r].prompt_ids != items[r - 1].prompt_ids:
                prompts.append(items[r].prompt_ids)
            owner.append(len(prompts) - 1)
        width, steps = max(len(p) for p in prompts), settings.max_new_tokens
        ids = torch.full((len(prompts), width), pad, dtype=torch.long)
        mask = torch.zeros((len(prompts), width + steps), dtype=torch.long)
        for row, prompt in enumerate(prompts):
            ids[row, width - len(prompt) :] = torch.tensor(prompt)
            mask[row, width - len(prompt) : width] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask[:, :width].cumsum(-1) - 1).clamp(min=0)
        logits = forward(input_ids=ids, attention_mask=mask[:, :width], position_ids=positions, logits_to_keep=1)
        logits = logits.logits[:, -1]
        owner = torch.tensor(owner, device=self.device)
        cache.reorder_cache(owner)  # every row starts from its prompt's prefill
        logits, mask, position = logits[owner], mask[owner], positions[owner, -1]
        sampler = None
        if settings.temperature > 0:
            seeds = [_row_seed(item.seed, j) for item, j in zip(items, indices)]
            sampler = _NucleusSampler(seeds, settings, self.device)
        generated = torch.full((len(items), steps), pad, dtype=torch.long, device=self.device)
        live = torch.arange(len(items), device=self.device)  # the rows in the batch, by number
        stopped = torch.zeros(len(items), dtype=torch.bool, device=self.device)
        for step in range(steps):
            next_ids = logits.argmax(-1) if sampler is None else sampler.draw(logits, step)
            generated[live, step] = next_ids
            stopped |= torch.isin(next_ids, eos_ids)
            if step == steps - 1 or stopped.all():
                break
            if stopped.sum() * 2 >= stopped.numel():  # half have stopped: drop them (copies the cache)
                keep = (~stopped).nonzero().squeeze(1)
                cache.reorder_cache(keep)
                live, next_ids, mask, position, stopped = (t[keep] for t in (live, next_ids, mask, position, stopped))
                if sampler is not None:
                    sampler.keep(keep)
            mask[:, width + step] = 1
            position = position + 1
            logits = forward(
                input_ids=next_ids[:, None], attention_mask=mask[:, : width + step + 1], position_ids=position[:, None]
            ).logits[:, -1]
        return generated

    def _completion(self, row: list[int], eos_ids: set[int]) -> Completion:
        stop = next((i for i, t in enumerate(row) if t in eos_ids), None)
        tokens = row if stop is None else row[: stop + 1]
        text = self.tokenizer.decode(tokens, skip_special_tokens=True)
        return Completion(text, tuple(tokens), "length" if stop is None else "stop")

    def close(self) -> None:
        self.model = None
        if self.device.type == "cuda":
            torch.cuda.empty_cache()


def _cache_keyword(model) -> str:
    """The forward's name for the KV cache: `cache` from transformers 5.24, `past_key_values` before."""
    return "cache" if "cache" in inspect.signature(type(model).forward).parameters else "past_key_values"


def _row_seed(seed: int, index: int) -> int:
    return int.from_bytes(hashlib.sha256(f"{seed}:{index}".encode()).digest()[:8], "little") >> 1


class _NucleusSampler:
    """Draws each row's next token from its tempered, top-p-filtered distribution.

    The nucleus is the one transformers' TopPLogitsWarper keeps: a token stays when the
    tokens at least as likely hold less than top_p of the mass before it (the most likely
    token always stays). It is found among the TOP_K most likely tokens, with a full sort
    only for the rows whose TOP_K tokens hold less than top_p (a full-vocabulary sort for
    every row and step was a quarter of the CPU demo's evaluation time). Each row draws one
    uniform per step from its own generator, by inverting the nucleus's cumulative
    distribution."""

    TOP_K = 64

    def __init__(self, seeds: list[int], settings: SamplingSettings, device: torch.device) -> None:
        generators = [torch.Generator(device="cpu").manual_seed(seed) for seed in seeds]
        self.uniforms = torch.stack(
            [torch.rand(settings.max_new_tokens, generator=g, dtype=torch.float64) for g in generators]
        ).to(device)
        self.temperature = settings.temperature
        self.top_p = settings.top_p

    def keep(self, rows: torch.Tensor) -> None:
        """Only these rows go on (in this order)."""
        self.uniforms = self.uniforms[rows]

    def draw(self, logits: torch.Tensor, step: int) -> torch.Tensor:
        """The next token of each row (rows x vocab logits at generated position `step`)."""
        uniform = self.uniforms[:, step]
        probs = torch.softmax(logits.float() / self.temperature, dim=-1)
        if self.top_p >= 1:
            return _inverse_cdf(probs, uniform)
        probs, order = probs.topk(min(self.TOP_K, probs.shape[1]), dim=-1)
        short = probs.sum(-1) < self.top_p  # the nucleus reaches past the top k: sort the whole row
        if short.any():
            full = torch.softmax(logits[short].float() / self.temperature, dim=-1).sort(dim=-1, descending=True)
            probs = torch.nn.functional.pad(probs, (0, full.values.shape[1] - probs.shape[1]))
            order = torch.nn.functional.pad(order, (0, full.values.shape[1] - order.shape[1]))
            probs[short], order[short] = full.values, full.indices
        before = probs.cumsum(-1) - probs  # the mass of the tokens ahead of each
        return order.gather(1, _inverse_cdf(probs * (before < self.top_p), uniform)[:, None])[:, 0]


def _inverse_cdf(probs: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """Per row, the first index whose cumulative mass exceeds uniform x the row's mass (never
    an index of zero mass)."""
    cumulative = probs.double().cumsum(-1)
    index = (cumulative <= (uniform * cumulative[:, -1])[:, None]).sum(-1)
    last = (probs > 0).long().cumsum(-1).argmax(-1)  # the last index of non-zero mass
    return torch.minimum(index, last)


def _length(item: ScoreItem) -> int:
    return len(item.context_ids) + len(item.target_ids)
