"""`oxa model prepare`: rope theta, max positions and the default system prompt change,
nothing else; the weights are copied byte for byte and load unchanged."""

import json

import pytest
from typer.testing import CliRunner

from curate.cli import app
from curate.workspace import OxaError

pytest.importorskip("transformers")

from tests.tiny_random import save_tiny_random_model  # noqa: E402
from train.sft import PrepareConfig, prepare_model  # noqa: E402

runner = CliRunner()

# The chat templates of Qwen2 / Qwen2.5 (a default "You are a helpful assistant.") and of
# Qwen2.5-Math (a default "Please reason step by step ..."), as the hub ships them (tools
# branch and tool-call rendering of the latter shortened).
QWEN2 = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
QWEN25_MATH = """{%- if tools %}
    {{- '<|im_start|>system\\n' }}
    {%- if messages[0]['role'] == 'system' %}
        {{- messages[0]['content'] }}
    {%- else %}
        {{- 'Please reason step by step, and put your final answer within \\\\boxed{}.' }}
    {%- endif %}
    {{- "\\n\\n# Tools\\n\\n<tools>" }}
    {%- for tool in tools %}
        {{- "\\n" }}
        {{- tool | tojson }}
    {%- endfor %}
    {{- "\\n</tools><|im_end|>\\n" }}
{%- else %}
    {%- if messages[0]['role'] == 'system' %}
        {{- '<|im_start|>system\\n' + messages[0]['content'] + '<|im_end|>\\n' }}
    {%- else %}
        {{- '<|im_start|>system\\nPlease reason step by step, and put your final answer within \\\\boxed{}.<|im_end|>\\n' }}
    {%- endif %}
{%- endif %}
{%- for message in messages %}
    {%- if (message.role == "user") or (message.role == "system" and not loop.first) or (message.role == "assistant") %}
        {{- '<|im_start|>' + message.role + '\\n' + message.content + '<|im_end|>' + '\\n' }}
    {%- endif %}
{%- endfor %}
{%- if add_generation_prompt %}
    {{- '<|im_start|>assistant\\n' }}
{%- endif %}
"""
# Writes a system turn with no default text at all: not removable by editing literals.
ALWAYS_SYSTEM = (
    "{{ '<|im_start|>system\\n' }}{% if messages[0]['role'] == 'system' %}{{ messages[0]['content'] }}{% endif %}"
    "{{ '<|im_end|>\\n' }}{% for message in messages %}{% if message['role'] != 'system' %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' }}{% endif %}{% endfor %}"
)
USER = [{"role": "user", "content": "What is 2+2?"}]
SYSTEM = [{"role": "system", "content": "Be brief."}, *USER]


def model(tmp_path, template, name="src"):
    return save_tiny_random_model(tmp_path / name, ["What is 2+2? Be brief. \\boxed{4}"], chat_template=template)


def render(folder, messages, **kwargs):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(folder).apply_chat_template(messages, tokenize=False, **kwargs)


@pytest.mark.parametrize(
    ("template", "default"),
    [
        (QWEN2, "You are a helpful assistant."),
        (QWEN25_MATH, "Please reason step by step, and put your final answer within \\boxed{}."),
    ],
)
def test_prepare_changes_exactly_rope_positions_and_template(tmp_path, template, default):
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    src = model(tmp_path, template)
    dst = tmp_path / "dst"
    assert render(src, USER).startswith(f"<|im_start|>system\n{default}<|im_end|>\n")
    result = runner.invoke(
        app,
        [
            "model",
            "prepare",
            str(src),
            str(dst),
            "--rope-theta",
            "1e6",
            "--max-position-embeddings",
            "40000",
            "--no-system-prompt",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    assert "chat template: removed the default system prompt" in " ".join(result.output.split())

    # the template: no system turn without a system message; an explicit one as before
    assert (
        render(dst, USER, add_generation_prompt=True)
        == "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n"
    )
    assert render(dst, SYSTEM) == render(src, SYSTEM)
    assert "system" not in render(dst, USER + [{"role": "assistant", "content": "4"}])

    # the config: exactly rope theta and max positions differ
    before, after = (json.loads((folder / "config.json").read_text()) for folder in (src, dst))
    assert before["rope_parameters"]["rope_theta"] == 10000.0
    assert after["rope_parameters"] == before["rope_parameters"] | {"rope_theta": 1e6}
    assert after["max_position_embeddings"] == 40000
    assert {k for k in before.keys() | after.keys() if before.get(k) != after.get(k)} == {
        "rope_parameters",
        "max_position_embeddings",
    }
    loaded = AutoConfig.from_pretrained(dst)
    assert loaded.rope_parameters["rope_theta"] == 1e6 and loaded.max_position_embeddings == 40000

    # the weights: the same bytes, and the same tensors when loaded
    assert (dst / "model.safetensors").read_bytes() == (src / "model.safetensors").read_bytes()
    a, b = (AutoModelForCausalLM.from_pretrained(f).state_dict() for f in (src, dst))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert (dst / "tokenizer.json").read_bytes() == (src / "tokenizer.json").read_bytes()

    record = json.loads((dst / "oxa_prepare.json").read_text())
    assert record["changes"] == {
        "config.json": {"rope_parameters.rope_theta": [10000.0, 1e6], "max_position_embeddings": [512, 40000]},
        "chat_template": {"file": "chat_template.jinja", "removed_default_system_prompt": default},
    }
    assert "model.safetensors" in record["files"]


def test_template_in_tokenizer_config_and_legacy_rope_theta(tmp_path):
    src = model(tmp_path, QWEN2)
    # the transformers 4 layout: template in tokenizer_config.json, a top-level rope_theta
    config = json.loads((src / "config.json").read_text())
    config["rope_theta"] = config.pop("rope_parameters")["rope_theta"]
    (src / "config.json").write_text(json.dumps(config))
    tokenizer_config = json.loads((src / "tokenizer_config.json").read_text())
    tokenizer_config["chat_template"] = (src / "chat_template.jinja").read_text()
    (src / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    (src / "chat_template.jinja").unlink()

    record = prepare_model(PrepareConfig(str(src), str(tmp_path / "dst"), rope_theta=1e6, no_system_prompt=True))
    assert record["changes"]["config.json"] == {"rope_theta": [10000.0, 1e6]}
    after = json.loads((tmp_path / "dst" / "config.json").read_text())
    assert after["rope_theta"] == 1e6 and "rope_parameters" not in after
    assert render(tmp_path / "dst", USER) == "<|im_start|>user\nWhat is 2+2?<|im_end|>\n"


def test_no_default_system_prompt_and_errors(tmp_path):
    plain = model(tmp_path, None, name="plain")  # the test bed's template: no system turn of its own
    record = prepare_model(PrepareConfig(str(plain), str(tmp_path / "same"), no_system_prompt=True))
    assert record["changes"] == {
        "config.json": {},
        "chat_template": {"file": "chat_template.jinja", "removed_default_system_prompt": None},
    }
    assert record["files"] == sorted(p.name for p in plain.iterdir())
    for name in record["files"]:  # nothing to change: every file as it was (and the record beside them)
        assert (tmp_path / "same" / name).read_bytes() == (plain / name).read_bytes()

    with pytest.raises(OxaError, match="exists; choose another output folder or pass --overwrite"):
        prepare_model(PrepareConfig(str(plain), str(tmp_path / "same")))
    prepare_model(PrepareConfig(str(plain), str(tmp_path / "same"), max_position_embeddings=1024, overwrite=True))
    assert json.loads((tmp_path / "same" / "config.json").read_text())["max_position_embeddings"] == 1024

    always = model(tmp_path, ALWAYS_SYSTEM, name="always")
    with pytest.raises(OxaError, match="writes a system turn without a system message .* pass --chat-template FILE"):
        prepare_model(PrepareConfig(str(always), str(tmp_path / "x"), no_system_prompt=True))
    assert not (tmp_path / "x").exists()
    with pytest.raises(OxaError, match="is not a model folder"):
        prepare_model(PrepareConfig(str(tmp_path), str(tmp_path / "y")))
