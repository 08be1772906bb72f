"""Chat-template semantics and prompt token counts against transformers."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from tok_corpus import TOOLS
from tok_helpers import hf, ours

from smg.tokenization import (
    ChatTemplate,
    ChatTemplateError,
    detect_content_format,
    openai_to_template_messages,
)

USER = [{"role": "user", "content": "hi"}]

OPENAI_CHAT: list[dict[str, Any]] = [
    {"role": "system", "content": "You are a weather bot."},
    {
        "role": "user",
        "content": [{"type": "text", "text": "Weather in"}, {"type": "text", "text": "Paris?"}],
    },
    {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_9",
                "type": "function",
                "function": {"name": "get_weather", "arguments": '{"city": "Paris", "unit": "c"}'},
            }
        ],
    },
    {"role": "tool", "tool_call_id": "call_9", "content": '{"temp": 18}'},
    {"role": "assistant", "content": "18°C ☀️", "reasoning_content": "It is sunny."},
    {"role": "user", "content": "Thanks! 谢谢"},
]  # fmt: skip


def test_tojson_has_hf_semantics() -> None:
    tpl = ChatTemplate(
        "{{ x | tojson }}|{{ x | tojson(indent=2) }}|{{ x | tojson(separators=(',', ':')) }}"
        "|{{ x | tojson(sort_keys=true) }}|{{ x | tojson(ensure_ascii=true) }}"
    )
    x = {"b": "<é>", "a": [1, 2]}
    assert tpl.render(USER, x=x) == "|".join(
        [
            json.dumps(x, ensure_ascii=False),
            json.dumps(x, ensure_ascii=False, indent=2),
            json.dumps(x, ensure_ascii=False, separators=(",", ":")),
            json.dumps(x, ensure_ascii=False, sort_keys=True),
            json.dumps(x),
        ]
    )


def test_raise_exception_and_errors_are_chat_template_errors() -> None:
    with pytest.raises(ChatTemplateError, match="no system"):
        ChatTemplate("{{ raise_exception('no system') }}").render(USER)
    with pytest.raises(ChatTemplateError):
        ChatTemplate("{% if %}")
    with pytest.raises(ChatTemplateError):
        ChatTemplate("{{ messages[0].content.nope() }}").render(USER)
    with pytest.raises(ChatTemplateError):
        ChatTemplate("{% set ns = namespace(_x=1) %}").render(USER)
    with pytest.raises(ChatTemplateError):  # the sandbox is immutable
        ChatTemplate("{{ messages.append(1) }}").render(USER)
    with pytest.raises(ChatTemplateError):
        ChatTemplate("x").render([])


def test_globals_and_whitespace_control() -> None:
    src = (
        "{% for m in messages %}\n  {% if loop.index > 5 %}{% break %}{% endif %}"
        "{{ m.content }}{% generation %}!{% endgeneration %}\n{% endfor %}"
        "{{ strftime_now('%Y') | length }}{{ dict(a=1).a }}{{ bos_token }}"
    )
    out = ChatTemplate(src, {"bos_token": "<s>"}).render(USER * 2)
    assert out == "hi!hi!41<s>"


def test_none_values_dropped_and_reasoning_aliased() -> None:
    tpl = ChatTemplate(
        "{% for m in messages %}{{ m.tool_calls is defined }}"
        "{{ m.reasoning_content }}/{{ m.thinking }}{% endfor %}"
    )
    msgs = [{"role": "assistant", "content": "x", "tool_calls": None, "reasoning": "r"}]
    assert tpl.render(msgs) == "Falser/r"


def test_openai_conversion_parses_arguments_and_parts() -> None:
    conv = openai_to_template_messages(OPENAI_CHAT)
    assert conv[2]["tool_calls"][0]["function"]["arguments"] == {"city": "Paris", "unit": "c"}
    assert conv[1]["content"] == "Weather in\nParis?"
    assert OPENAI_CHAT[2]["tool_calls"][0]["function"]["arguments"].startswith("{")  # not mutated
    parts = [{"type": "text", "text": "what is"}, {"type": "image_url", "image_url": {"url": "x"}}]
    mm = openai_to_template_messages([{"role": "user", "content": parts}], "openai")
    assert mm[0]["content"] == [{"type": "text", "text": "what is"}, {"type": "image"}]
    bad = [{"role": "assistant", "tool_calls": [{"function": {"name": "f", "arguments": "{"}}]}]
    assert openai_to_template_messages(bad)[0]["tool_calls"][0]["function"]["arguments"] == "{"


def test_detect_content_format() -> None:
    assert detect_content_format("{{ messages[0]['content'] }}") == "string"
    loop = "{% for m in messages %}{% for c in m['content'] %}{{ c.text }}{% endfor %}{% endfor %}"
    assert detect_content_format(loop) == "openai"


def test_multimodal_parts_render_like_transformers() -> None:
    from tok_corpus import template_source

    src = template_source("Qwen-Qwen2.5-VL-7B-Instruct")
    parts = [{"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "describe"}]
    msgs = openai_to_template_messages([{"role": "user", "content": parts}], "openai")
    assert detect_content_format(src) == "openai"
    ref = hf("qwen3").apply_chat_template(
        copy.deepcopy(msgs), chat_template=src, tokenize=False, add_generation_prompt=True
    )
    assert ChatTemplate(src).render(msgs, add_generation_prompt=True) == ref
    assert "<|vision_start|><|image_pad|><|vision_end|>describe" in ref


@pytest.mark.parametrize("name", ["qwen3", "qwen25", "llama3"])
@pytest.mark.parametrize("thinking", [True, False])
def test_prompt_token_counts_match_transformers(name: str, thinking: bool) -> None:
    tok, ref = ours(name), hf(name)
    msgs = openai_to_template_messages(OPENAI_CHAT)
    for tools in (None, TOOLS):
        kwargs = {"enable_thinking": thinking}
        text = tok.apply_chat_template(msgs, tools=tools, add_generation_prompt=True, **kwargs)
        ref_text = ref.apply_chat_template(
            copy.deepcopy(msgs), tools=tools, tokenize=False, add_generation_prompt=True, **kwargs
        )
        assert text == ref_text
        ref_ids = ref.apply_chat_template(
            copy.deepcopy(msgs), tools=tools, tokenize=True, add_generation_prompt=True, **kwargs
        )
        ids = ref_ids["input_ids"] if hasattr(ref_ids, "keys") else ref_ids
        assert tok.encode(text) == list(ids)


def test_continue_final_message_matches_transformers() -> None:
    tok, ref = ours("qwen25"), hf("qwen25")
    msgs = [*USER, {"role": "assistant", "content": "The answer is"}]
    ours_text = tok.apply_chat_template(msgs, continue_final_message=True)
    ref_text = ref.apply_chat_template(
        copy.deepcopy(msgs), tokenize=False, continue_final_message=True
    )
    assert ours_text == ref_text
    assert ours_text.endswith("The answer is")
    with pytest.raises(ChatTemplateError):
        tok.apply_chat_template(msgs, continue_final_message=True, add_generation_prompt=True)
