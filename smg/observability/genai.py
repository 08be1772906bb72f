"""OpenTelemetry GenAI semantic-convention attributes of a request and of its answer.

Request attributes come from the body the listener already parsed. Answer attributes
are read out of the bytes the gateway relays (a whole body, or the one stream chunk a
``UsageTap`` kept) by substring search, never by decoding the JSON again: usage through
``smg.observability.usage``, the model and finish reasons by small anchored patterns.
Names follow the GenAI conventions (``gen_ai.operation.name``, ``gen_ai.request.*``,
``gen_ai.response.*``, ``gen_ai.usage.*``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from opentelemetry.util.types import AttributeValue

from smg.observability.usage import usage_in
from smg.protocol.request import GatewayRequest

Attributes = dict[str, AttributeValue]

OPERATION: Final = "gen_ai.operation.name"
REQUEST_MODEL: Final = "gen_ai.request.model"
RESPONSE_MODEL: Final = "gen_ai.response.model"
MAX_TOKENS: Final = "gen_ai.request.max_tokens"
TEMPERATURE: Final = "gen_ai.request.temperature"
TOP_P: Final = "gen_ai.request.top_p"
INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
CACHE_READ_TOKENS: Final = "gen_ai.usage.cache_read.input_tokens"
FINISH_REASONS: Final = "gen_ai.response.finish_reasons"

# Request kind (smg.protocol.request.KIND_BY_PATH) → well-known operation name.
_OPERATIONS: Final = {
    "chat": "chat",
    "completions": "text_completion",
    "generate": "text_completion",
    "embeddings": "embeddings",
}
# JSON never holds an unescaped quote inside a string, so these cannot match text the
# model wrote; the first "model" of an OpenAI answer is the top-level one.
_MODEL: Final = re.compile(rb'"model":\s*"([^"\\]{1,256})"')
# OpenAI ("finish_reason": "stop") and SGLang ("finish_reason": {"type": "stop", ...}).
_FINISH: Final = re.compile(
    rb'"finish_reason":\s*(?:"([^"\\]{1,64})"|\{"type":\s*"([^"\\]{1,64})")'
)


def operation(kind: str) -> str | None:
    """The GenAI operation of a request kind (None for tokenize and the like)."""
    return _OPERATIONS.get(kind)


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def request_attributes(req: GatewayRequest) -> Attributes:
    """Operation, requested model and the sampling settings the client gave."""
    attrs: Attributes = {}
    op = _OPERATIONS.get(req.kind)
    if op is None:
        return attrs
    attrs[OPERATION] = op
    if req.model:
        attrs[REQUEST_MODEL] = req.model
    body: Mapping[str, Any] = req.json
    if req.kind == "generate":
        params = body.get("sampling_params")
        body = params if isinstance(params, Mapping) else {}
        max_tokens = body.get("max_new_tokens")
    else:
        max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if isinstance(max_tokens, int) and not isinstance(max_tokens, bool):
        attrs[MAX_TOKENS] = max_tokens
    for key, name in (("temperature", TEMPERATURE), ("top_p", TOP_P)):
        value = _number(body.get(key))
        if value is not None:
            attrs[name] = value
    return attrs


def response_attributes(data: bytes | None, kind: str) -> Attributes:
    """Usage, answering model and finish reasons found in a body or a stream chunk."""
    attrs: Attributes = {}
    if not data:
        return attrs
    usage = usage_in(data)
    if usage is not None:
        attrs[INPUT_TOKENS] = usage.prompt
        if kind != "embeddings":
            attrs[OUTPUT_TOKENS] = usage.completion
        if usage.cached:
            attrs[CACHE_READ_TOKENS] = usage.cached
    m = _MODEL.search(data)
    if m is not None:
        attrs[RESPONSE_MODEL] = m.group(1).decode("utf-8", "replace")
    if kind != "embeddings":
        reasons = [(a or b).decode("utf-8", "replace") for a, b in _FINISH.findall(data)]
        if reasons:
            attrs[FINISH_REASONS] = reasons
    return attrs
