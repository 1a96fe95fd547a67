"""The tiny reference models (train.tiny.models): plain Hugging Face folders that behave."""

import json
import math
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
from tokenizers import Tokenizer  # noqa: E402
from transformers import AutoModelForCausalLM, AutoTokenizer, Qwen2ForCausalLM  # noqa: E402

from curate.synth.world import CORPUS_FILE, load_manifest  # noqa: E402
from curate.workspace import OxaError  # noqa: E402
from tests.conftest import FAST_MODELS  # noqa: E402
from train.tiny import TinyModelConfig, build_tiny_models  # noqa: E402
from train.tiny.models import _pretraining_documents  # noqa: E402

ODD_TEXT = "ﬁnd x？ a\u00a0b\tc\r\n\n  d  — ünïcödé 中文 😀 'll <think>\n\\boxed{\\frac{1}{2}}\n</think>\n\n"


@pytest.fixture(autouse=True)
def one_thread():
    """Forward passes of a model this small run fastest on one thread, most of all when
    other processes share the cores."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def pool_texts(world) -> list[str]:
    return [json.loads(line)["output"] for line in (world / "pool" / "teacher.jsonl").read_text().splitlines()]


def test_tokenizer_reloads_with_the_same_ids(tiny_models, synth_world):
    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "base")
    raw = Tokenizer.from_file(str(tiny_models / "base" / "tokenizer.json"))
    assert len(tokenizer) == 1024
    for text in [*pool_texts(synth_world)[:40], ODD_TEXT]:
        ids = tokenizer(text)["input_ids"]
        assert ids == raw.encode(text).ids
        assert tokenizer.decode(ids) == text
        assert tokenizer.decode(ids, skip_special_tokens=True) == text
    think, end_think, im_end = tokenizer.convert_tokens_to_ids(["<think>", "</think>", "<|im_end|>"])
    assert tokenizer("<think>\nx\n</think>")["input_ids"][0] == think
    assert end_think in tokenizer("<think>\nx\n</think>")["input_ids"]
    assert think not in tokenizer.all_special_ids and end_think not in tokenizer.all_special_ids
    assert im_end in tokenizer.all_special_ids
    assert tokenizer.decode([im_end, think], skip_special_tokens=True) == "<think>"
    for name in ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja"):
        assert (tiny_models / "base" / name).read_bytes() == (tiny_models / "instruct" / name).read_bytes()


def test_chat_template_marks_the_assistant_turn(tiny_models):
    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "instruct")
    messages = [
        {"role": "user", "content": "What is $1+1$?"},
        {"role": "assistant", "content": "<think>\nadd\n</think>\n\n$\\boxed{2}$"},
    ]
    assert (
        tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
        == "<|im_start|>user\nWhat is $1+1$?<|im_end|>\n<|im_start|>assistant\n"
    )
    encoded = tokenizer.apply_chat_template(messages, return_dict=True, return_assistant_tokens_mask=True)
    learned = [t for t, m in zip(encoded["input_ids"], encoded["assistant_masks"]) if m]
    assert tokenizer.decode(learned) == messages[1]["content"] + "<|im_end|>"
    assert tokenizer.decode(encoded["input_ids"]).endswith("<|im_end|>\n")


def test_models_load_with_the_auto_classes(tiny_models):
    for name, eos in (("base", ["<|im_end|>", "<|endoftext|>"]), ("instruct", ["<|im_end|>", "<|endoftext|>"])):
        folder = tiny_models / name
        model = AutoModelForCausalLM.from_pretrained(folder)
        tokenizer = AutoTokenizer.from_pretrained(folder)
        assert isinstance(model, Qwen2ForCausalLM) and (folder / "model.safetensors").is_file()
        config = model.config
        assert config.hidden_size // config.num_attention_heads >= 32 and config.vocab_size == len(tokenizer)
        eos_ids = tokenizer.convert_tokens_to_ids(eos)
        assert model.generation_config.eos_token_id == (eos_ids if len(eos_ids) > 1 else eos_ids[0])
    build = json.loads((tiny_models / "build.json").read_text())
    assert build["seen_styles"] == ["concise", "chatty"] and build["unseen_styles"] == ["formal", "socratic"]


def perplexity(model, tokenizer, text: str) -> float:
    """exp(mean NLL of each token after the first): one plain forward pass."""
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0, :-1].double()
    nll = torch.nn.functional.cross_entropy(logits, ids[0, 1:], reduction="mean")
    return math.exp(nll.item())


def test_seen_styles_have_lower_perplexity(tiny_models, synth_world):
    model = AutoModelForCausalLM.from_pretrained(tiny_models / "base").eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "base")
    texts = pool_texts(synth_world)
    by_style: dict[str, list[float]] = {}
    for sample in load_manifest(synth_world)["samples"]:
        if sample["flaw"] == "none":
            by_style.setdefault(sample["style"], []).append(perplexity(model, tokenizer, texts[sample["row"]]))
    mean = {style: sum(v) / len(v) for style, v in by_style.items()}
    assert max(mean["concise"], mean["chatty"]) < min(mean["formal"], mean["socratic"]), mean
    assert all(1 < p < 1024 for v in by_style.values() for p in v)


def test_instruct_model_answers_in_the_teacher_shape(tiny_models, synth_world):
    model = AutoModelForCausalLM.from_pretrained(tiny_models / "instruct").eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_models / "instruct")
    problem = json.loads((synth_world / "heldout.json").read_text())[0]["problem"]
    chat = [{"role": "user", "content": problem}]
    prompt = tokenizer(tokenizer.apply_chat_template(chat, tokenize=False, add_generation_prompt=True))["input_ids"]
    with torch.no_grad():
        out = model.generate(torch.tensor([prompt]), max_new_tokens=24, do_sample=False)
    assert tokenizer.decode(out[0, len(prompt) :]).startswith("<think>\n")


def test_a_share_of_pretraining_gives_the_answer_alone(synth_world):
    """`answer_only` of the base model's documents keep only the summary after </think>
    (the seeded share, exactly); the others are the corpus responses whole."""
    corpus = [json.loads(line) for line in (synth_world / CORPUS_FILE).read_text().splitlines()]
    config = TinyModelConfig(str(synth_world), "unused", styles=["concise", "chatty"], other_share=0.0, answer_only=0.3)
    documents = _pretraining_documents(corpus, config)
    worked = [d for d in corpus if d["style"] in ("concise", "chatty")]
    assert len(documents) == len(worked)
    brief = 0
    for document, source in zip(documents, worked, strict=True):
        assert source["problem"] in document
        summary = source["response"].split("</think>\n\n", 1)[1]
        if "assistant\n<think>" in document:  # (an instruction may name <think> too)
            assert document.endswith(f"assistant\n{source['response']}<|im_end|>\n")
        else:
            assert document.endswith(f"assistant\n{summary}<|im_end|>\n")
            brief += 1
    assert brief == round(len(worked) * 0.3)
    assert _pretraining_documents(corpus, config) == documents  # seeded


def test_builds_are_deterministic(synth_world, tmp_path):
    settings = {**FAST_MODELS, "pretrain_steps": 3, "sft_steps": 2}
    for name, instruct in (("a", True), ("a", False), ("b", False)):
        config = TinyModelConfig(str(synth_world), str(tmp_path / name), instruct=instruct, **settings)
        build_tiny_models(config, progress=lambda message: None)
    for file in ("model.safetensors", "tokenizer.json", "config.json"):
        assert (tmp_path / "a" / "base" / file).read_bytes() == (tmp_path / "b" / "base" / file).read_bytes()
    assert not (tmp_path / "a" / "instruct").exists()  # the first build's, stale after the second


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"hidden_size": 64, "heads": 4, "kv_heads": 1}, "head size 16; it must be a whole number of at least 32"),
        ({"heads": 4, "kv_heads": 3}, "--heads 4 must be a multiple of --kv-heads 3"),
        ({"styles": ["concise", "poetic"]}, "--styles must name one or more of the world's styles"),
        ({"styles": ["terse"]}, "--styles must name one or more of the world's styles"),  # not this world's
        ({"other_share": 1.0}, "--other-share is a share"),
        ({"answer_only": -0.1}, "--answer-only is a share"),
        ({"threads": 0}, "--threads must be 1 or more"),
    ],
)
def test_bad_settings_are_refused(synth_world, tmp_path, settings, message):
    settings = {**FAST_MODELS, **settings}
    with pytest.raises(OxaError, match=message):
        build_tiny_models(TinyModelConfig(str(synth_world), str(tmp_path / "m"), **settings))
    assert not (tmp_path / "m").exists()


def test_missing_extra_names_the_install(tmp_path):
    code = "import sys; sys.modules['torch'] = None; import train.tiny.models"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 1
    assert "MissingExtra" in result.stderr and "pip install 'oxa[train]'" in result.stderr
