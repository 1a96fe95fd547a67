"""OXATrainer on a random-init tiny Qwen2 (hidden 64): exactness against a naive fp64 reference,
invariance to the batch split, bad input, and a short OXA_Full run."""

import math

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from datasets import Dataset  # noqa: E402

from curate.workspace import OxaError  # noqa: E402
from tests.tiny_random import tiny_qwen2  # noqa: E402
from train.sft import OXAConfig, OXATrainer  # noqa: E402
from train.sft.loss import TermCounts, count_terms  # noqa: E402
from train.sft.ul_sampler import KNegativesSampler  # noqa: E402
from train.tiny.models import train_tokenizer  # noqa: E402

PROBLEMS = [f"What is {a} plus {b}?" for a, b in [(2, 3), (4, 4), (7, 1), (5, 6), (9, 2), (3, 8), (6, 6), (1, 1)]]


def rows(n_pos: int, n_neg: int) -> list[dict]:
    """Positives answer right with a short chain; negatives look alike but end wrong."""
    out = []
    for i in range(n_pos + n_neg):
        problem = PROBLEMS[i % len(PROBLEMS)]
        a, b = (int(x) for x in problem.removeprefix("What is ").removesuffix("?").split(" plus "))
        wrong = i >= n_pos
        steps = " ".join(f"step {j}: add one." for j in range(i % 3 + 1))
        answer = a + b + (3 if wrong else 0)
        out.append(
            {
                "prompt": [{"role": "user", "content": problem}],
                "completion": [{"role": "assistant", "content": f"<think>{steps}</think> The answer is {answer}."}],
                "loss_type": int(wrong),
            }
        )
    return out


def build_tokenizer():
    texts = [r["prompt"][0]["content"] + " " + r["completion"][0]["content"] for r in rows(8, 8)] * 4
    return train_tokenizer(iter(texts), vocab_size=320)


@pytest.fixture(scope="module")
def tokenizer():
    return build_tokenizer()


def tiny_model(tokenizer, seed: int = 0):
    return tiny_qwen2(tokenizer, hidden=64, layers=2, max_positions=256, seed=seed)


def make_trainer(tokenizer, data, model=None, **overrides) -> OXATrainer:
    settings = dict(
        output_dir="/tmp/oxa-test-unused",
        report_to=[],
        bf16=False,
        activation_checkpointing=False,
        per_device_train_batch_size=4,
        max_length=None,
        ul_global=None,
        ul_alpha=0.5,
        logging_steps=1,
        save_strategy="no",
        use_cpu=True,
        dataset_num_proc=None,
        disable_tqdm=True,
    )
    settings.update(overrides)
    return OXATrainer(
        model or tiny_model(tokenizer),
        args=OXAConfig(**settings),
        train_dataset=Dataset.from_list(data),
        processing_class=tokenizer,
    )


def naive_terms(model64, examples, normalization, floor=1e-6):
    """L_CE and L_UL (Eq. 3-4) by hand: one unpadded forward per sequence, full fp64 logits; the
    UL term is -log(max(1 - p, floor)) with log(1 - p) = log-sum-exp of the other logits - of all."""
    per_seq = []
    for example in examples:
        ids = torch.tensor(example["input_ids"])[None]
        labels = torch.tensor(example["labels"])[1:]
        keep = labels != -100
        logits = model64(input_ids=ids).logits[0, :-1].double()[keep]
        targets = labels[keep, None]
        if example["loss_type"] == 1:
            others = logits.scatter(1, targets, float("-inf"))
            log_complement = torch.logsumexp(others, -1) - torch.logsumexp(logits, -1)
            tok = -log_complement.clamp(min=math.log(floor))
        else:
            tok = -torch.log_softmax(logits, -1).gather(1, targets).squeeze(1)
        per_seq.append((example["loss_type"], tok))
    terms = []
    for kind in (0, 1):
        toks = [t for k, t in per_seq if k == kind and t.numel()]
        if not toks:
            terms.append(torch.zeros((), dtype=torch.float64))
        elif normalization == "sequence":
            terms.append(torch.stack([t.mean() for t in toks]).mean())
        else:
            terms.append(torch.cat(toks).sum() / sum(t.numel() for t in toks))
    return terms[0], terms[1]


def naive_objective(model64, examples, alpha, normalization, floor=1e-6):
    ce, ul = naive_terms(model64, examples, normalization, floor)
    return ce + alpha * ul


@pytest.mark.parametrize("padding_free", [False, True])
@pytest.mark.parametrize("normalization", ["sequence", "token"])
def test_loss_and_gradients_equal_naive_fp64_reference(tokenizer, normalization, padding_free):
    trainer = make_trainer(
        tokenizer, rows(5, 3), ul_normalization=normalization, padding_free=padding_free, loss_chunk_size=7
    )
    examples = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    batch = trainer.data_collator([{k: e[k] for k in ("input_ids", "labels", "loss_type")} for e in examples])
    trainer._step_counts = TermCounts(count_terms(batch["labels"], batch["sequence_index"], batch["loss_type"]))
    model = trainer.model.train()
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()

    model64 = tiny_model(tokenizer).double()  # a plain copy: the trainer patched the forward of `model`
    model64.load_state_dict(model.state_dict())
    reference = naive_objective(model64, examples, 0.5, normalization)
    reference.backward()

    torch.testing.assert_close(loss.double(), reference.detach(), rtol=1e-5, atol=1e-6)
    for (name, p), p64 in zip(model.named_parameters(), model64.parameters(), strict=True):
        torch.testing.assert_close(p.grad.double(), p64.grad, rtol=1e-4, atol=1e-6, msg=name)


def greedy_negatives(model, examples, length: int) -> list[dict]:
    """The examples' prompts, each followed by `length` of the model's own greedy tokens, as
    negatives (loss_type 1): the tokens a model is surest of, as self-distilled wrong answers are."""
    out = []
    with torch.no_grad():
        for example in examples:
            prompt = example["input_ids"][: next(i for i, label in enumerate(example["labels"]) if label != -100)]
            ids = list(prompt)
            for _ in range(length):
                ids.append(int(model(input_ids=torch.tensor([ids])).logits[0, -1].argmax()))
            out.append({"input_ids": ids, "labels": [-100] * len(prompt) + ids[len(prompt) :], "loss_type": 1})
    return out


SHARPEN = 100.0


def near_certain_batch(tokenizer, dtype=torch.float32, **overrides):
    """A trainer, its collated batch (3 positives, 4 near-certain negatives) and the examples.
    The model's lm head (untied) is sharpened 100x, so the greedy tokens' 1 - p spread from
    about 0.5 down to 1e-9, 7 of 48 past the floor 1e-6."""
    model = tiny_qwen2(tokenizer, hidden=64, layers=2, max_positions=256, seed=0, tied=False)
    with torch.no_grad():
        model.lm_head.weight.mul_(SHARPEN)
    trainer = make_trainer(tokenizer, rows(3, 4), model=model.to(dtype), loss_chunk_size=7, **overrides)
    examples = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    examples = [e for e in examples if e["loss_type"] == 0] + greedy_negatives(
        trainer.model, [e for e in examples if e["loss_type"] == 1], length=12
    )
    batch = trainer.data_collator([{k: e[k] for k in ("input_ids", "labels", "loss_type")} for e in examples])
    trainer._step_counts = TermCounts(count_terms(batch["labels"], batch["sequence_index"], batch["loss_type"]))
    return trainer, batch, examples


def reference_copy(tokenizer, model):
    model64 = tiny_qwen2(tokenizer, hidden=64, layers=2, max_positions=256, tied=False).double()
    model64.load_state_dict({k: v.double() for k, v in model.state_dict().items()})
    return model64


def negative_complements(model64, examples) -> torch.Tensor:
    """1 - p of every negative token under the fp64 reference."""
    out = []
    with torch.no_grad():
        for e in examples:
            if e["loss_type"] == 1:
                labels = torch.tensor(e["labels"])[1:]
                logits = model64(input_ids=torch.tensor(e["input_ids"])[None]).logits[0, :-1][labels != -100]
                target = labels[labels != -100, None]
                others = torch.logsumexp(logits.scatter(1, target, float("-inf")), -1)
                out.append((others - torch.logsumexp(logits, -1)).exp())
    return torch.cat(out)


def max_norm_error(got, reference) -> float:
    return ((got.double() - reference).abs().max() / reference.abs().max()).item()


@pytest.mark.parametrize("alpha", [1e-4, 1.0])
@pytest.mark.parametrize("padding_free", [False, True])
@pytest.mark.parametrize("normalization", ["sequence", "token"])
def test_near_certain_negatives_equal_the_fp64_reference(tokenizer, normalization, padding_free, alpha):
    trainer, batch, examples = near_certain_batch(
        tokenizer, ul_alpha=alpha, ul_normalization=normalization, padding_free=padding_free
    )
    model = trainer.model.train()
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()

    model64 = reference_copy(tokenizer, model)
    complements = negative_complements(model64, examples)
    # the negatives span 1 - p from ordinary to past the floor
    assert complements.max() > 1e-2 and complements.min() < 1e-8
    assert ((complements > 1e-6) & (complements < 1e-4)).sum() >= 5 and (complements < 1e-6).sum() >= 5
    ce, ul = naive_terms(model64, examples, normalization)
    reference = ce + alpha * ul
    reference.backward()

    torch.testing.assert_close(loss.double(), reference.detach(), rtol=1e-5, atol=0)
    assert trainer._metrics["train"]["ul_loss"][-1] == pytest.approx(ul.item(), rel=1e-5)
    for (name, p), p64 in zip(model.named_parameters(), model64.parameters(), strict=True):
        assert max_norm_error(p.grad, p64.grad) < 1e-4, name


def test_near_certain_negatives_in_bf16_stay_within_the_stated_bound(tokenizer):
    """A bf16 model (weights and activations) against the fp64 reference of the same weights.
    Measured: the loss within 2.2e-4 relative, the logged ul_loss 5.4e-4, every gradient
    within 1.7e-2 (max norm), from the bf16 body; the bound here is about 10x that (and
    3x for the gradients); docs/oxa-trainer.md."""
    trainer, batch, examples = near_certain_batch(tokenizer, dtype=torch.bfloat16, ul_alpha=1.0)
    model = trainer.model.train()
    loss = trainer.compute_loss(model, dict(batch))
    loss.backward()
    model64 = reference_copy(tokenizer, model)
    ce, ul = naive_terms(model64, examples, "sequence")
    reference = ce + ul
    reference.backward()
    torch.testing.assert_close(loss.double(), reference.detach(), rtol=2e-3, atol=0)
    assert trainer._metrics["train"]["ul_loss"][-1] == pytest.approx(ul.item(), rel=5e-3)
    for (name, p), p64 in zip(model.named_parameters(), model64.parameters(), strict=True):
        assert max_norm_error(p.grad, p64.grad) < 5e-2, name


def test_which_tokens_are_trained_in_chat_and_plain_text_rows(tokenizer):
    """The label rule (docs/oxa-trainer.md): a conversational row trains its completion, the
    template's end-of-turn token and the newline after it, with no end-of-sequence token
    added; a plain-text row trains every token, and TRL appends the end-of-sequence token."""
    chat = make_trainer(tokenizer, rows(2, 1)).train_dataset[0]
    completion = rows(1, 0)[0]["completion"][0]["content"]
    trained = [i for i, label in zip(chat["input_ids"], chat["labels"]) if label != -100]
    assert trained == tokenizer(completion + "<|im_end|>\n", add_special_tokens=False)["input_ids"]
    assert chat["input_ids"][-len(trained) :] == trained  # nothing after it

    text = "What is 2 plus 3? The answer is 5."
    plain = make_trainer(tokenizer, [{"text": text, "loss_type": 0}, {"text": text + " 6", "loss_type": 1}])
    row = plain.train_dataset[0]
    assert row["labels"] == row["input_ids"]
    assert row["input_ids"] == tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]


# One plain SGD step: the update is 0.5 x the gradient, nothing else (no clipping, decay or schedule).
SGD_STEP = dict(
    optim="sgd",
    learning_rate=0.5,
    lr_scheduler_type="constant",
    max_grad_norm=0.0,
    weight_decay=0.0,
    max_steps=1,
    ul_global=2,
)


def one_sgd_step(tokenizer, data, **overrides):
    trainer = make_trainer(tokenizer, data, **SGD_STEP | overrides)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    return trainer, {n: before[n] - p.detach() for n, p in trainer.model.named_parameters()}


def test_update_is_the_same_for_any_split_and_equals_the_reference_gradient(tokenizer):
    data = rows(9, 4)  # 8 per global batch (6 positives, 2 negatives): leftovers 3 positives, 2 negatives
    runs = [
        one_sgd_step(tokenizer, data, per_device_train_batch_size=8, gradient_accumulation_steps=1),
        one_sgd_step(tokenizer, data, per_device_train_batch_size=2, gradient_accumulation_steps=4),
        one_sgd_step(tokenizer, data, per_device_train_batch_size=4, gradient_accumulation_steps=2, padding_free=True),
        one_sgd_step(tokenizer, data, per_device_train_batch_size=1, gradient_accumulation_steps=8),
    ]
    trainer, delta = runs[0]
    assert trainer.unused_per_epoch == {"positives": 3, "negatives": 2}
    for _, other in runs[1:]:
        for name in delta:
            torch.testing.assert_close(other[name], delta[name], rtol=1e-4, atol=1e-7, msg=name)

    prepared = trainer.train_dataset
    first_batch = list(KNegativesSampler(prepared["loss_type"], 8, 2, seed=trainer.args.seed))[:8]
    model64 = tiny_model(tokenizer).double()
    naive_objective(model64, [prepared[i] for i in first_batch], 0.5, "sequence").backward()
    for name, p64 in model64.named_parameters():
        torch.testing.assert_close(delta[name].double(), 0.5 * p64.grad, rtol=1e-3, atol=1e-6, msg=name)
    logged = trainer.state.log_history[0]
    assert {"ce_loss", "ul_loss", "weighted_ul_loss", "neg_token_prob", "entropy_pos", "entropy_neg"} <= set(logged)
    assert logged["weighted_ul_loss"] == pytest.approx(0.5 * logged["ul_loss"])
    assert logged["loss"] == pytest.approx(logged["ce_loss"] + logged["weighted_ul_loss"], rel=1e-5)
    evaluated = trainer.evaluate(Dataset.from_list(rows(2, 2)))
    assert evaluated["eval_loss"] == pytest.approx(evaluated["eval_ce_loss"] + 0.5 * evaluated["eval_ul_loss"])
    assert 0 < evaluated["eval_neg_token_prob"] < 1


def mean_ce_and_neg_prob(model, trainer):
    """Mean token CE on positives and mean p(token) on negatives, over the whole prepared dataset."""
    ce, probs = [], []
    with torch.no_grad():
        for example in trainer.train_dataset:
            labels = torch.tensor(example["labels"])[1:]
            logits = model(input_ids=torch.tensor(example["input_ids"])[None]).logits[0, :-1]
            keep = labels != -100
            logp = torch.log_softmax(logits[keep], -1).gather(1, labels[keep, None]).squeeze(1)
            (probs if example["loss_type"] else ce).append(logp.exp() if example["loss_type"] else -logp)
    return torch.cat(ce).mean().item(), torch.cat(probs).mean().item()


def test_thirty_step_oxa_full_lowers_ce_and_negative_probability(tokenizer):
    # alpha 1.0, not the paper's 1e-4: a random-init model puts p ~ 1/vocab on every token, so the
    # UL gradient (~p / (1 - p) per token, Eq. 7-8) is tiny; 1e-4 matters only once p nears 1.
    data = rows(24, 8)
    results = {}
    for alpha in (0.0, 1.0):
        trainer = make_trainer(
            tokenizer,
            data,
            ul_alpha=alpha,
            ul_global=1,
            per_device_train_batch_size=4,
            learning_rate=3e-3,
            max_steps=30,
            lr_scheduler_type="constant",
        )
        start = mean_ce_and_neg_prob(trainer.model, trainer)
        trainer.train()
        results[alpha] = (start, mean_ce_and_neg_prob(trainer.model.eval(), trainer))
    (start_ce, start_p), (ce0, p0) = results[0.0]
    _, (ce1, p1) = results[1.0]
    assert ce1 < 0.5 * start_ce and ce0 < 0.5 * start_ce
    assert p1 < 0.85 * p0, (p0, p1)


def test_bad_input_gives_clear_errors(tokenizer):
    data = rows(4, 2)
    with pytest.raises(OxaError, match="no loss_type column"):
        make_trainer(tokenizer, [{k: v for k, v in r.items() if k != "loss_type"} for r in data])
    with pytest.raises(OxaError, match=r"ul_alpha=0.5 but the train dataset has no negatives"):
        make_trainer(tokenizer, rows(4, 0))
    with pytest.raises(OxaError, match="no positives"):
        make_trainer(tokenizer, [dict(r, loss_type=1) for r in data])
    with pytest.raises(OxaError, match=r"ul_global=16 does not fit in the global batch of 4"):
        make_trainer(tokenizer, data, ul_global=16)
    with pytest.raises(OxaError, match="packing"):
        OXAConfig(output_dir="/tmp/x", packing=True, use_cpu=True)
    assert make_trainer(tokenizer, rows(4, 0), ul_alpha=0.0, ul_global=16)._uses_k_negatives() is False
