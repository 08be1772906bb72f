"""Per-model gRPC-mode resources (tokenizer, template, parser choice), loaded once per path.

A tokenizer is loaded on the first request for its model, in a worker thread (a large
``tokenizer.json`` takes seconds to parse and must not stall the event loop or a
reload), and in the background once a snapshot naming it goes live (``preload``). A
directory that does not exist is a config error at load/reload (``runtime/checks.py``);
a tokenizer that exists but fails to load answers the request with an OpenAI error naming
the model, and the next request tries again.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from smg.config.model import Config, ModelConfig
from smg.errors import BadRequest, InternalError
from smg.parsers import OutputParser
from smg.parsers.reasoning import auto_reasoning_parser, create_reasoning_parser
from smg.parsers.tool import auto_tool_parser, create_tool_parser
from smg.tokenization import (
    ChatTemplate,
    ChatTemplateError,
    Tokenizer,
    detect_content_format,
    openai_to_template_messages,
)
from smg.tokenization.messages import ContentFormat

log = logging.getLogger("smg.tokenization")

# Tokenizers are shared by every model (and snapshot) naming the same directory.
_TOKENIZERS: dict[str, Tokenizer] = {}
_LOCK = threading.Lock()


class TokenizerLoadError(InternalError):
    """A model's tokenizer directory exists but could not be loaded (500, names the model)."""

    code = "tokenizer_unavailable"


def load_tokenizer(path: str, model: str | None = None) -> Tokenizer:
    """The tokenizer of a model directory, loaded once per process (blocking)."""
    tok = _TOKENIZERS.get(path)
    if tok is None:
        with _LOCK:
            tok = _TOKENIZERS.get(path)
            if tok is None:
                try:
                    tok = Tokenizer.from_pretrained(path)
                except Exception as exc:  # a broken directory: say which model and where
                    who = f"model '{model}': " if model else ""
                    raise TokenizerLoadError(
                        f"{who}could not load the tokenizer at {path}: {exc}"
                    ) from None
                _TOKENIZERS[path] = tok
    return tok


def loaded_tokenizers() -> dict[str, Tokenizer]:
    """The tokenizers this process has loaded, by directory (for metrics)."""
    return dict(_TOKENIZERS)


async def load_tokenizer_async(path: str, model: str | None = None) -> Tokenizer:
    """``load_tokenizer`` off the event loop (no thread hop once it is loaded)."""
    tok = _TOKENIZERS.get(path)
    if tok is not None:
        return tok
    return await asyncio.to_thread(load_tokenizer, path, model)


async def preload(models: Sequence[ModelConfig]) -> None:
    """Load the tokenizers of gRPC-mode models in the background (a snapshot went live).

    Failures are logged once here and reported again to the requests that need them.
    """
    for m in models:
        if m.tokenizer is None or m.tokenizer in _TOKENIZERS:
            continue
        try:
            await load_tokenizer_async(m.tokenizer, m.name)
        except TokenizerLoadError as exc:
            log.warning("%s", exc.message)


def _pick(configured: str, model: str, tok_dir: str, auto: Any) -> str | None:
    """A parser name: configured, none, or auto-selected from the model then dir name."""
    if configured == "none":
        return None
    if configured != "auto":
        return configured
    found: str | None = auto(model) or auto(Path(tok_dir).name)
    return found


@dataclass(frozen=True, slots=True)
class ModelResources:
    """What gRPC mode needs to serve one model."""

    model: ModelConfig
    tokenizer: Tokenizer
    tool_parser: str | None
    reasoning_parser: str | None

    def template(self, has_tools: bool) -> tuple[ChatTemplate, ContentFormat]:
        """The compiled chat template for this request and its content-part format."""
        name = self.model.chat_template
        if name is not None and Path(name).is_file():
            name = Path(name).read_text(encoding="utf-8")
        try:
            tpl = self.tokenizer.chat_template(name, has_tools=has_tools)
        except ChatTemplateError as exc:
            raise BadRequest(f"No usable chat template for this model: {exc}") from None
        return tpl, _content_format(tpl.source)

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        tools: Sequence[Mapping[str, Any]] | None,
        kwargs: Mapping[str, Any],
        add_generation_prompt: bool = True,
        continue_final_message: bool = False,
    ) -> str:
        """The prompt text for OpenAI ``messages`` (and ``tools``)."""
        tpl, fmt = self.template(tools is not None)
        msgs = openai_to_template_messages(messages, fmt)
        try:
            return tpl.render(
                msgs,
                tools=tools,
                add_generation_prompt=add_generation_prompt and not continue_final_message,
                continue_final_message=continue_final_message,
                **kwargs,
            )
        except ChatTemplateError as exc:
            raise BadRequest(f"The chat template failed on these messages: {exc}") from None

    def output_parser(
        self,
        *,
        tools: Sequence[Mapping[str, Any]] | None,
        parse_tools: bool,
        thinking: bool,
        seed: str,
    ) -> OutputParser:
        """A fresh reasoning + tool-call pipeline for one choice."""
        reasoning = (
            create_reasoning_parser(self.reasoning_parser, enable_thinking=thinking)
            if self.reasoning_parser
            else None
        )
        tool = (
            create_tool_parser(self.tool_parser, tools=tools, id_seed=seed)
            if parse_tools and self.tool_parser
            else None
        )
        return OutputParser(reasoning, tool)


_CONTENT_FORMATS: dict[str, ContentFormat] = {}


def _content_format(source: str) -> ContentFormat:
    fmt = _CONTENT_FORMATS.get(source)
    if fmt is None:
        fmt = _CONTENT_FORMATS[source] = detect_content_format(source)
    return fmt


# Keyed by the frozen ModelConfig: a reload that keeps a model's fields keeps its entry.
_RESOURCES: dict[ModelConfig, ModelResources] = {}


def _resources(model: ModelConfig, tok: Tokenizer) -> ModelResources:
    assert model.tokenizer is not None
    res = _RESOURCES.get(model)
    if res is None:
        res = ModelResources(
            model,
            tok,
            _pick(model.tool_parser, model.name, model.tokenizer, auto_tool_parser),
            _pick(model.reasoning_parser, model.name, model.tokenizer, auto_reasoning_parser),
        )
        _RESOURCES[model] = res
    return res


def resources_for(model: ModelConfig) -> ModelResources:
    """The (cached) resources of a model that has a ``tokenizer`` (loads it blocking)."""
    res = _RESOURCES.get(model)
    if res is not None:
        return res
    assert model.tokenizer is not None
    return _resources(model, load_tokenizer(model.tokenizer, model.name))


async def resources_async(model: ModelConfig) -> ModelResources:
    """``resources_for`` with the tokenizer loaded in a worker thread on first use."""
    res = _RESOURCES.get(model)
    if res is not None:
        return res
    assert model.tokenizer is not None
    return _resources(model, await load_tokenizer_async(model.tokenizer, model.name))


class ModelIndex:
    """Name → gRPC-mode model of the current config, rebuilt when the config changes."""

    def __init__(self) -> None:
        self._config: Config | None = None
        self._by_name: dict[str, ModelConfig] = {}

    async def lookup(self, config: Config, name: str | None) -> ModelResources | None:
        """The resources for ``name``, or None when it is not a gRPC-mode model."""
        if config is not self._config:
            self._by_name = {m.name: m for m in config.models if m.tokenizer}
            self._config = config
        if name is None:
            return None
        m = self._by_name.get(name)
        return None if m is None else await resources_async(m)
