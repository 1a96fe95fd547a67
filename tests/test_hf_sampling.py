"""The hf backend's batched sampling: each row's draw follows the tempered, top-p-filtered
distribution (transformers' nucleus rule, checked against a naive reference), and a row
does not depend on the rows beside it."""

import pytest

torch = pytest.importorskip("torch")

from curate.backends.base import GenerateItem, SamplingSettings  # noqa: E402
from curate.backends.hf import HFBackend, _NucleusSampler  # noqa: E402


def naive_nucleus(logits: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """The distribution transformers samples from: sort ascending, drop the tokens whose
    cumulative mass is at most 1 - top_p (never the most likely), renormalize. In fp64."""
    probs = torch.softmax(logits.double() / temperature, -1)
    if top_p >= 1:
        return probs
    ascending, order = probs.sort()
    drop = ascending.cumsum(-1) <= 1 - top_p
    drop[-1] = False
    kept = probs.clone()
    kept[order[drop]] = 0
    return kept / kept.sum()


def draw(logits: torch.Tensor, rows: int, temperature: float, top_p: float) -> torch.Tensor:
    """Frequencies of `rows` one-step draws, one seed per row."""
    settings = SamplingSettings(n=1, temperature=temperature, top_p=top_p, max_new_tokens=1, seed=0)
    sampler = _NucleusSampler(list(range(rows)), settings, torch.device("cpu"))
    picks = sampler.draw(logits.expand(rows, -1), step=0)
    return torch.bincount(picks, minlength=logits.shape[0]).double() / rows


@pytest.mark.parametrize(
    "logits, temperature, top_p",
    [
        ([2.0, 1.0, 0.0, -1.0, float("-inf")], 1.0, 1.0),  # no nucleus; a masked token is never drawn
        ([2.0, 1.0, 0.0, -1.0, -3.0], 0.7, 0.8),  # the nucleus among the top k: {0, 1}
        ([3.0, 2.9, 0.5, 0.4, 0.3], 1.0, 0.95),
    ],
)
def test_draws_follow_the_nucleus_distribution(logits, temperature, top_p):
    logits = torch.tensor(logits)
    expected = naive_nucleus(logits, temperature, top_p)
    freq = draw(logits, 40_000, temperature, top_p)
    assert ((freq > 0) == (expected > 0)).all()  # exactly the nucleus is drawn
    torch.testing.assert_close(freq, expected, atol=0.01, rtol=0)


def test_a_nucleus_wider_than_the_top_k_sorts_the_row():
    # 300 near-equal tokens: 95% of the mass takes ~285 of them, past the sampler's top 64
    logits = torch.linspace(0.0, 0.3, 300)
    expected = naive_nucleus(logits, 1.0, 0.95)
    assert (expected > 0).sum() > _NucleusSampler.TOP_K
    freq = draw(logits, 60_000, 1.0, 0.95)
    assert ((freq > 0) <= (expected > 0)).all()  # nothing outside the nucleus
    assert (freq[expected > 0] > 0).float().mean() > 0.99
    torch.testing.assert_close(freq, expected, atol=0.0012, rtol=0)


def test_rows_wide_and_narrow_in_one_batch():
    # one row's nucleus within the top 64, the other's past it: each as if alone
    narrow, wide = torch.full((300,), -5.0), torch.zeros(300)
    narrow[:3] = torch.tensor([4.0, 3.0, 2.0])
    settings = SamplingSettings(n=1, temperature=1.0, top_p=0.9, max_new_tokens=2, seed=0)
    batch = _NucleusSampler([5, 6], settings, torch.device("cpu"))
    picks = batch.draw(torch.stack([narrow, wide]), step=1)
    for row, (seed, logits) in enumerate([(5, narrow), (6, wide)]):
        alone = _NucleusSampler([seed], settings, torch.device("cpu"))
        assert alone.draw(logits[None], step=1).item() == picks[row]
    batch.keep(torch.tensor([1]))  # the first row stopped: the second draws from its own stream still
    assert batch.draw(wide[None], step=0).item() == alone.draw(wide[None], step=0).item()


def chat_items(tokenizer, prompts: list[str], first_seed: int) -> list[GenerateItem]:
    """One GenerateItem per prompt, chat-templated with the generation prompt, seeds counting up."""
    return [
        GenerateItem(
            f"p{i}",
            tuple(
                tokenizer.apply_chat_template(
                    [{"role": "user", "content": p}], add_generation_prompt=True, tokenize=True, return_dict=False
                )
            ),
            seed=first_seed + i,
        )
        for i, p in enumerate(prompts)
    ]


def test_a_row_does_not_depend_on_the_batch(tiny_models):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "instruct")
    prompts = ["What is 3 + 4?", "Solve 2x = 10 for x, then add the digits of 1234567 together."]
    items = chat_items(tokenizer, prompts, first_seed=11)
    settings = SamplingSettings(n=3, temperature=0.9, top_p=0.95, max_new_tokens=24, seed=0)
    backend = HFBackend(str(tiny_models / "instruct"), dtype="float32", device="cpu")
    together = backend.generate(items, settings)
    alone = backend.generate(items[:1], settings)
    one_at_a_time = HFBackend(str(tiny_models / "instruct"), dtype="float32", device="cpu", token_budget=1)
    singles = one_at_a_time.generate(items, settings)
    assert [c.token_ids for c in together[0]] == [c.token_ids for c in alone[0]]
    assert [[c.token_ids for c in row] for row in together] == [[c.token_ids for c in row] for row in singles]
    assert len({c.token_ids for c in together[0]}) > 1  # the n samples of a prompt differ


def test_batched_sampling_equals_one_row_at_a_time_without_a_cache(tiny_models, monkeypatch):
    """The decoding loop (shared prefill, left padding, a static cache, stopped rows
    dropped) against the plainest one: each row alone, the whole sequence through the
    model at every step, the same draws."""
    from transformers import AutoModelForCausalLM, AutoTokenizer, StaticCache

    from curate.backends.hf import _row_seed

    reorders = []
    reorder = StaticCache.reorder_cache
    monkeypatch.setattr(
        StaticCache, "reorder_cache", lambda cache, rows: (reorders.append(len(rows)), reorder(cache, rows))
    )

    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "instruct")
    model = AutoModelForCausalLM.from_pretrained(tiny_models / "instruct", dtype=torch.float32).eval()
    eos = model.generation_config.eos_token_id
    eos = set(eos if isinstance(eos, list) else [eos])
    prompts = ["What is 3 + 4?", "Solve 2x = 10 for x.", "Add 17 and 25, then subtract 9 from the result."]
    items = chat_items(tokenizer, prompts, first_seed=21)
    for settings in (
        SamplingSettings(n=4, temperature=1.0, top_p=0.9, max_new_tokens=96, seed=0),
        SamplingSettings(n=1, temperature=0.0, top_p=1.0, max_new_tokens=40, seed=0),
    ):
        got = HFBackend(str(tiny_models / "instruct"), dtype="float32", device="cpu").generate(items, settings)
        stops = set()
        for item, completions in zip(items, got):
            for j, completion in enumerate(completions):
                sampler = _NucleusSampler([_row_seed(item.seed, j)], settings, torch.device("cpu"))
                ids = list(item.prompt_ids)
                with torch.no_grad():
                    for step in range(settings.max_new_tokens):
                        logits = model(input_ids=torch.tensor([ids])).logits[:, -1]
                        token = logits.argmax(-1) if settings.temperature == 0 else sampler.draw(logits, step)
                        ids.append(int(token))
                        if ids[-1] in eos:
                            break
                assert completion.token_ids == tuple(ids[len(item.prompt_ids) :]), (item.key, j)
                stops.add(len(completion.token_ids))
        assert len(stops) > 1, stops  # rows stopped at different steps
    assert reorders[0] == 12 and len(reorders) > 2, reorders  # prefill copied to 3 x 4 rows, then stopped rows dropped
