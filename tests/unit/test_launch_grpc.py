"""``smg launch`` gRPC-mode shorthands: grpc:// workers, model directory, parsers."""

from __future__ import annotations

import argparse

from smg import launch
from smg.config.loader import config_from_dict


def _doc(*argv: str) -> dict[str, object]:
    p = argparse.ArgumentParser()
    launch.add_arguments(p)
    return launch.config_doc(p.parse_args(list(argv)))


def test_grpc_workers_default_to_vllm_and_add_the_filters() -> None:
    doc = _doc(
        "--worker-urls", "grpc://127.0.0.1:5000", "--model-path", "/m/qwen3",
        "--tool-call-parser", "hermes", "--reasoning-parser", "qwen3", "--chat-template", "t.jinja",
    )  # fmt: skip
    cfg = config_from_dict(doc, "<launch>", env={})
    assert cfg.clusters[0].protocol == "vllm_grpc"
    assert cfg.listeners[0].filters == ("request_id", "chat_template", "tokenize", "router")
    (m,) = cfg.models
    assert (m.name, m.tokenizer, m.tool_parser, m.reasoning_parser, m.chat_template) == (
        "/m/qwen3", "/m/qwen3", "hermes", "qwen3", "t.jinja",
    )  # fmt: skip


def test_sglang_engine_and_separate_tokenizer() -> None:
    doc = _doc(
        "--worker-urls", "grpc://h:1", "--grpc-engine", "sglang", "--model", "qwen",
        "--tokenizer-path", "/tok",
    )  # fmt: skip
    cfg = config_from_dict(doc, "<launch>", env={})
    assert cfg.clusters[0].protocol == "sglang_grpc"
    assert [(m.name, m.tokenizer) for m in cfg.models] == [("qwen", "/tok")]


def test_http_workers_unchanged() -> None:
    cfg = config_from_dict(_doc("--worker-urls", "http://h:1", "--model", "m"), "<launch>", env={})
    assert cfg.clusters[0].protocol == "openai_http"
    assert cfg.listeners[0].filters == ("request_id", "router")
    assert cfg.models[0].tokenizer is None
