"""gRPC mode per model: embeddings over Embed, engine eos ids, tokenizer loading and errors.

Real gateway, real gRPC sims (vLLM and SGLang services), the official openai SDK.
"""

from __future__ import annotations

import base64
import copy
import json
import shutil
import struct
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import openai
import pytest
import yaml

from smg.tokenization import Tokenizer
from tests.e2e.test_grpc_wire import grpc_sim, sim_stats
from tests.support.procs import Gateway, free_port, gateway, gateway_config, http_json, wait_until
from tests.support.tokenizer_assets import asset_dir

pytestmark = pytest.mark.e2e

MESSAGES: Any = [{"role": "user", "content": "Say something."}]
IM_END, END_OF_TEXT = 151645, 151643


def grpc_mode_config(clusters: dict[str, tuple[str, str, str]]) -> dict[str, Any]:
    """One listener with the gRPC-mode chain; ``clusters``: model → (protocol, url, tokenizer)."""
    doc = gateway_config([], free_port(), free_port())
    doc["models"] = {m: {"tokenizer": tok} for m, (_, _, tok) in clusters.items()}
    doc["filters"].update(
        {"chat_template": {"type": "chat_template"}, "tokenize": {"type": "tokenize"}}
    )
    lst = doc["listeners"][0]
    lst["filters"] = ["request_id", "chat_template", "tokenize", "router"]
    lst["routes"] = [{"match": {"model": m}, "cluster": m} for m in clusters]
    doc["clusters"] = [
        {"name": m, "protocol": proto, "endpoints": [url], "lb_policy": "round_robin"}
        for m, (proto, url, _) in clusters.items()
    ]
    return doc


@pytest.fixture(scope="module")
def no_gen_config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The Qwen3 tokenizer without generation_config.json: only <|im_end|> is known as eos."""
    d = tmp_path_factory.mktemp("tok") / "qwen3-no-generation-config"
    shutil.copytree(asset_dir("qwen3"), d)
    (d / "generation_config.json").unlink()
    return d


@pytest.fixture(scope="module")
def env(
    tmp_path_factory: pytest.TempPathFactory, no_gen_config_dir: Path
) -> Iterator[tuple[Gateway, dict[str, str]]]:
    tmp = tmp_path_factory.mktemp("grpc-models")
    tok = str(asset_dir("qwen3"))
    script = tmp / "eos.json"
    # The engine stops on <|endoftext|> (one of its eos ids) before "tail".
    script.write_text(json.dumps(["<think>\n\n</think>\n\nAnswer.<|endoftext|>tail"]))
    eos = f"{IM_END},{END_OF_TEXT}"
    with ExitStack() as stack:
        urls = {
            "emb-vllm": stack.enter_context(grpc_sim(tmp, "--embedding-dim", "8")),
            "emb-sglang": stack.enter_context(grpc_sim(tmp, "--embedding-dim", "8")),
            "eos": stack.enter_context(
                grpc_sim(tmp, "--script", str(script), "--tokenizer", tok, "--eos-token-ids", eos)
            ),
        }
        doc = grpc_mode_config(
            {
                "emb-vllm": ("vllm_grpc", urls["emb-vllm"], tok),
                "emb-sglang": ("sglang_grpc", urls["emb-sglang"], tok),
                "qwen3-eos": ("vllm_grpc", urls["eos"], str(no_gen_config_dir)),
            }
        )
        doc["server"] = {"watch_config": False}  # reloads only when a test asks
        g = stack.enter_context(gateway(tmp, doc))
        yield g, urls


@pytest.fixture
def client(env: tuple[Gateway, dict[str, str]]) -> openai.OpenAI:
    return openai.OpenAI(base_url=env[0].url + "/v1", api_key="x", max_retries=0, timeout=10)


@pytest.mark.parametrize("model", ["emb-vllm", "emb-sglang"])
def test_embeddings_over_the_embed_rpc(
    client: openai.OpenAI, env: tuple[Gateway, dict[str, str]], model: str
) -> None:
    url = env[1][model]
    before = sim_stats(url).get("embeds", 0)
    texts = ["Hello, world!", "Bonjour à tous 🌍"]
    r = client.embeddings.create(model=model, input=texts)
    assert r.object == "list" and r.model == model
    assert [d.index for d in r.data] == [0, 1]
    vecs = [d.embedding for d in r.data]
    assert all(len(v) == 8 for v in vecs)
    assert all(abs(sum(x * x for x in v) - 1.0) < 1e-5 for v in vecs)  # the sim's unit vectors
    assert vecs[0] != vecs[1]
    tok = Tokenizer.from_pretrained(asset_dir("qwen3"))
    expected = sum(len(tok.encode(t, add_special_tokens=True)) for t in texts)
    assert r.usage.prompt_tokens == expected == r.usage.total_tokens
    assert sim_stats(url)["embeds"] == before + 2  # one Embed call per input
    # Deterministic: the same text embeds the same, alone or in a batch, and as token ids.
    again = client.embeddings.create(model=model, input=texts[0]).data[0].embedding
    assert again == vecs[0]
    ids = tok.encode(texts[0], add_special_tokens=True)
    assert client.embeddings.create(model=model, input=[ids]).data[0].embedding == vecs[0]


def test_embeddings_base64_matches_float(client: openai.OpenAI) -> None:
    floats = client.embeddings.create(model="emb-vllm", input="abc").data[0].embedding
    raw = client.embeddings.with_raw_response.create(
        model="emb-vllm", input="abc", encoding_format="base64"
    )
    b64 = json.loads(raw.text)["data"][0]["embedding"]
    decoded = struct.unpack("<8f", base64.b64decode(b64))
    assert decoded == pytest.approx(floats, abs=1e-6)


def test_embeddings_bad_input_is_an_openai_error(client: openai.OpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="emb-vllm", input=[["not", "ids"]])  # type: ignore[list-item]
    assert e.value.body["param"] == "input"  # type: ignore[index]
    with pytest.raises(openai.BadRequestError) as e:
        client.embeddings.create(model="emb-vllm", input="x", dimensions=4)
    assert e.value.body["param"] == "dimensions"  # type: ignore[index]


def test_engine_eos_ids_end_the_answer_without_generation_config(client: openai.OpenAI) -> None:
    # The model dir knows only <|im_end|>; the engine reports <|endoftext|> too and stops on
    # it. The reasoning parser keeps special tokens, so an unknown eos would show as text.
    r = client.chat.completions.create(model="qwen3-eos", messages=MESSAGES)
    ch = r.choices[0]
    assert ch.message.content == "Answer."
    assert ch.finish_reason == "stop"
    tok = Tokenizer.from_pretrained(asset_dir("qwen3"))
    assert r.usage is not None
    assert r.usage.completion_tokens == len(tok.encode("<think>\n\n</think>\n\nAnswer.")) + 1
    text = ""
    for ev in client.chat.completions.create(model="qwen3-eos", messages=MESSAGES, stream=True):
        for c in ev.choices:
            text += c.delta.content or ""
    assert text == "Answer."


def test_tokenizer_dir_must_exist_at_reload(
    env: tuple[Gateway, dict[str, str]], tmp_path: Path
) -> None:
    g = env[0]
    doc = yaml.safe_load(g.config_path.read_text())
    bad = copy.deepcopy(doc)
    bad["models"]["emb-vllm"]["tokenizer"] = str(tmp_path / "nowhere")
    g.write_config(bad)
    try:
        status, res, _ = http_json(g.admin + "/reload", "POST", b"")
        assert status == 400 and res["result"] == "rejected"
        assert any(
            "models.emb-vllm.tokenizer" in e and "does not exist" in e for e in res["errors"]
        )
        # the old snapshot still serves the model
        status, body, _ = http_json(
            g.url + "/v1/embeddings", "POST", {"model": "emb-vllm", "input": "hi"}
        )
        assert status == 200 and len(body["data"][0]["embedding"]) == 8
    finally:
        g.write_config(doc)
        http_json(g.admin + "/reload", "POST", b"")


def test_broken_tokenizer_is_an_error_naming_the_model(tmp_path: Path) -> None:
    broken = tmp_path / "broken-tok"
    shutil.copytree(asset_dir("qwen3"), broken)
    good_json = (broken / "tokenizer.json").read_bytes()
    (broken / "tokenizer.json").write_text("{not json")
    with grpc_sim(tmp_path) as url:
        doc = grpc_mode_config({"brk": ("vllm_grpc", url, str(broken))})
        with gateway(tmp_path, doc) as g:
            # Loaded in the background once live: the failure is logged without a request.
            assert wait_until(
                lambda: "model 'brk': could not load the tokenizer" in g.proc.output()
            )
            body = {"model": "brk", "messages": MESSAGES, "max_tokens": 3}
            status, err, _ = http_json(g.url + "/v1/chat/completions", "POST", body)
            assert status == 500
            assert err["error"]["code"] == "tokenizer_unavailable"
            assert "model 'brk'" in err["error"]["message"]
            assert str(broken) in err["error"]["message"]
            # Fixed on disk: the next request loads it (failures are not cached).
            (broken / "tokenizer.json").write_bytes(good_json)
            status, ok, _ = http_json(g.url + "/v1/chat/completions", "POST", body)
            assert status == 200 and ok["choices"][0]["finish_reason"] == "length"
