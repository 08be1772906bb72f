"""Jinja2 chat-template rendering with Hugging Face transformers semantics."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

import jinja2
import jinja2.ext
import jinja2.nodes
import jinja2.parser
import jinja2.utils
from jinja2.sandbox import ImmutableSandboxedEnvironment

# Older names under which clients send a message's reasoning; templates read reasoning_content
# (and gpt-oss templates read thinking), so all are aliased the way transformers does.
REASONING_FIELDS = ("reasoning_content", "thinking", "reasoning")

# Appended to the continued message so its end can be found in the rendered text.
_CONTINUE_TAG = "CONTINUE_FINAL_MESSAGE_TAG "


class ChatTemplateError(Exception):
    """A chat template could not be compiled or rendered (including raise_exception)."""


class _GenerationTag(jinja2.ext.Extension):
    """Accepts `{% generation %}...{% endgeneration %}` and renders its body unchanged."""

    tags = {"generation"}

    def parse(self, parser: jinja2.parser.Parser) -> jinja2.nodes.Node:
        lineno = next(parser.stream).lineno
        body = parser.parse_statements(("name:endgeneration",), drop_needle=True)
        call = self.call_method("_passthrough")
        return jinja2.nodes.CallBlock(call, [], [], body).set_lineno(lineno)

    def _passthrough(self, caller: Any) -> str:
        return str(caller())


class _SafeNamespace(jinja2.utils.Namespace):
    """Namespace that refuses underscore-prefixed attributes, like transformers' sandbox."""

    def __init__(*args: Any, **kwargs: Any) -> None:
        self, rest = args[0], args[1:]
        attrs = dict(*rest, **kwargs)
        for name in attrs:
            _check_ns_name(name)
        jinja2.utils.Namespace.__init__(self, attrs)

    def __setitem__(self, name: str, value: Any) -> None:
        _check_ns_name(name)
        jinja2.utils.Namespace.__setitem__(self, name, value)


def _check_ns_name(name: object) -> None:
    if isinstance(name, str) and name.startswith("_"):
        raise jinja2.exceptions.SecurityError(f"underscore-prefixed namespace attribute {name!r}")


class _DictFactory:
    """Template-visible `dict` that only builds dicts (no access to the type object)."""

    def __call__(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict(*args, **kwargs)

    def fromkeys(self, *args: Any, **kwargs: Any) -> dict[Any, Any]:
        return dict.fromkeys(*args, **kwargs)


def _raise_exception(message: str) -> None:
    raise jinja2.exceptions.TemplateError(message)


def _tojson(
    value: Any,
    ensure_ascii: bool = False,
    indent: int | str | None = None,
    separators: tuple[str, str] | None = None,
    sort_keys: bool = False,
) -> str:
    # Jinja's builtin tojson HTML-escapes and sorts keys; HF templates rely on plain json.dumps.
    return json.dumps(
        value, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys
    )


def _strftime_now(fmt: str) -> str:
    return datetime.now().strftime(fmt)


def _make_env() -> ImmutableSandboxedEnvironment:
    env = ImmutableSandboxedEnvironment(
        trim_blocks=True,
        lstrip_blocks=True,
        extensions=[_GenerationTag, jinja2.ext.loopcontrols],
    )
    env.filters["tojson"] = _tojson
    env.globals["raise_exception"] = _raise_exception
    env.globals["strftime_now"] = _strftime_now
    env.globals["dict"] = _DictFactory()
    env.globals["namespace"] = _SafeNamespace
    return env


_ENV = _make_env()


@lru_cache(maxsize=64)
def compile_template(source: str) -> jinja2.Template:
    """Compile a template once per distinct source string."""
    try:
        return _ENV.from_string(source)
    except jinja2.TemplateError as exc:
        raise ChatTemplateError(f"invalid chat template: {exc}") from exc


def _plain(value: Any) -> Any:
    # Rebuild inputs from plain JSON types so the sandbox never sees caller objects.
    if value is None or type(value) in (str, int, float, bool):
        return value
    if isinstance(value, str):
        return str.__str__(value)
    if isinstance(value, int):
        return int.__int__(value)
    if isinstance(value, float):
        return float.__float__(value)
    if isinstance(value, Mapping):
        return {_plain(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_plain(v) for v in value)
    return f"<{type(value).__name__}>"


def prepare_messages(messages: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Normalise messages as transformers does before rendering."""
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, Mapping):
            raise ChatTemplateError(f"chat messages must be objects, got {type(message).__name__}")
        # Top-level None values are dropped: many templates print "None" or crash on them.
        msg: dict[str, Any] = {k: _plain(v) for k, v in message.items() if v is not None}
        reasoning = next((msg[k] for k in REASONING_FIELDS if msg.get(k) is not None), None)
        if reasoning is not None:
            msg = {"thinking": reasoning, **msg, "reasoning_content": reasoning}
        out.append(msg)
    return out


class ChatTemplate:
    """A compiled chat template plus the special tokens it is rendered with."""

    def __init__(self, source: str, special_tokens: Mapping[str, str] | None = None) -> None:
        self.source = source
        self.special_tokens = dict(special_tokens or {})
        self._template = compile_template(source)

    def render(
        self,
        messages: Sequence[Mapping[str, Any]],
        *,
        tools: Sequence[Mapping[str, Any]] | None = None,
        documents: Sequence[Mapping[str, Any]] | None = None,
        add_generation_prompt: bool = False,
        continue_final_message: bool = False,
        **kwargs: Any,
    ) -> str:
        """Render like transformers' apply_chat_template(..., tokenize=False)."""
        if not messages:
            raise ChatTemplateError("cannot apply a chat template to an empty conversation")
        if continue_final_message and add_generation_prompt:
            raise ChatTemplateError("continue_final_message excludes add_generation_prompt")
        chat = prepare_messages(messages)
        final = ""
        if continue_final_message:
            final = _tag_final_message(chat, self.source)
        # Caller kwargs override the tokenizer's special tokens, as in transformers.
        variables = {**self.special_tokens, **_plain(kwargs)}
        try:
            text = self._template.render(
                messages=chat,
                tools=_plain(list(tools)) if tools is not None else None,
                documents=_plain(list(documents)) if documents is not None else None,
                add_generation_prompt=add_generation_prompt,
                **variables,
            )
        except ChatTemplateError:
            raise
        except Exception as exc:  # templates can raise anything (TypeError, UndefinedError, ...)
            raise ChatTemplateError(f"{type(exc).__name__}: {exc}") from exc
        if continue_final_message:
            text = _cut_at_tag(text, final)
        return str(text)


def _tag_final_message(chat: list[dict[str, Any]], source: str) -> str:
    last = chat[-1]
    content = last.get("content")
    if content is None:
        raise ChatTemplateError("continue_final_message needs content in the final message")
    if "content" not in source:
        raise ChatTemplateError("continue_final_message: the template does not render content")
    if isinstance(content, list):
        for part in reversed(content):
            if isinstance(part, dict) and "text" in part:
                original = str(part["text"])
                part["text"] = original + _CONTINUE_TAG
                return original
        raise ChatTemplateError("continue_final_message: no text part to continue")
    original = str(content)
    last["content"] = original + _CONTINUE_TAG
    return original


def _cut_at_tag(text: str, final: str) -> str:
    tag = _CONTINUE_TAG.strip()
    if final.strip() not in text or tag not in text:
        raise ChatTemplateError("continue_final_message: the template dropped the final message")
    loc = text.rindex(tag)
    if text[loc : loc + len(_CONTINUE_TAG)] == _CONTINUE_TAG:
        return text[:loc]
    # The template trimmed whitespace after the message, so trim ours too.
    return text[:loc].rstrip()


def select_template(
    templates: Mapping[str, str], name: str | None = None, *, has_tools: bool = False
) -> str:
    """Pick a template source from named templates (transformers' get_chat_template rules)."""
    if name is not None:
        if name in templates:
            return templates[name]
        return name  # an inline template string
    if has_tools and "tool_use" in templates:
        return templates["tool_use"]
    if "default" in templates:
        return templates["default"]
    if not templates:
        raise ChatTemplateError("the tokenizer has no chat template")
    raise ChatTemplateError(f"several chat templates and no default: {sorted(templates)}")
