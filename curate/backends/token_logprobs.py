"""Per-token log-probabilities from hidden states, without full-vocabulary logits.

Scoring, the OXA losses and the entropy metrics all need log p(target) at each position.
`model(...).logits` would hold length x vocab fp32 numbers (8k tokens x 152k vocabulary is
5 GB); here the lm-head product, the log-softmax and its gradient run over row chunks, so
the extra memory is chunk_size x vocab whatever the length. The backward pass recomputes
each chunk's logits instead of keeping them. The logits are fp32 whatever the model's
dtype (a bf16 logit of 30 is off by up to 0.06, which moves 1 - p by 6% near p = 1).

The unlikelihood term needs log(1 - p), which log p cannot give near p = 1: there log p is
about -(1 - p), and its fp32 rounding (~6e-8) is a large part of 1 - p. So the chunk also
computes log(1 - p) from the other tokens' probabilities, and the backward pass takes its
gradient from the same quantities, with no subtraction of nearly equal numbers.
"""

from __future__ import annotations

import math
import types
from typing import NamedTuple

import torch

DEFAULT_CHUNK_SIZE = 1024
_LOG_HALF = -math.log(2.0)


class TokenLogprobs(NamedTuple):
    """Per target token, fp32: log p and log(1 - p) (differentiable), and the entropy of its row."""

    logp: torch.Tensor
    log_complement: torch.Tensor | None  # None unless asked for
    entropy: torch.Tensor | None  # None unless asked for; never differentiable


_FP32_OUT_MM = {"supported": True}  # torch.mm(..., out_dtype=float32): CUDA, torch >= 2.8


def _chunk_logits(hidden: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """hidden @ weight.T in fp32: a bf16 product accumulates in fp32 and stays fp32 (on CUDA
    at bf16 speed; on a CPU from fp32 copies). Where torch cannot (CUDA before torch 2.8),
    the product is rounded to the inputs' dtype first, as a plain lm head's logits are."""
    if hidden.dtype == torch.float32 and weight.dtype == torch.float32:
        return hidden @ weight.T
    if not hidden.is_cuda:
        return hidden.float() @ weight.float().T
    if _FP32_OUT_MM["supported"]:
        try:
            return torch.mm(hidden, weight.T, out_dtype=torch.float32)
        except torch.cuda.OutOfMemoryError:
            raise
        except (TypeError, RuntimeError, NotImplementedError):  # no out_dtype in this torch or for this GPU
            _FP32_OUT_MM["supported"] = False
    return (hidden @ weight.T).float()


class _ChunkedTargetLogprob(torch.autograd.Function):
    @staticmethod
    def forward(ctx, hidden, weight, targets, chunk_size, with_entropy, with_complement):
        n = hidden.shape[0]
        logp = torch.empty(n, dtype=torch.float32, device=hidden.device)
        lse = torch.empty(n, dtype=torch.float32, device=hidden.device)
        entropy = torch.empty(n if with_entropy else 0, dtype=torch.float32, device=hidden.device)
        log_complement = torch.empty(n if with_complement else 0, dtype=torch.float32, device=hidden.device)
        for start in range(0, n, chunk_size):
            rows = slice(start, min(start + chunk_size, n))
            target = targets[rows, None]
            logits = _chunk_logits(hidden[rows], weight)
            target_logits = logits.gather(1, target).squeeze(1)
            # One fused log-softmax pass (logsumexp takes several over the chunk); at most two
            # chunk x vocab buffers live at a time.
            log_probs = torch.log_softmax(logits, dim=-1)
            chunk_logp = log_probs.gather(1, target).squeeze(1)
            chunk_lse = target_logits - chunk_logp
            logp[rows], lse[rows] = chunk_logp, chunk_lse
            if with_entropy or with_complement:
                probs = log_probs.exp_()  # in place: the same buffer
                if with_complement:
                    # 1 - p as the other tokens' mass where p > 1/2; below, log1p(-p) is exact.
                    others = probs.scatter_(1, target, 0.0).sum(-1)
                    log_complement[rows] = torch.where(
                        chunk_logp > _LOG_HALF, others.log(), torch.log1p(-chunk_logp.exp())
                    )
                if with_entropy:
                    # H = log Z - sum_j p_j z_j: a row-wise dot product (no chunk-sized temporary,
                    # no logarithm per entry, unlike -sum p log p)
                    expected = torch.einsum("ij,ij->i", probs, logits)
                    if with_complement:  # the target's share, zeroed above
                        expected += chunk_logp.exp() * target_logits
                    entropy[rows] = chunk_lse - expected
                del probs
            del logits, log_probs
        ctx.save_for_backward(hidden, weight, targets, lse, logp, log_complement)
        ctx.chunk_size = chunk_size
        ctx.with_complement = with_complement
        ctx.mark_non_differentiable(entropy)
        if not with_complement:
            ctx.mark_non_differentiable(log_complement)
        return logp, log_complement, entropy

    @staticmethod
    def backward(ctx, grad_logp, grad_complement, _grad_entropy):
        hidden, weight, targets, lse, logp, log_complement = ctx.saved_tensors
        grad_hidden = torch.zeros_like(hidden) if ctx.needs_input_grad[0] else None
        grad_weight = (
            torch.zeros(weight.shape, dtype=torch.float32, device=weight.device) if ctx.needs_input_grad[1] else None
        )
        n = hidden.shape[0]
        for start in range(0, n, ctx.chunk_size):
            rows = slice(start, min(start + ctx.chunk_size, n))
            target = targets[rows, None]
            g = grad_logp[rows].float()
            p = logp[rows].exp()
            # d log p / dz = onehot - softmax; d log(1 - p) / dz_j = softmax_j x p / (1 - p) off the
            # target and -p on it. Every token but the target gets softmax_j x scale.
            scale = -g
            if ctx.with_complement:
                g_complement = grad_complement[rows].float()
                complement = log_complement[rows].exp()
                odds = (logp[rows] - log_complement[rows]).exp()  # p / (1 - p), never 1/(1-p) - 1
                scale = scale + torch.where(g_complement != 0, g_complement * odds, 0.0)
                on_target = g * complement - g_complement * p
            else:
                on_target = g * -torch.expm1(logp[rows])
            logits = _chunk_logits(hidden[rows], weight)
            grad_logits = logits.sub_(lse[rows, None]).exp_().mul_(scale[:, None])  # in place: one chunk buffer
            grad_logits.scatter_(1, target, on_target[:, None])
            # The products run in the inputs' dtype (bf16 tensor cores), as autograd does for plain logits.
            grad_logits = grad_logits.to(hidden.dtype)
            if grad_hidden is not None:
                grad_hidden[rows] = grad_logits @ weight
            if grad_weight is not None:
                grad_weight += (grad_logits.T @ hidden[rows]).float()
        if grad_weight is not None:
            grad_weight = grad_weight.to(weight.dtype)
        return grad_hidden, grad_weight, None, None, None, None


def target_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    targets: torch.Tensor,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    with_entropy: bool = False,
    with_complement: bool = False,
) -> TokenLogprobs:
    """log softmax(hidden @ weight.T)[target] per row, in fp32, differentiable in hidden and weight.

    hidden: (N, H) final hidden states of the positions that predict `targets` (N,);
    weight: (V, H) the lm-head matrix (no bias). With `with_complement`, also log(1 - p) of
    each target (differentiable, exact near p = 1); with `with_entropy`, the entropy of each
    row's full distribution (not differentiable). Those not asked for are None.
    """
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
        raise ValueError(
            f"expected hidden (N, H) and targets (N,), got {tuple(hidden.shape)} and {tuple(targets.shape)}"
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be positive, got {chunk_size}")
    logp, log_complement, entropy = _ChunkedTargetLogprob.apply(
        hidden, weight, targets, chunk_size, with_entropy, with_complement
    )
    return TokenLogprobs(logp, log_complement if with_complement else None, entropy if with_entropy else None)


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
    head.weight, targets, chunk_size, with_entropy=True, with_complement=True)`. Going through a call of the
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
        return target_logprobs(hidden, self.weight, targets, chunk_size, with_entropy=True, with_complement=True)

    head._oxa_linear_forward = linear_forward
    head.forward = types.MethodType(forward, head)


def final_hidden_states(model, **inputs) -> torch.Tensor:
    """Last hidden states from the decoder body, skipping the full-vocabulary lm head."""
    return model.get_decoder()(**inputs, use_cache=False).last_hidden_state
