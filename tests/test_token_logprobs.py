import pytest

torch = pytest.importorskip("torch")

from curate.backends.token_logprobs import log1mexp, target_logprobs  # noqa: E402


def naive(hidden, weight, targets):
    logits = hidden.double() @ weight.double().T
    logp = torch.log_softmax(logits, dim=-1)
    entropy = -(logp.exp() * logp).sum(-1)
    return logp.gather(1, targets[:, None]).squeeze(1), entropy


@pytest.mark.parametrize("chunk_size", [1, 7, 64, 4096])
def test_values_gradients_and_entropy_equal_full_fp64_reference(chunk_size):
    gen = torch.Generator().manual_seed(0)
    hidden = torch.randn(37, 16, generator=gen, requires_grad=True)
    weight = torch.randn(101, 16, generator=gen, requires_grad=True)
    targets = torch.randint(0, 101, (37,), generator=gen)
    upstream = torch.randn(37, generator=gen)

    logp, entropy = target_logprobs(hidden, weight, targets, chunk_size=chunk_size, with_entropy=True)
    (logp * upstream).sum().backward()
    got = (logp.detach(), entropy, hidden.grad.clone(), weight.grad.clone())

    hidden64 = hidden.detach().double().requires_grad_()
    weight64 = weight.detach().double().requires_grad_()
    ref_logp, ref_entropy = naive(hidden64, weight64, targets)
    (ref_logp * upstream.double()).sum().backward()

    torch.testing.assert_close(got[0].double(), ref_logp.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[1].double(), ref_entropy.detach(), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[2].double(), hidden64.grad, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(got[3].double(), weight64.grad, rtol=1e-4, atol=1e-5)


def test_log1mexp_is_stable_and_matches_the_direct_formula():
    logp = torch.tensor([-50.0, -3.0, -0.7, -0.1, -1e-3, -1e-9, 0.0], dtype=torch.float64)
    expected = torch.log(1 - torch.exp(logp.clamp(max=-1e-6)))
    got = log1mexp(logp)
    assert torch.isfinite(got).all()
    torch.testing.assert_close(got[:5], expected[:5], rtol=1e-9, atol=1e-12)
    assert got[-1].item() == pytest.approx(torch.log(-torch.expm1(torch.tensor(-1e-6, dtype=torch.float64))).item())
