"""The hf backend's batched sampling: a per-row Gumbel-max draw is a sample of the
tempered, top-p-filtered distribution, and a row does not depend on the rows beside it."""

import pytest

torch = pytest.importorskip("torch")

from curate.backends.base import GenerateItem, SamplingSettings  # noqa: E402
from curate.backends.hf import HFBackend, _GumbelNoise  # noqa: E402


def test_gumbel_max_draws_follow_the_softmax():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0, float("-inf")]])
    rows = 20_000
    noise = _GumbelNoise(list(range(rows)), torch.device("cpu"))
    draws = torch.cat([(logits + 0).expand(1, -1) for _ in range(rows)])
    picks = noise(None, draws).argmax(-1)
    freq = torch.bincount(picks, minlength=5).double() / rows
    expected = torch.softmax(logits[0].double(), -1)
    assert freq[4] == 0  # a filtered token is never drawn
    torch.testing.assert_close(freq, expected, atol=0.012, rtol=0)


def test_a_row_does_not_depend_on_the_batch(tiny_models):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "instruct")
    prompts = ["What is 3 + 4?", "Solve 2x = 10 for x, then add the digits of 1234567 together."]
    items = [
        GenerateItem(
            f"p{i}",
            tuple(
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=True, return_dict=False
                )
            ),
            seed=11 + i,
        )
        for i, p in enumerate(prompts)
    ]
    settings = SamplingSettings(n=3, temperature=0.9, top_p=0.95, max_new_tokens=24, seed=0)
    backend = HFBackend(str(tiny_models / "instruct"), dtype="float32", device="cpu")
    together = backend.generate(items, settings)
    alone = backend.generate(items[:1], settings)
    one_at_a_time = HFBackend(str(tiny_models / "instruct"), dtype="float32", device="cpu", token_budget=1)
    singles = one_at_a_time.generate(items, settings)
    assert [c.token_ids for c in together[0]] == [c.token_ids for c in alone[0]]
    assert [[c.token_ids for c in row] for row in together] == [[c.token_ids for c in row] for row in singles]
    assert len({c.token_ids for c in together[0]}) > 1  # the n samples of a prompt differ
