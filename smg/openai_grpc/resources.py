"""Per-model gRPC-mode resources (tokenizer, template, parser choice), loaded once per path."""

from __future__ import annotations

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

# Tokenizers are shared by every model (and snapshot) naming the same directory.
_TOKENIZERS: dict[str, Tokenizer] = {}
_LOCK = threading.Lock()


def load_tokenizer(path: str) -> Tokenizer:
    """The tokenizer of a model directory, loaded once per process."""
    tok = _TOKENIZERS.get(path)
    if tok is None:
        with _LOCK:
            tok = _TOKENIZERS.get(path)
            if tok is None:
                try:
                    tok = Tokenizer.from_pretrained(path)
                except Exception as exc:  # a missing or broken directory: say which
                    raise InternalError(f"Could not load the tokenizer at {path}: {exc}") from None
                _TOKENIZERS[path] = tok
    return tok


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


def resources_for(model: ModelConfig) -> ModelResources:
    """The (cached) resources of a model that has a ``tokenizer``."""
    res = _RESOURCES.get(model)
    if res is None:
        assert model.tokenizer is not None
        res = ModelResources(
            model,
            load_tokenizer(model.tokenizer),
            _pick(model.tool_parser, model.name, model.tokenizer, auto_tool_parser),
            _pick(model.reasoning_parser, model.name, model.tokenizer, auto_reasoning_parser),
        )
        _RESOURCES[model] = res
    return res


class ModelIndex:
    """Name → gRPC-mode model of the current config, rebuilt when the config changes."""

    def __init__(self) -> None:
        self._config: Config | None = None
        self._by_name: dict[str, ModelConfig] = {}

    def lookup(self, config: Config, name: str | None) -> ModelResources | None:
        """The resources for ``name``, or None when it is not a gRPC-mode model."""
        if config is not self._config:
            self._by_name = {m.name: m for m in config.models if m.tokenizer}
            self._config = config
        if name is None:
            return None
        m = self._by_name.get(name)
        return None if m is None else resources_for(m)
