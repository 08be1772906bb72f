"""Tokenizer: ids equal transformers' and tiktoken's, decode equals transformers'."""

from __future__ import annotations

import json
import unicodedata
from pathlib import Path
from typing import Any

import pytest
from tok_helpers import hf, ours
from tok_samples import SAMPLES

from smg.tokenization import Tokenizer, TokenizerConfig
from tests.support.tokenizer_assets import asset_dir, tiktoken_encoding

NAMES = ("qwen3", "qwen25", "llama3")


@pytest.mark.parametrize("name", NAMES)
def test_encode_matches_transformers_and_tiktoken(name: str) -> None:
    tok, ref, enc = ours(name), hf(name), tiktoken_encoding(name)
    for text in SAMPLES:
        ids = tok.encode(text)
        assert ids == ref.encode(text, add_special_tokens=False), text
        # tiktoken does not NFC-normalise (Qwen's tokenizer.json does), so feed it NFC text.
        norm = unicodedata.normalize("NFC", text) if name != "llama3" else text
        assert ids == enc.encode(norm, allowed_special="all"), text
        assert tok.encode(text, add_special_tokens=True) == ref.encode(text), text


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("skip", [True, False])
def test_decode_matches_transformers(name: str, skip: bool) -> None:
    tok, ref = ours(name), hf(name)
    for text in SAMPLES:
        ids = ref.encode(text, add_special_tokens=True)
        assert tok.decode(ids, skip_special_tokens=skip) == ref.decode(
            ids, skip_special_tokens=skip
        )
    # Arbitrary id runs, including ones that cut multi-byte characters (U+FFFD in both).
    for start in range(0, 150000, 9973):
        ids = list(range(start, start + 7))
        assert tok.decode(ids, skip_special_tokens=skip) == ref.decode(
            ids, skip_special_tokens=skip
        )


@pytest.mark.parametrize("name", NAMES)
def test_vocab_and_special_tokens(name: str) -> None:
    tok, ref = ours(name), hf(name)
    assert tok.vocab_size == len(ref)
    assert tok.eos_token == ref.eos_token
    assert tok.bos_token == ref.bos_token
    assert set(tok.special_ids) >= set(ref.all_special_ids)
    for tid in (0, 100, 128000, 151643, 151668):
        if tid < len(ref):
            assert tok.id_to_token(tid) == ref.convert_ids_to_tokens(tid)


def test_eos_ids_and_generation_defaults() -> None:
    assert ours("qwen3").eos_token_ids == (151645, 151643)
    llama = ours("llama3")
    assert llama.eos_token_ids == (128001, 128008, 128009)
    assert llama.generation_defaults == {"temperature": 0.6}
    assert llama.bos_token_id == 128000


def test_encode_cache_counts_and_evicts() -> None:
    tok = Tokenizer.from_pretrained(asset_dir("qwen3"), encode_cache_size=2)
    a = tok.encode("alpha")
    a[0] = -1  # callers may mutate results without corrupting the cache
    assert tok.encode("alpha") != a
    tok.encode("beta")
    tok.encode("gamma")  # evicts "alpha" (least recently used)
    tok.encode("alpha")
    info = tok.cache_info()
    assert (info.hits, info.misses, info.size, info.maxsize) == (1, 4, 2, 2)
    off = Tokenizer.from_pretrained(asset_dir("qwen3"), encode_cache_size=0)
    off.encode("x")
    off.encode("x")
    assert off.cache_info().hits == 0 and off.cache_info().misses == 2


def test_from_json_str_equals_from_dir() -> None:
    d = asset_dir("qwen3")
    tok = Tokenizer.from_json_str(
        (d / "tokenizer.json").read_text(),
        (d / "tokenizer_config.json").read_text(),
        json.loads((d / "generation_config.json").read_text()),
    )
    ref = ours("qwen3")
    text = SAMPLES[4]
    assert tok.encode(text) == ref.encode(text)
    assert tok.eos_token_ids == ref.eos_token_ids
    assert tok.chat_templates == ref.chat_templates


def _copy_dir(src: Path, dst: Path, config_patch: dict[str, Any]) -> Path:
    dst.mkdir()
    (dst / "tokenizer.json").symlink_to(src / "tokenizer.json")
    cfg = json.loads((src / "tokenizer_config.json").read_text())
    cfg.update(config_patch)
    (dst / "tokenizer_config.json").write_text(json.dumps(cfg))
    return dst


def test_named_templates_and_jinja_files(tmp_path: Path) -> None:
    src = asset_dir("qwen3")
    d = _copy_dir(
        src,
        tmp_path / "listed",
        {
            "chat_template": [
                {"name": "default", "template": "D{{ messages[0]['content'] }}"},
                {"name": "tool_use", "template": "T{{ tools | length }}"},
            ]
        },
    )
    tok = Tokenizer.from_pretrained(d)
    msgs = [{"role": "user", "content": "x"}]
    assert tok.apply_chat_template(msgs) == "Dx"
    assert tok.apply_chat_template(msgs, tools=[{"type": "function"}]) == "T1"
    assert tok.apply_chat_template(msgs, chat_template="tool_use", tools=[]) == "T0"
    (d / "chat_template.jinja").write_text("J{{ eos_token }}")
    assert Tokenizer.from_pretrained(d).apply_chat_template(msgs) == "J<|im_end|>"
    cfg = TokenizerConfig.from_dir(d)
    assert cfg.chat_templates == {"default": "J{{ eos_token }}"}


def test_added_tokens_decoder_marks_special(tmp_path: Path) -> None:
    # A config that declares <think> special must make decode() skip it, as transformers does.
    src = asset_dir("qwen3")
    patch = {"added_tokens_decoder": {"151667": {"content": "<think>", "special": True}}}
    d = _copy_dir(src, tmp_path / "special", patch)
    tok = Tokenizer.from_pretrained(d)
    ids = tok.encode("<think>hi")
    assert ids[0] == 151667
    assert tok.decode(ids) == "hi"
    assert 151667 in tok.special_ids
