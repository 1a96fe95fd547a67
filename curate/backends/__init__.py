"""How oxa runs a model: the scoring and generation backends (base.py says what one does)
and the chunked lm-head log-probs (token_logprobs.py), which the trainer's loss reuses.

They sit on the curation side because `oxa score` and `oxa generate` need them (imports run
train -> curate). `load_backend("hf" | "vllm", model_path, **options)` builds one; torch and
vLLM are imported only then, so the CPU environment never needs vLLM.

Guide: docs/score-generate.md.
"""

from __future__ import annotations

from curate.backends.base import Backend

BACKENDS = ("hf", "vllm")


def load_backend(name: str, model_path: str, **options) -> Backend:
    """The backend `name` over the model folder `model_path`; options go to its constructor
    (dtype, device, token_budget, max_model_len, and the backend's own)."""
    if name == "hf":
        from curate.backends.hf import HFBackend

        return HFBackend(model_path, **options)
    if name == "vllm":
        try:
            from curate.backends.vllm import VLLMBackend
        except ImportError as exc:
            from curate.workspace import MissingExtra

            raise MissingExtra(
                f"--backend vllm needs vLLM ({exc}); install the GPU extra: pip install 'oxa[vllm]'"
            ) from exc
        return VLLMBackend(model_path, **options)
    raise ValueError(f"unknown backend {name!r}; choose one of: {', '.join(BACKENDS)}")
