"""Clip-Cov and KL-Cov in `oxa train grpo`: on the tiny instruct model and a fixed batch, the
loss, the gradients, the chosen tokens and the logged metrics equal a naive fp64 reference
written from the definition (verl's compute_policy_loss_clip_cov / _kl_cov); the chosen
tokens' gradients are exactly zero under Clip-Cov; the random choice is seeded; settings are
checked; the paper-clipcov preset; two CPU steps log the metrics."""

import json

import pytest
from transformers import AutoModelForCausalLM
from typer.testing import CliRunner

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from curate.benchmarks.sets import load_prompt_set  # noqa: E402
from curate.cli import app  # noqa: E402
from curate.workspace import OxaError  # noqa: E402
from train.grpo.covariance import select_clip_cov, token_covariance  # noqa: E402
from train.grpo.grpo import (  # noqa: E402
    GRPORun,
    OxaGRPOTrainer,
    _checked_tokenizer,
    grpo_config,
    prompt_dataset,
    resolve_grpo_settings,
)

B, P, T = 4, 5, 8  # completions, prompt tokens, completion tokens
ADVANTAGES = [9.0, -7.0, 3.0, -12.0]
LENGTHS = [8, 6, 8, 5]  # completion tokens per row; the rest is padding


def config_of(tmp_path, *overrides):
    run = GRPORun(model="unused", prompts="unused", output=str(tmp_path / "out"), preset="tiny", overrides=overrides)
    settings, preset = resolve_grpo_settings(run, ranks=1)
    return grpo_config(settings, preset["name"])


def trainer_of(tmp_path, tiny_models, synth_world, *overrides):
    config = config_of(tmp_path, *overrides)
    model = str(tiny_models / "instruct")
    dataset = prompt_dataset(load_prompt_set("p", synth_world / "heldout.json"), config.instruction)
    trainer = OxaGRPOTrainer(
        model=model, reward_funcs=[lambda completions, **kw: [0.0] * len(completions)], args=config,
        train_dataset=dataset, processing_class=_checked_tokenizer(model),
    )  # fmt: skip
    trainer.model.train()
    trainer.current_gradient_accumulation_steps = config.gradient_accumulation_steps  # as the training loop sets it
    return trainer


def fixed_batch(vocab, off_policy):
    """Random token ids, right-padded completions, one advantage per completion; old log-probs a fixed
    offset from the current ones (off-policy: PPO's clip acts on some tokens) or absent (on-policy)."""
    generator = torch.Generator().manual_seed(7)
    mask = torch.tensor([[1.0] * n + [0.0] * (T - n) for n in LENGTHS])
    batch = {
        "prompt_ids": torch.randint(0, vocab, (B, P), generator=generator),
        "prompt_mask": torch.ones(B, P, dtype=torch.long),
        "completion_ids": torch.randint(0, vocab, (B, T), generator=generator),
        "completion_mask": mask,
        "advantages": torch.tensor(ADVANTAGES),
        "num_items_in_batch": 2.0 * mask.sum(),  # the generation batch: this and one more like it
        "ref_offset": (torch.rand(B, T, generator=generator) - 0.5) * 0.4,
    }
    if off_policy:
        batch["old_offset"] = (torch.rand(B, T, generator=generator) - 0.5) * 0.6
    return batch


def with_old_log_probs(trainer, batch):
    """The batch as the trainer gets it: old and reference log-probs = the model's own + fixed offsets."""
    batch = dict(batch)
    with torch.no_grad():
        own = naive_log_probs(trainer.model, batch, trainer.temperature).float()
    batch["ref_per_token_logps"] = own + batch.pop("ref_offset")
    if "old_offset" in batch:
        batch["old_per_token_logps"] = own + batch.pop("old_offset")
    return batch


def naive_log_probs(model, batch, temperature, entropy=False):
    """log pi(token) of every completion token under the temperature-scaled policy, in the model's dtype."""
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    attention = torch.cat([batch["prompt_mask"], batch["completion_mask"].long()], dim=1)
    logits = model(input_ids=ids, attention_mask=attention).logits[:, P - 1 : -1] / temperature
    log_probs = torch.log_softmax(logits, dim=-1)
    token = log_probs.gather(-1, batch["completion_ids"].unsqueeze(-1)).squeeze(-1)
    if entropy:
        return token, -(log_probs.exp() * log_probs).sum(-1)
    return token


def reference(model64, batch, config, epsilon=0.2):
    """verl's Clip-Cov / KL-Cov loss with TRL's reference KL, token by token in fp64, normalized as TRL's
    loss_type dapo (the paper preset's) or grpo.
    Clip-Cov here clips every candidate (clip_cov_ratio = 1), so no random choice is involved."""
    log_probs, entropies = naive_log_probs(model64, batch, config.temperature, entropy=True)
    mask = batch["completion_mask"]
    tokens = [(b, t) for b in range(B) for t in range(T) if mask[b, t] > 0]
    n = len(tokens)
    advantage = {(b, t): ADVANTAGES[b] for b, t in tokens}
    value = {(b, t): log_probs[b, t].item() for b, t in tokens}
    mean_a, mean_lp = sum(advantage.values()) / n, sum(value.values()) / n
    cov = {k: (advantage[k] - mean_a) * (value[k] - mean_lp) for k in tokens}
    old = batch.get("old_per_token_logps")
    old_value = {k: (value[k] if old is None else float(old[k])) for k in tokens}
    if config.cov_mode == "kl_cov":
        top = max(1, int(n * config.kl_cov_ratio))
        chosen = set(sorted(tokens, key=lambda k: -cov[k])[:top])
    else:
        chosen = set()
        for k in tokens:
            r = torch.exp(torch.tensor(value[k] - old_value[k], dtype=torch.float64))
            ppo_clipped = -advantage[k] * r.clamp(1 - epsilon, 1 + epsilon) > -advantage[k] * r
            if config.clip_cov_lb < cov[k] < config.clip_cov_ub and not ppo_clipped:
                chosen.add(k)
    term = {}
    for k in tokens:
        log_ratio = log_probs[k] - old_value[k]
        r = torch.exp(log_ratio)
        surrogate = -torch.min(r * advantage[k], r.clamp(1 - epsilon, 1 + epsilon) * advantage[k])
        delta = float(batch["ref_per_token_logps"][k]) - log_probs[k]
        kl = (torch.exp(delta) - delta - 1) * r  # TRL's use_bias_correction_kl (default): k3 x ratio
        if config.cov_mode == "clip_cov" and k in chosen:
            surrogate = surrogate * 0
        if config.cov_mode == "kl_cov" and k in chosen:
            surrogate = surrogate + config.kl_cov_coef * log_ratio.abs()
        term[k] = surrogate + config.beta * kl
    accumulation = config.gradient_accumulation_steps
    if config.loss_type == "grpo":  # each completion's token mean, averaged over the completions
        loss = sum(sum(term[b, t] for t in range(LENGTHS[b])) / LENGTHS[b] for b in range(B)) / B / accumulation
    else:  # dapo: over the generation batch's tokens (num_items_in_batch), split in accumulation steps
        loss = sum(term.values()) / float(batch["num_items_in_batch"])
    entropy = sum(entropies[k].item() for k in tokens) / n
    return loss, chosen, sum(cov.values()) / n, entropy


def run_loss(trainer, batch):
    """The trainer's loss and gradients on the batch, the tokens it chose and its per-token log-probs."""
    seen = {}
    choose, forward = trainer._apply_covariance_rule, trainer._get_per_token_logps_and_entropies

    def recording_choice(cov_batch, log_probs):
        choose(cov_batch, log_probs)
        seen["chosen"] = cov_batch["cov_mask"]

    def recording_forward(*args, **kwargs):
        log_probs, entropies, aux = forward(*args, **kwargs)
        log_probs.retain_grad()
        seen["log_probs"] = log_probs
        return log_probs, entropies, aux

    trainer._apply_covariance_rule = recording_choice
    trainer._get_per_token_logps_and_entropies = recording_forward
    trainer.model.zero_grad()
    loss = trainer._compute_loss(trainer.model, batch)
    loss.backward()
    grads = {name: p.grad.clone() for name, p in trainer.model.named_parameters() if p.grad is not None}
    chosen = {(b, t) for b, t in torch.nonzero(seen["chosen"]).tolist()}
    return loss.item(), grads, chosen, seen["log_probs"]


@pytest.mark.parametrize(
    ("overrides", "off_policy"),
    [
        (("cov_mode=clip_cov", "clip_cov_ratio=1.0"), False),
        (("cov_mode=clip_cov", "clip_cov_ratio=1.0"), True),
        (("cov_mode=kl_cov", "kl_cov_ratio=0.2", "kl_cov_coef=0.5"), True),
        (("cov_mode=kl_cov", "kl_cov_ratio=0.2", "kl_cov_coef=0.5", "loss_type=grpo"), True),
    ],
)
def test_loss_gradients_and_metrics_equal_the_naive_reference(
    tmp_path, tiny_models, synth_world, overrides, off_policy
):
    trainer = trainer_of(tmp_path, tiny_models, synth_world, *overrides)
    batch = with_old_log_probs(trainer, fixed_batch(trainer.model.config.vocab_size, off_policy))
    advantages = batch["advantages"]
    loss, grads, chosen, _ = run_loss(trainer, batch)
    # the buffered batch is read again when num_iterations > 1: left as it was
    assert batch["advantages"] is advantages and batch.keys().isdisjoint({"cov_mask", "kl_cov_penalty"})

    model64 = AutoModelForCausalLM.from_pretrained(tiny_models / "instruct", dtype=torch.float64)
    expected_loss, expected_chosen, cov_mean, entropy = reference(model64, batch, trainer.args)
    expected_loss.backward()
    assert chosen == expected_chosen
    assert 4 <= len(chosen) < sum(LENGTHS)  # the batch puts some tokens in the band and some out
    assert loss == pytest.approx(expected_loss.item(), rel=1e-5, abs=1e-5)  # fp32 against fp64: terms of ~0.2 summed
    expected_grads = {name: p.grad for name, p in model64.named_parameters() if p.grad is not None}
    assert grads.keys() == expected_grads.keys()
    for name, grad in grads.items():
        expected = expected_grads[name]  # fp32 against fp64: to 1e-5 of the tensor's largest entry
        torch.testing.assert_close(grad.double(), expected, rtol=1e-4, atol=1e-5 * expected.abs().max().item())
    metrics = trainer._metrics["train"]
    share = "cov/clipped_share" if trainer.args.cov_mode == "clip_cov" else "cov/penalized_share"
    assert metrics[share] == [pytest.approx(len(expected_chosen) / sum(LENGTHS))]
    assert metrics["cov/mean"] == [pytest.approx(cov_mean, rel=1e-5)]
    assert metrics["entropy"] == [pytest.approx(entropy, rel=1e-5)]  # TRL's policy entropy


def test_clip_cov_gives_the_chosen_tokens_exactly_zero_gradient(tmp_path, tiny_models, synth_world):
    trainer = trainer_of(tmp_path, tiny_models, synth_world, "cov_mode=clip_cov", "clip_cov_ratio=0.2", "beta=0")
    batch = with_old_log_probs(trainer, fixed_batch(trainer.model.config.vocab_size, off_policy=False))
    _, _, chosen, log_probs = run_loss(trainer, batch)
    assert len(chosen) == int(0.2 * sum(LENGTHS))  # 5 of 27 tokens
    for b in range(B):
        for t in range(LENGTHS[b]):
            if (b, t) in chosen:
                assert log_probs.grad[b, t].item() == 0.0
            else:  # on-policy: every other token keeps its gradient, -A / tokens
                assert log_probs.grad[b, t].item() == pytest.approx(-ADVANTAGES[b] / (2 * sum(LENGTHS)))


def test_the_random_choice_is_seeded(tmp_path, tiny_models, synth_world):
    def chosen(seed, step):
        trainer = trainer_of(tmp_path, tiny_models, synth_world, "cov_mode=clip_cov", "clip_cov_ratio=0.15",
                             f"seed={seed}")  # fmt: skip
        trainer._step = step
        batch = with_old_log_probs(trainer, fixed_batch(trainer.model.config.vocab_size, off_policy=False))
        return run_loss(trainer, batch)[2]

    first = chosen(0, 0)
    assert len(first) == 4 and chosen(0, 0) == first  # int(0.15 x 27 tokens)
    assert {frozenset(chosen(seed, step)) for seed, step in [(0, 0), (0, 1), (1, 0), (2, 0)]} != {frozenset(first)}


def test_selection_equals_a_loop_over_the_tokens():
    generator = torch.Generator().manual_seed(3)
    log_probs = -torch.rand(3, 6, generator=generator, dtype=torch.float64) * 6
    advantages = torch.tensor([4.0, -3.0, 2.5], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [1, 1, 1, 1, 0, 0], [1, 1, 1, 1, 1, 0]], dtype=torch.float64)
    ppo_clipped = torch.zeros(3, 6, dtype=torch.bool)
    ppo_clipped[0, 1] = True
    covariance = token_covariance(log_probs, advantages, mask)
    tokens = [(b, t) for b in range(3) for t in range(6) if mask[b, t]]
    mean_a = sum(advantages[b].item() for b, _ in tokens) / len(tokens)
    mean_lp = sum(log_probs[b, t].item() for b, t in tokens) / len(tokens)
    for b in range(3):
        for t in range(6):
            expected = (advantages[b].item() - mean_a) * (log_probs[b, t].item() - mean_lp) if mask[b, t] else 0.0
            assert covariance[b, t].item() == pytest.approx(expected, abs=1e-12)
    candidates = [(b, t) for b, t in tokens if 0.1 < covariance[b, t] < 6.0 and not ppo_clipped[b, t]]
    assert len(candidates) == 6  # and (0, 1), in the band, was clipped by PPO
    order = torch.randperm(len(candidates), generator=torch.Generator().manual_seed(11)).tolist()
    expected = {candidates[i] for i in order[: int(0.2 * len(tokens))]}
    selected = select_clip_cov(covariance, mask, ppo_clipped, 0.2, 0.1, 6.0, torch.Generator().manual_seed(11))
    assert {(b, t) for b, t in torch.nonzero(selected).tolist()} == expected and len(expected) == 3
    # nothing in the band: nothing chosen; a tiny ratio still chooses one
    none = select_clip_cov(covariance, mask, ppo_clipped, 0.2, 100.0, 200.0, torch.Generator().manual_seed(0))
    one = select_clip_cov(covariance, mask, ppo_clipped, 1e-6, 0.5, 4.0, torch.Generator().manual_seed(0))
    assert none.sum().item() == 0 and one.sum().item() == 1


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("cov_mode=entropy",), "invalid choice: 'entropy'"),
        (("cov_mode=clip_cov", "clip_cov_ratio=0"), "clip_cov_ratio must be a share in (0, 1], got 0.0"),
        (("kl_cov_ratio=2",), "kl_cov_ratio must be a share in (0, 1], got 2.0"),
        (("clip_cov_lb=5", "clip_cov_ub=1"), "clip_cov_lb 5.0 must be below clip_cov_ub 1.0"),
        (("kl_cov_coef=-1",), "kl_cov_coef must be >= 0, got -1.0"),
        (("cov_mode=kl_cov", "loss_type=cispo"), "loss_type one of grpo, bnpo, dr_grpo, dapo (got 'cispo')"),
        (("cov_mode=clip_cov", "importance_sampling_level=sequence", "loss_type=grpo"), "(got 'sequence')"),
    ],
)
def test_bad_cov_settings_are_clear_errors(tmp_path, overrides, message):
    with pytest.raises(OxaError) as error:
        config_of(tmp_path, *overrides)
    assert message in str(error.value)


def test_paper_clipcov_preset_is_paper_with_clip_cov(tmp_path):
    def settings(preset):
        run = GRPORun(model="unused", prompts="unused", output=str(tmp_path), preset=preset)
        return resolve_grpo_settings(run, ranks=1)

    paper, _ = settings("paper")
    clipcov, record = settings("paper-clipcov")
    assert record == {"name": "paper-clipcov", "prompts_per_step": 64, "overrides": [], "base": "paper"}
    assert clipcov == paper | {"cov_mode": "clip_cov", "clip_cov_ratio": 2e-4, "clip_cov_lb": 1.0, "clip_cov_ub": 5.0}
    config = grpo_config(clipcov | {"bf16": False, "use_cpu": True}, "paper-clipcov")
    assert (config.cov_mode, config.clip_cov_ratio, config.clip_cov_lb, config.clip_cov_ub) == ("clip_cov", 2e-4, 1, 5)
    assert (config.kl_cov_ratio, config.kl_cov_coef) == (2e-4, 1.0)  # verl's KL-Cov defaults
    bad = tmp_path / "bad.toml"
    bad.write_text('base = "nope"\n')
    with pytest.raises(OxaError, match="base 'nope' is not another shipped GRPO preset"):
        settings(str(bad))


@pytest.mark.parametrize(
    ("settings", "share"),
    [(("cov_mode=clip_cov",), "cov/clipped_share"), (("cov_mode=kl_cov", "num_iterations=2"), "cov/penalized_share")],
)
def test_two_cov_steps_log_the_metrics(tmp_path, tiny_models, synth_world, settings, share):
    args = ["train", "grpo", "--model", tiny_models / "instruct", "--prompts", synth_world / "heldout.json",
            "--output", tmp_path / "out", "--preset", "tiny", "--set", "reward_workers=1"]  # fmt: skip
    for setting in settings:
        args += ["--set", setting]
    result = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert share in result.output  # in the summary
    state = json.loads((tmp_path / "out" / "trainer_state.json").read_text())
    steps = [entry for entry in state["log_history"] if share in entry]  # num_iterations 2: one generation
    assert [entry["step"] for entry in steps] == [1, 2]
    for entry in steps:
        assert 0 <= entry[share] <= 1 and "cov/mean" in entry and entry["entropy"] > 0
    record = json.loads((tmp_path / "out" / "oxa_grpo.json").read_text())
    assert record["config"]["cov_mode"] == settings[0].partition("=")[2] and record["config"]["clip_cov_ub"] == 5.0
