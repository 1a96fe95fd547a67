import math

import pytest

torch = pytest.importorskip("torch")

from curate.backends.token_logprobs import target_logprobs  # noqa: E402
from train.sft.loss import TermCounts, count_terms, loss_targets, oxa_loss  # noqa: E402

# (loss_type, number of loss tokens) per sequence; the last positive is fully masked
SEQUENCES = [(0, 3), (1, 5), (0, 1), (0, 4), (1, 2), (0, 6), (1, 4), (0, 0)]


def naive(logps, alpha, normalization):
    """Eq. 3-5 over per-sequence log-prob lists, in fp64, by the book."""
    terms = []
    for kind in (0, 1):
        toks = [(-lp if kind == 0 else -torch.log(1 - lp.exp())) for k, lp in logps if k == kind and lp.numel()]
        if normalization == "sequence":
            terms.append(torch.stack([t.mean() for t in toks]).mean())
        else:
            terms.append(torch.cat(toks).sum() / sum(t.numel() for t in toks))
    return terms[0] + alpha * terms[1]


def padded_batch(seqs, prompt=2):
    """labels (B, T) with `prompt` masked tokens first; sequence_index; loss_type."""
    width = prompt + max(n for _, n in seqs) + 1
    labels = torch.full((len(seqs), width), -100)
    index = torch.full((len(seqs), width), -1)
    for row, (_, n) in enumerate(seqs):
        labels[row, prompt : prompt + n] = 7
        index[row, : prompt + n] = row
    return labels, index, torch.tensor([k for k, _ in seqs])


def flat_batch(seqs, prompt=2, pad=3):
    """Padding-free layout: one row, every sequence after the other, then padding."""
    labels, index = [], []
    for number, (_, n) in enumerate(seqs):
        labels += [-100] * prompt + [7] * n
        index += [number] * (prompt + n)
    return torch.tensor([labels + [-100] * pad]), torch.tensor([index + [-1] * pad]), torch.tensor([k for k, _ in seqs])


def test_count_terms_padded_and_padding_free_agree_and_skip_empty_sequences():
    expected = [4.0, 3.0, 14.0, 11.0]  # ce sequences (the empty one not counted), ul sequences, ce tokens, ul tokens
    assert count_terms(*padded_batch(SEQUENCES)).tolist() == expected
    assert count_terms(*flat_batch(SEQUENCES)).tolist() == expected


@pytest.mark.parametrize("normalization", ["sequence", "token"])
@pytest.mark.parametrize("layout", [padded_batch, flat_batch])
def test_micro_batch_shares_add_up_to_the_global_objective(normalization, layout):
    gen = torch.Generator().manual_seed(0)
    logps = [(k, -torch.rand(n, generator=gen, dtype=torch.float64) * 3) for k, n in SEQUENCES]
    leaves = [lp.clone().requires_grad_() for _, lp in logps]
    reference = naive([(k, leaf) for (k, _), leaf in zip(logps, leaves)], 0.3, normalization)
    reference.backward()

    splits = [[0, 1, 2], [3], [4, 5, 6, 7]]
    micro = [layout([SEQUENCES[i] for i in part]) for part in splits]
    counts = TermCounts(sum(count_terms(*batch) for batch in micro))
    total = 0.0
    mine = [lp.clone().requires_grad_() for _, lp in logps]
    for part, (labels, index, loss_type) in zip(splits, micro):
        _, token_sequence = loss_targets(labels, index)
        logp = torch.cat([mine[i] for i in part])
        log_complement = torch.log(-torch.expm1(logp))  # exact enough in fp64 for p this far from 1
        total = total + oxa_loss(logp, log_complement, token_sequence, loss_type, counts, 0.3, normalization).loss
    total.backward()
    torch.testing.assert_close(total, reference.detach(), rtol=1e-12, atol=1e-12)
    for leaf, ref in zip(mine, leaves):
        if ref.grad is not None:
            torch.testing.assert_close(leaf.grad, ref.grad, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("normalization", ["sequence", "token"])
def test_chunked_loss_equals_full_logits_fp64_reference_in_value_and_gradient(normalization):
    gen = torch.Generator().manual_seed(1)
    labels, index, loss_type = padded_batch(SEQUENCES[:7])
    vocab = 97
    labels = torch.where(labels == -100, labels, torch.randint(0, vocab, labels.shape, generator=gen))
    hidden = torch.randn(*labels.shape, 16, generator=gen, requires_grad=True)
    weight = (torch.randn(vocab, 16, generator=gen) * 0.5).requires_grad_()

    mask, token_sequence = loss_targets(labels, index)
    targets = labels[:, 1:][mask]
    logp, log_complement, entropy = target_logprobs(
        hidden[:, :-1][mask], weight, targets, chunk_size=5, with_entropy=True, with_complement=True
    )
    counts = TermCounts(count_terms(labels, index, loss_type))
    parts = oxa_loss(logp, log_complement, token_sequence, loss_type, counts, 0.7, normalization, entropy=entropy)
    parts.loss.backward()

    h64, w64 = hidden.detach().double().requires_grad_(), weight.detach().double().requires_grad_()
    full = torch.log_softmax(h64[:, :-1] @ w64.T, dim=-1)  # (B, T-1, V)
    per_seq = []
    for row, (kind, _) in enumerate(SEQUENCES[:7]):
        keep = mask[row]
        per_seq.append((kind, full[row][keep].gather(1, labels[row, 1:][keep, None]).squeeze(1)))
    reference = naive(per_seq, 0.7, normalization)
    reference.backward()
    torch.testing.assert_close(parts.loss.double(), reference.detach(), rtol=1e-6, atol=1e-7)
    torch.testing.assert_close(hidden.grad.double(), h64.grad, rtol=1e-4, atol=1e-7)
    torch.testing.assert_close(weight.grad.double(), w64.grad, rtol=1e-4, atol=1e-7)
    negative = loss_type[token_sequence] == 1
    assert parts.negative_tokens.item() == 11 and parts.positive_tokens.item() == 14
    torch.testing.assert_close(parts.negative_prob_sum, logp.detach().exp()[negative].sum())


def test_a_certain_negative_token_gives_a_finite_penalty_at_the_floor_and_no_gradient():
    counts = TermCounts(torch.tensor([0.0, 1.0, 0.0, 3.0], dtype=torch.float64))
    log_complement = torch.tensor([float("-inf"), math.log(1e-9), math.log(1e-3)], requires_grad=True)
    logp = torch.log(-torch.expm1(log_complement.detach()))  # the CE side never sees a negative
    parts = oxa_loss(logp, log_complement, torch.tensor([0, 0, 0]), torch.tensor([1]), counts, 1.0, floor=1e-6)
    parts.loss.backward()
    expected = (2 * -math.log(1e-6) - math.log(1e-3)) / 3
    assert parts.loss.item() == pytest.approx(expected, rel=1e-6) and parts.ce.item() == 0.0
    assert log_complement.grad.tolist() == pytest.approx([0.0, 0.0, -1 / 3])
    with pytest.raises(ValueError, match="floor must lie in"):
        oxa_loss(logp, log_complement, torch.tensor([0, 0, 0]), torch.tensor([1]), counts, 1.0, floor=0.0)
