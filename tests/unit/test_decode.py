"""Request body decoding: every rejection names the field, in OpenAI's error shape."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from smg.errors import BadRequest
from smg.listeners.decode import decode_json
from smg.protocol.openai_errors import error_body


def rejects(body: bytes, kind: str = "chat") -> BadRequest:
    with pytest.raises(BadRequest) as ei:
        decode_json(body, kind)
    return ei.value


def test_malformed_json() -> None:
    err = rejects(b'{"model": "m", ')
    assert err.status == 400 and "parse the JSON" in err.message


def test_body_must_be_an_object() -> None:
    assert "object" in rejects(b"[1, 2]").message
    assert "object" in rejects(b'"text"').message


def test_model_missing_or_wrong_type() -> None:
    assert rejects(b'{"messages": [{"role": "user", "content": "x"}]}').param == "model"
    assert rejects(b'{"model": 3, "messages": []}').param == "model"


def test_generate_does_not_need_a_model() -> None:
    assert decode_json(b'{"text": "hi"}', "generate")["text"] == "hi"
    assert rejects(b"{}", "generate").param == "text"


@pytest.mark.parametrize(
    ("kind", "field"), [("chat", "messages"), ("completions", "prompt"), ("embeddings", "input")]
)
def test_required_field_per_kind(kind: str, field: str) -> None:
    assert rejects(b'{"model": "m"}', kind).param == field


def test_messages_must_be_a_non_empty_array() -> None:
    assert rejects(b'{"model": "m", "messages": []}').param == "messages"
    assert rejects(b'{"model": "m", "messages": "hi"}').param == "messages"


def test_stream_must_be_boolean() -> None:
    assert rejects(b'{"model": "m", "messages": [{}], "stream": "yes"}').param == "stream"


def test_error_body_is_openai_shaped() -> None:
    doc = orjson.loads(error_body(rejects(b'{"model": "m"}', "completions")))
    assert set(doc["error"]) == {"message", "type", "param", "code"}
    assert doc["error"]["type"] == "invalid_request_error"


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda children: st.lists(children) | st.dictionaries(st.text(), children),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(
    st.binary() | json_values.map(orjson.dumps),
    st.sampled_from(["chat", "completions", "embeddings", "generate"]),
)
def test_any_body_decodes_or_is_a_400(body: bytes, kind: str) -> None:
    try:
        doc = decode_json(body, kind)
    except BadRequest as err:
        assert 400 <= err.status < 500
    else:
        assert isinstance(doc, dict)


def test_unknown_role_names_the_message() -> None:
    err = rejects(b'{"model": "m", "messages": [{"role": "user"}, {"role": "wizard"}]}')
    assert err.param == "messages[1].role" and "wizard" in err.message
    assert rejects(b'{"model": "m", "messages": ["hi"]}').param == "messages[0]"


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("max_tokens", -1),
        ("max_tokens", 10**12),
        ("max_tokens", "10"),
        ("max_tokens", True),
        ("max_completion_tokens", 1.5),
        ("n", 0),
        ("n", 1000),
        ("temperature", "hot"),
        ("temperature", -0.5),
        ("top_p", [1]),
        ("stop", [1, 2]),
        ("stream_options", "yes"),
    ],
)
def test_bad_sampling_fields_are_named(field: str, value: object) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": "x"}], field: value}
    assert rejects(orjson.dumps(body)).param == field


def test_completions_prompt_and_embeddings_input_types() -> None:
    assert rejects(b'{"model": "m", "prompt": 5}', "completions").param == "prompt"
    assert rejects(b'{"model": "m", "input": []}', "embeddings").param == "input"
    ok = decode_json(b'{"model": "m", "prompt": [1, 2, 3], "max_tokens": 0}', "completions")
    assert ok["prompt"] == [1, 2, 3]
