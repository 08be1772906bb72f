"""The gRPC-mode OpenAI renderer: engine chunk sequences → exact OpenAI JSON and SSE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from functools import cache
from typing import Any, cast

import pytest

from smg.config.model import ModelConfig
from smg.filters.tokenize import sampling
from smg.openai_grpc.choice import Settings
from smg.openai_grpc.render import OpenAIRenderer
from smg.openai_grpc.resources import ModelResources, resources_for
from smg.openai_grpc.tool_choice import forced_choice
from smg.upstreams.grpc.state import ENGINE_EOS_IDS
from smg.upstreams.grpc.types import GenerateChunk, TokenLogprob
from tests.support.tokenizer_assets import asset_dir

THINK_TOOL = (
    "<think>\nNeed weather.\n</think>\n\n"
    '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
)
PLAIN = "Héllo wörld, the answer is 42 🌍. Bye!"
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
]
IM_END = 151645


@cache
def res() -> ModelResources:
    return resources_for(ModelConfig("qwen3", "smg", tokenizer=str(asset_dir("qwen3"))))


def ids(text: str) -> list[int]:
    return res().tokenizer.encode(text)


def renderer(body: dict[str, Any], chat: bool = True, stream: bool = False) -> OpenAIRenderer:
    r = res()
    sp = sampling(body, r)
    tools = body.get("tools")
    forced = forced_choice(body) if chat else None

    def parsers(i: int) -> Any:
        if not chat:
            return None
        parse = bool(tools) and forced is None
        return r.output_parser(tools=tools, parse_tools=parse, thinking=True, seed=f"rid-{i}")

    s = Settings(r.tokenizer, sp, r.tokenizer.eos_token_ids, not chat, forced, "rid")
    so = body.get("stream_options") or {}
    return OpenAIRenderer(
        chat=chat,
        model="qwen3",
        request_id="rid",
        settings=s,
        parsers=parsers,
        prompt_len=7,
        include_usage=stream and bool(so.get("include_usage")),
        logprobs=sp.logprobs,
        top_logprobs=sp.top_logprobs > 0,
    )


class Ctx:
    """The one part of a RequestContext the renderer reads: its state."""

    def __init__(self, **state: Any) -> None:
        self.state = state

    def get(self, key: Any, default: Any) -> Any:
        return self.state.get(key.name, default)


async def _iter(chunks: list[GenerateChunk]) -> AsyncIterator[GenerateChunk]:
    for c in chunks:
        yield c


def whole(body: dict[str, Any], outs: list[list[int]], chat: bool = True, **kw: Any) -> Any:
    chunks = [
        GenerateChunk(i, o, finish_reason="stop", prompt_tokens=7, completion_tokens=len(o), **kw)
        for i, o in enumerate(outs)
    ]
    r = renderer(body, chat)
    resp = asyncio.run(r.render(cast(Any, Ctx()), _iter(chunks), False))
    assert resp.body is not None
    doc = json.loads(resp.body)
    doc["created"] = 0
    return doc


def streamed(body: dict[str, Any], outs: list[list[int]], chat: bool = True) -> list[Any]:
    """Token-by-token chunks, sequences interleaved, then a finish chunk each."""
    chunks = []
    for k in range(max(len(o) for o in outs)):
        for i, o in enumerate(outs):
            if k < len(o):
                chunks.append(GenerateChunk(i, [o[k]], prompt_tokens=7, completion_tokens=k + 1))
    for i in range(len(outs)):
        chunks.append(GenerateChunk(i, [], finish_reason="stop", prompt_tokens=7))

    async def run() -> list[bytes]:
        resp = await renderer(body, chat, stream=True).render(cast(Any, Ctx()), _iter(chunks), True)
        assert resp.stream is not None
        return [b async for b in resp.stream]

    events = asyncio.run(run())
    assert events[-1] == b"data: [DONE]\n\n"
    return [json.loads(e[6:]) for e in events[:-1]]


def test_plain_chat_exact_json() -> None:
    doc = whole({"messages": []}, [[*ids(PLAIN), IM_END]])
    assert doc == {
        "id": "chatcmpl-rid",
        "object": "chat.completion",
        "created": 0,
        "model": "qwen3",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": PLAIN},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 7,
            "completion_tokens": len(ids(PLAIN)) + 1,
            "total_tokens": 7 + len(ids(PLAIN)) + 1,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
    }


def test_stream_concatenates_to_whole_with_role_and_usage() -> None:
    body = {"messages": [], "stream_options": {"include_usage": True}}
    out = [*ids(PLAIN), IM_END]
    evs = streamed(body, [out])
    assert evs[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in evs if e["choices"])
    assert text == PLAIN
    assert evs[-2]["choices"][0]["finish_reason"] == "stop"
    assert evs[-1]["choices"] == [] and evs[-1]["usage"] == whole(body, [out])["usage"]
    assert all(e["object"] == "chat.completion.chunk" for e in evs)


def test_tool_call_and_reasoning() -> None:
    body = {"messages": [], "tools": TOOLS}
    out = [*ids(THINK_TOOL), IM_END]
    doc = whole(body, [out])
    ch = doc["choices"][0]
    assert ch["finish_reason"] == "tool_calls"
    msg = ch["message"]
    assert msg["content"] is None and msg["reasoning_content"] == "\nNeed weather.\n"
    (call,) = msg["tool_calls"]
    assert call["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert doc["usage"]["completion_tokens_details"]["reasoning_tokens"] > 0
    evs = streamed(body, [out])
    calls = [c for e in evs for c in e["choices"][0]["delta"].get("tool_calls", [])]
    assert [c["id"] for c in calls] == [call["id"]]
    reasoning = "".join(e["choices"][0]["delta"].get("reasoning_content", "") for e in evs)
    assert reasoning == msg["reasoning_content"]
    assert evs[-1]["choices"][0]["finish_reason"] == "tool_calls"


@pytest.mark.parametrize("stop", ["wörld", "42 🌍", "Bye!"])
def test_stop_strings_never_leak(stop: str) -> None:
    body = {"messages": [], "stop": [stop, "never-there"]}
    out = [*ids(PLAIN), IM_END]
    expect = PLAIN[: PLAIN.index(stop)]
    doc = whole(body, [out])
    assert doc["choices"][0]["message"]["content"] == (expect or None)
    assert doc["choices"][0]["finish_reason"] == "stop"
    evs = streamed(body, [out])
    parts = [e["choices"][0]["delta"].get("content", "") for e in evs]
    assert "".join(parts) == expect
    # Tokens after the stop are not counted, in either mode.
    assert doc["usage"]["completion_tokens"] < len(out)


def test_n_choices_interleaved() -> None:
    outs = [[*ids("First answer."), IM_END], [*ids("Second, longer answer here."), IM_END]]
    doc = whole({"messages": [], "n": 2}, outs)
    assert [c["message"]["content"] for c in doc["choices"]] == [
        "First answer.",
        "Second, longer answer here.",
    ]
    evs = streamed({"messages": [], "n": 2}, outs)
    for i, want in enumerate(["First answer.", "Second, longer answer here."]):
        got = "".join(
            c["delta"].get("content", "") for e in evs for c in e["choices"] if c["index"] == i
        )
        assert got == want
    assert doc["usage"]["completion_tokens"] == len(outs[0]) + len(outs[1])


def test_length_finish_and_utf8_split() -> None:
    out = ids("🌍🌍")  # multi-byte characters span several byte-level tokens
    chunks = [GenerateChunk(0, out, finish_reason="length", completion_tokens=len(out))]
    r = renderer({"messages": []})
    resp = asyncio.run(r.render(cast(Any, Ctx()), _iter(chunks), False))
    assert resp.body is not None
    ch = json.loads(resp.body)["choices"][0]
    assert ch == {
        "index": 0,
        "message": {"role": "assistant", "content": "🌍🌍"},
        "logprobs": None,
        "finish_reason": "length",
    }


def test_forced_tool_choice_becomes_schema_and_call() -> None:
    body = {
        "messages": [],
        "tools": TOOLS,
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
    }
    sp = sampling(body, res())
    assert json.loads(sp.json_schema or "") == {"type": "object"}
    assert IM_END in sp.stop_token_ids
    doc = whole(body, [[*ids('{"city": "Oslo"}'), IM_END]])
    msg = doc["choices"][0]["message"]
    assert msg["tool_calls"][0]["function"] == {
        "name": "get_weather",
        "arguments": '{"city": "Oslo"}',
    }
    assert doc["choices"][0]["finish_reason"] == "tool_calls"


def test_completions_and_logprobs() -> None:
    out = [*ids("Hi there"), IM_END]
    lps = [TokenLogprob(t, -0.5, ((t, -0.5),)) for t in out]
    doc = whole({"prompt": "x", "logprobs": 1}, [out], chat=False, logprobs=lps)
    ch = doc["choices"][0]
    assert doc["object"] == "text_completion" and ch["text"] == "Hi there"
    assert ch["logprobs"]["tokens"] == ["Hi", " there"]
    assert ch["logprobs"]["top_logprobs"] == [{"Hi": -0.5}, {" there": -0.5}]
    evs = streamed({"prompt": "x"}, [out], chat=False)
    assert "".join(e["choices"][0]["text"] for e in evs) == "Hi there"


def test_engine_eos_ids_end_the_choice() -> None:
    # The tokenizer dir knows <|im_end|>; the engine also stops on <|endoftext|> (151643),
    # which the renderer learns from the adapter (state ENGINE_EOS_IDS) and never shows.
    r = renderer({"messages": []}, True)  # chat: special tokens kept (as with parsers)
    out = [*ids("Answer."), 151643, *ids("tail")]
    chunks = [GenerateChunk(0, out, finish_reason="stop", prompt_tokens=7)]
    ctx = Ctx(**{ENGINE_EOS_IDS.name: (151643,)})
    resp = asyncio.run(r.render(cast(Any, ctx), _iter(chunks), False))
    assert resp.body is not None
    doc = json.loads(resp.body)
    assert doc["choices"][0]["message"]["content"] == "Answer."
    assert doc["usage"]["completion_tokens"] == len(ids("Answer.")) + 1
