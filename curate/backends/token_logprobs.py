"""Per-token log-probabilities from hidden states, without full-vocabulary logits.

Scoring, the OXA losses and the entropy metrics all need log p(target) at each position.
`model(...).logits` would hold length x vocab fp32 numbers (8k tokens x 152k vocabulary is
5 GB); here the lm-head product, the log-softmax and its gradient run over row chunks, so
the extra memory is chunk_size x vocab whatever the length. The backward pass recomputes
each chunk's logits instead of keeping them.
"""

from __future__ import annotations

import math
import types

import torch

DEFAULT_CHUNK_SIZE = 1024
_LOG_HALF = -math.log(2.0)


class _ChunkedTargetLogprob(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk_size, with_entropy):
        n = hidden.shape[0]
        logp = torch.empty(n, dtype=torch.float32, device=hidden.device)
        lse = torch.empty(n, dtype=torch.float32, device=hidden.device)
        entropy = torch.empty(n if with_entropy else 0, dtype=torch.float32, device=hidden.device)
        for start in range(0, n, chunk_size):
            rows = slice(start, min(start + chunk_size, n))
            logits = (hidden[rows] @ weight.T).float()
            target_logits = logits.gather(1, targets[rows, None]).squeeze(1)
            # One fused log-softmax pass (logsumexp takes several over the chunk); at most two
            # chunk x vocab buffers live at a time.
            log_probs = torch.log_softmax(logits, dim=-1)
            del logits
            chunk_logp = log_probs.gather(1, targets[rows, None]).squeeze(1)
            logp[rows] = chunk_logp
            lse[rows] = target_logits - chunk_logp
            if with_entropy:
                entropy[rows] = torch.special.entr(log_probs.exp_()).sum(-1)  # -sum p log p
            del log_probs
        ctx.save_for_backward(hidden, weight, targets, lse)
        ctx.chunk_size = chunk_size
        ctx.mark_non_differentiable(entropy)
        return logp, entropy

    @staticmethod
    def backward(ctx, grad_logp, _grad_entropy):
        hidden, weight, targets, lse = ctx.saved_tensors
        grad_hidden = torch.zeros_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = (
            torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if ctx.needs_input_grad[1] else None
        )
        n = hidden.shape[0]
        for start in range(0, n, ctx.chunk_size):
            rows = slice(start, min(start + ctx.chunk_size, n))
            g = grad_logp[rows].float()
            logits = (hidden[rows] @ weight.T).float()
            # d logp / d logits = onehot(target) - softmax
            grad_logits = logits.sub_(lse[rows, None]).exp_().mul_(-g[:, None])  # in place: one chunk buffer
            grad_logits.scatter_add_(1, targets[rows, None], g[:, None])
            # The products run in the inputs' dtype (bf16 tensor cores), as autograd does for plain logits.
            grad_logits = grad_logits.to(hidden.dtype)
            if grad_hidden is not None:
                grad_hidden[rows] = grad_logits @ weight
            if grad_weight is not None:
                grad_weight += (grad_logits.T @ hidden[rows]).float()
        if grad_weight is not None:
            grad_weight = grad_weight.to(weight.dtype)
        return grad_hidden, grad_weight, None, None, None


def target_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    with_entropy: bool = False,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """log softmax(hidden @ weight.T)[target] per row, in fp32, differentiable in hidden and weight.

    hidden: (N, H) final hidden states of the positions that predict `targets` (N,);
    weight: (V, H) the lm-head matrix (no bias). With `with_entropy`, also the entropy of
    each row's full distribution (fp32, not differentiable), else None.
    """
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
        raise ValueError(
            f"expected hidden (N, H) and targets (N,), got {tuple(hidden.shape)} and {tuple(targets.shape)}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    logp, entropy = _ChunkedTargetLogprob.apply(hidden, weight, targets, chunk_size, with_entropy)
    return logp, (entropy if with_entropy else None)


def log1mexp(logp: torch.Tensor, max_logp: float = -1e-6) -> torch.Tensor:
    """log(1 - exp(logp)) for logp <= 0, stable at both ends (Maechler 2012).

    logp is clamped to `max_logp` first, so a token the model is certain of gives a large
    finite penalty (about log(1e-6)) instead of -inf.
    """
    logp = logp.clamp(max=max_logp)
    return torch.where(logp > _LOG_HALF, torch.log(-torch.expm1(logp)), torch.log1p(-torch.exp(logp)))


def lm_head_weight(model) -> torch.Tensor:
    """The output-embedding matrix of a causal LM whose logits are plain hidden @ W.T."""
    config = getattr(model, "config", None)
    for attribute in ("final_logit_softcapping", "logit_scale"):
        if getattr(config, attribute, None) not in (None, 1.0):
            raise ValueError(
                f"{type(model).__name__} scales its logits ({attribute}); chunked log-probs do not support it"
            )
    head = model.get_output_embeddings()
    if getattr(head, "bias", None) is not None:
        raise ValueError(f"{type(model).__name__} has an lm-head bias; chunked log-probs do not support it")
    return head.weight


def add_chunked_head(model, chunk_size: int = DEFAULT_CHUNK_SIZE) -> None:
    """Let the model's lm-head module compute chunked target log-probs: `head(hidden, targets)`.

    `head(hidden)` stays the plain linear layer. With targets, the call returns `target_logprobs(hidden,
    head.weight, targets, chunk_size, with_entropy=True)` as (logp, entropy). Going through a call of the
    module (rather than reading its weight from outside) is what lets module hooks do their work:
    DeepSpeed ZeRO-3 gathers the partitioned weight in the head's pre-forward hook and again before
    its backward. Idempotent; a second call changes the chunk size.
    """
    lm_head_weight(model)  # the checks: plain hidden @ W.T logits
    head = model.get_output_embeddings()
    linear_forward = getattr(head, "_oxa_linear_forward", None) or head.forward

    def forward(self, hidden, targets=None):
        if targets is None:
            return linear_forward(hidden)
        return target_logprobs(hidden, self.weight, targets, chunk_size=chunk_size, with_entropy=True)

    head._oxa_linear_forward = linear_forward
    head.forward = types.MethodType(forward, head)


def final_hidden_states(model, **inputs) -> torch.Tensor:
    """Last hidden states from the decoder body, skipping the full-vocabulary lm head."""
    return model.get_decoder()(**inputs, use_cache=False).last_hidden_state
