"""gRPC-mode model resources: the tokenizer loads off the event loop, errors name the model."""

from __future__ import annotations

import asyncio
import shutil
import threading
from pathlib import Path
from typing import Any

import pytest

from smg.config.loader import config_from_dict
from smg.config.model import ModelConfig
from smg.openai_grpc import resources
from smg.openai_grpc.resources import TokenizerLoadError, preload, resources_async
from smg.runtime.checks import config_issues
from smg.tokenization import Tokenizer
from tests.support.tokenizer_assets import asset_dir


@pytest.fixture
def tok_dir(tmp_path: Path) -> Path:
    """A private copy of a real tokenizer dir (so the per-process cache starts empty)."""
    d = tmp_path / "qwen3-copy"
    shutil.copytree(asset_dir("qwen3"), d)
    return d


def test_first_request_loads_the_tokenizer_in_a_thread(
    tok_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = Tokenizer.from_pretrained
    release = threading.Event()

    def slow_load(path: Any, **kw: Any) -> Tokenizer:
        # Only the event loop can set ``release``: if the load ran on the loop, it would
        # wait here in vain and fail.
        if not release.wait(10):
            raise AssertionError("the tokenizer load blocked the event loop")
        return real(path, **kw)

    monkeypatch.setattr(Tokenizer, "from_pretrained", staticmethod(slow_load))
    model = ModelConfig("m", "smg", tokenizer=str(tok_dir))

    async def main() -> Any:
        first = asyncio.ensure_future(resources_async(model))
        second = asyncio.ensure_future(resources_async(model))  # waits for the same load
        await asyncio.sleep(0.05)
        assert not first.done()
        release.set()
        return await first, await second

    a, b = asyncio.run(main())
    assert a.tokenizer is b.tokenizer
    assert a.tokenizer.encode("Hello") == real(tok_dir).encode("Hello")


def test_broken_tokenizer_error_names_model_and_is_not_cached(tok_dir: Path) -> None:
    good = (tok_dir / "tokenizer.json").read_bytes()
    (tok_dir / "tokenizer.json").write_text("{broken")
    model = ModelConfig("my-model", "smg", tokenizer=str(tok_dir))
    with pytest.raises(TokenizerLoadError) as e:
        asyncio.run(resources_async(model))
    assert e.value.status == 500 and e.value.code == "tokenizer_unavailable"
    assert "model 'my-model'" in e.value.message and str(tok_dir) in e.value.message
    (tok_dir / "tokenizer.json").write_bytes(good)
    assert asyncio.run(resources_async(model)).tokenizer.encode("hi")


def test_preload_logs_a_broken_tokenizer(tok_dir: Path, caplog: pytest.LogCaptureFixture) -> None:
    (tok_dir / "tokenizer.json").write_text("{broken")
    models = (ModelConfig("bad", "smg", tokenizer=str(tok_dir)), ModelConfig("http-only", "smg"))
    with caplog.at_level("WARNING", logger="smg.tokenization"):
        asyncio.run(preload(models))
    assert any("model 'bad': could not load the tokenizer" in r.message for r in caplog.records)
    assert str(tok_dir) not in resources._TOKENIZERS


def test_preload_loads_every_grpc_model(tok_dir: Path) -> None:
    asyncio.run(preload((ModelConfig("good", "smg", tokenizer=str(tok_dir)),)))
    assert str(tok_dir) in resources._TOKENIZERS


def _doc(tokenizer: str) -> dict[str, Any]:
    return {
        "models": {"m": {"tokenizer": tokenizer}},
        "listeners": [
            {
                "name": "l",
                "address": "127.0.0.1:0",
                "filters": ["router"],
                "routes": [{"match": {"model": "*"}, "cluster": "c"}],
            }
        ],
        "clusters": [{"name": "c", "protocol": "vllm_grpc", "endpoints": ["grpc://h:1"]}],
    }


def test_missing_tokenizer_dir_is_a_config_error(tmp_path: Path) -> None:
    cfg = config_from_dict(_doc(str(tmp_path / "nope")), "<test>", env={})
    (issue,) = [i for i in config_issues(cfg) if "tokenizer" in str(i)]
    assert "models.m.tokenizer" in str(issue) and "does not exist" in str(issue)
    empty = tmp_path / "empty"
    empty.mkdir()
    cfg = config_from_dict(_doc(str(empty)), "<test>", env={})
    assert any("has no tokenizer.json" in str(i) for i in config_issues(cfg))


def test_existing_tokenizer_dir_passes_the_check(tok_dir: Path) -> None:
    cfg = config_from_dict(_doc(str(tok_dir)), "<test>", env={})
    assert not [i for i in config_issues(cfg) if "tokenizer" in str(i)]
