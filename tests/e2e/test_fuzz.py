"""Fuzzed request bodies never get a 5xx from the gateway and never kill it."""

from __future__ import annotations

import http.client
import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.procs import HOST, Gateway, free_port, gateway, gateway_config, http_get, sim

pytestmark = pytest.mark.e2e

PATHS = ["/v1/chat/completions", "/v1/completions", "/v1/embeddings", "/generate"]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
    max_leaves=12,
)
message = st.fixed_dictionaries(
    {"role": st.sampled_from(["user", "system", "assistant", "tool", "wizard", 3])},
    optional={"content": st.one_of(st.text(max_size=30), json_values)},
)
# Mostly-valid requests with one or two fields gone wrong reach deeper than random JSON.
near_valid = st.fixed_dictionaries(
    {"model": st.sampled_from(["sim-model", "", "other", 7])},
    optional={
        "messages": st.lists(message, max_size=3) | json_values,
        "prompt": st.text(max_size=30) | st.lists(st.integers(0, 50000), max_size=5) | json_values,
        "input": st.text(max_size=20) | json_values,
        "text": st.text(max_size=20),
        "max_tokens": st.integers(-5, 40) | json_values,
        "n": st.integers(-1, 3) | json_values,
        "stream": st.booleans() | json_values,
        "temperature": st.floats(-1, 3, allow_nan=False) | json_values,
        "stop": st.text(max_size=3) | json_values,
        "stream_options": st.just({"include_usage": True}) | json_values,
    },
)
bodies = near_valid.map(orjson.dumps) | json_values.map(orjson.dumps) | st.binary(max_size=60)


@pytest.fixture(scope="module")
def fuzz_gw(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gateway]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    with ExitStack() as stack:
        s = stack.enter_context(sim(tmp, "--itl-ms", "0", "--ttft-base-ms", "0"))
        doc = gateway_config([s], free_port(), free_port())
        yield stack.enter_context(gateway(tmp, doc))


def post(gw: Gateway, path: str, body: bytes) -> tuple[int, bytes, str]:
    host, port = gw.url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        return r.status, r.read(), r.getheader("Content-Type") or ""
    finally:
        conn.close()


@settings(
    max_examples=250,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(path=st.sampled_from(PATHS), body=bodies)
def test_fuzzed_bodies_get_an_answer_below_500(fuzz_gw: Gateway, path: str, body: bytes) -> None:
    status, payload, ctype = post(fuzz_gw, path, body)
    assert status < 500, (status, payload[:300])
    if status >= 400:
        doc: Any = json.loads(payload)
        assert set(doc["error"]) >= {"message", "type"}
    elif "event-stream" in ctype:
        assert payload.rstrip().endswith(b"data: [DONE]")


def test_gateway_survived_the_fuzzing(fuzz_gw: Gateway) -> None:
    assert fuzz_gw.proc.popen.poll() is None
    assert http_get(f"http://{HOST}:{fuzz_gw.url.rsplit(':', 1)[1]}/health")[0] == 200
