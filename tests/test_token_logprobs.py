"""The chunked lm-head log-probs against full-logit fp64 references: log p, log(1 - p) and the
entropy with their gradients, on ordinary rows and on rows the model is nearly sure of
(1 - p from 1e-2 down to 1e-9), where log(1 - p) cannot come from log p in fp32."""

import math

import pytest

torch = pytest.importorskip("torch")

from curate.backends.token_logprobs import target_logprobs  # noqa: E402
from train.sft.loss import TermCounts, oxa_loss  # noqa: E402


def naive(hidden, weight, targets):
    """log p, log(1 - p) (the other tokens' log-sum-exp minus all of them) and entropy, in fp64."""
    logits = hidden.double() @ weight.double().T
    logp_all = torch.log_softmax(logits, dim=-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1)
    others = logits.scatter(1, targets[:, None], float("-inf"))
    log_complement = torch.logsumexp(others, -1) - torch.logsumexp(logits, -1)
    return logp_all.gather(1, targets[:, None]).squeeze(1), log_complement, entropy


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 4096])
def test_values_gradients_and_entropy_equal_full_fp64_reference(chunk_size):
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(37, 16, generator=gen, requires_grad=True)
    weight = torch.randn(101, 16, generator=gen, requires_grad=True)
    targets = torch.randint(0, 101, (37,), generator=gen)
    upstream = torch.randn(2, 37, generator=gen)

    got = target_logprobs(hidden, weight, targets, chunk_size=chunk_size, with_entropy=True, with_complement=True)
    (got.logp * upstream[0] + got.log_complement * upstream[1]).sum().backward()

    hidden64 = hidden.detach().double().requires_grad_()
    weight64 = weight.detach().double().requires_grad_()
    ref_logp, ref_complement, ref_entropy = naive(hidden64, weight64, targets)
    (ref_logp * upstream[0].double() + ref_complement * upstream[1].double()).sum().backward()

    torch.testing.assert_close(got.logp.detach().double(), ref_logp.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.log_complement.detach().double(), ref_complement.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got.entropy.double(), ref_entropy.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(hidden.grad.double(), hidden64.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(weight.grad.double(), weight64.grad, rtol=1e-4, atol=1e-5)


def test_what_is_not_asked_for_is_none_and_log_p_alone_has_the_same_gradient():
    gen = torch.Generator().manual_seed(3)
    hidden = torch.randn(9, 8, generator=gen, requires_grad=True)
    weight = torch.randn(31, 8, generator=gen)
    targets = torch.randint(0, 31, (9,), generator=gen)
    alone = target_logprobs(hidden, weight, targets, chunk_size=4)
    assert alone.log_complement is None and alone.entropy is None
    alone.logp.sum().backward()
    grad, hidden.grad = hidden.grad.clone(), None
    both = target_logprobs(hidden, weight, targets, chunk_size=4, with_complement=True)
    both.logp.sum().backward()
    torch.testing.assert_close(both.logp, alone.logp, rtol=0, atol=0)
    torch.testing.assert_close(hidden.grad, grad, rtol=1e-6, atol=1e-7)


# 1 - p of the target on each near-certain row: ordinary to past the floor 1e-6 of the UL term,
# with two rows either side of it.
COMPLEMENTS = [1e-2, 1e-3, 1e-4, 1e-5, 2e-6, 1.1e-6, 0.9e-6, 1e-7, 1e-8, 1e-9]


def near_certain_rows(complements, vocab=61, base=8, dtype=torch.float32):
    """hidden (N, base + N) and weight (vocab, base + N) whose row i gives its target
    probability 1 - complements[i]: row i has a coordinate of its own that raises its
    target's logit by exactly what that takes (solved in fp64)."""
    gen = torch.Generator().manual_seed(5)
    n = len(complements)
    hidden = torch.zeros(n, base + n, dtype=torch.float64)
    weight = torch.zeros(vocab, base + n, dtype=torch.float64)
    hidden[:, :base] = torch.randn(n, base, generator=gen, dtype=torch.float64)
    weight[:, :base] = torch.randn(vocab, base, generator=gen, dtype=torch.float64) * 0.7
    targets = torch.randperm(vocab, generator=gen)[:n]
    logits = hidden[:, :base] @ weight[:, :base].T
    others = torch.logsumexp(logits.scatter(1, targets[:, None], float("-inf")), -1)
    for i, q in enumerate(complements):
        # the target's logit z with e^z / (e^z + sum of the others) = 1 - q
        hidden[i, base + i] = others[i] + math.log1p(-q) - math.log(q) - logits[i, targets[i]]
        weight[targets[i], base + i] = 1.0
    return hidden.to(dtype), weight.to(dtype), targets


def test_log_complement_is_exact_near_certainty():
    hidden, weight, targets = near_certain_rows(COMPLEMENTS)
    got = target_logprobs(hidden, weight, targets, chunk_size=4, with_complement=True)
    _, reference, _ = naive(hidden, weight, targets)
    torch.testing.assert_close(reference.exp(), torch.tensor(COMPLEMENTS, dtype=torch.float64), rtol=1e-5, atol=0)
    # 1 - p itself within 1e-5 relative (log p in fp32 gives it within 6e-8 / (1 - p): 60 at 1e-9)
    torch.testing.assert_close(got.log_complement.double().exp(), reference.exp(), rtol=1e-5, atol=0)
    naive_fp32 = torch.log(-torch.expm1(got.logp.detach()))  # the cancelling way, for contrast
    assert (naive_fp32.double().exp() / reference.exp() - 1).abs().max() > 1e-2


def ul_reference(hidden, weight, targets, floor):
    """-mean log(max(1 - p, floor)) over the rows, fp64, full logits."""
    _, log_complement, _ = naive(hidden, weight, targets)
    return -torch.maximum(log_complement, torch.tensor(math.log(floor), dtype=torch.float64)).mean()


def max_norm_error(got: torch.Tensor, reference: torch.Tensor) -> float:
    return ((got.double() - reference).abs().max() / reference.abs().max()).item()


@pytest.mark.parametrize("alpha", [1e-4, 1.0])
def test_unlikelihood_loss_and_gradients_near_certainty_equal_fp64_reference(alpha):
    hidden32, weight32, targets = near_certain_rows(COMPLEMENTS)
    hidden, weight = hidden32.requires_grad_(), weight32.requires_grad_()
    got = target_logprobs(hidden, weight, targets, chunk_size=3, with_complement=True)
    n = len(COMPLEMENTS)
    counts = TermCounts(torch.tensor([0.0, 1.0, 0.0, n], dtype=torch.float64))  # one negative sequence
    parts = oxa_loss(got.logp, got.log_complement, torch.zeros(n, dtype=torch.long), torch.tensor([1]), counts, alpha)
    parts.loss.backward()

    hidden64 = hidden.detach().double().requires_grad_()
    weight64 = weight.detach().double().requires_grad_()
    reference = alpha * ul_reference(hidden64, weight64, targets, 1e-6)
    reference.backward()
    torch.testing.assert_close(parts.loss.double(), reference.detach(), rtol=1e-5, atol=0)
    torch.testing.assert_close(parts.ul.double(), reference.detach() / alpha, rtol=1e-5, atol=0)
    assert max_norm_error(hidden.grad, hidden64.grad) < 1e-4
    assert max_norm_error(weight.grad, weight64.grad) < 1e-4
    # the rows past the floor (1 - p < 1e-6), and only those, get no gradient
    past = torch.tensor(COMPLEMENTS) < 1e-6
    assert (hidden64.grad[past] == 0).all() and (hidden.grad[past] == 0).all()
    assert (hidden.grad[~past].abs().sum(-1) > 0).all()


def test_bf16_inputs_near_certainty_stay_within_the_stated_bound():
    """bf16 hidden states and lm head, as in bf16 training: the logits are fp32 products of
    those values, so log(1 - p) is as exact as in fp32 (measured 1.9e-6 relative); the
    gradient is cast to bf16 for the two matmuls of the backward, as autograd does for
    plain bf16 logits (measured 3.2e-3, max norm)."""
    hidden, weight, targets = near_certain_rows(COMPLEMENTS, dtype=torch.bfloat16)
    hidden, weight = hidden.requires_grad_(), weight.requires_grad_()
    got = target_logprobs(hidden, weight, targets, chunk_size=4, with_complement=True)
    _, reference_complement, _ = naive(hidden.detach(), weight.detach(), targets)
    torch.testing.assert_close(got.log_complement.double().exp(), reference_complement.exp(), rtol=1e-5, atol=0)

    loss = -got.log_complement.clamp(min=math.log(1e-6)).mean()
    loss.backward()
    hidden64 = hidden.detach().double().requires_grad_()
    weight64 = weight.detach().double().requires_grad_()
    reference = ul_reference(hidden64, weight64, targets, 1e-6)
    reference.backward()
    torch.testing.assert_close(loss.double(), reference.detach(), rtol=1e-5, atol=0)
    assert max_norm_error(hidden.grad, hidden64.grad) < 1e-2
    assert max_norm_error(weight.grad, weight64.grad) < 1e-2
