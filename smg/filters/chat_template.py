"""``chat_template``: render OpenAI messages (and tools) with the model's template (gRPC mode).

Acts only on models whose config names a ``tokenizer``; every other request (HTTP
clusters) passes untouched. Puts the prompt text under ``state.PROMPT_TEXT`` for the
``tokenize`` filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from smg.errors import BadRequest
from smg.filters.base import Filter, RequestContext, StateKey
from smg.openai_grpc.resources import ModelIndex, ModelResources
from smg.protocol.request import GatewayResponse
from smg.upstreams.grpc.state import PROMPT_TEXT

RESOURCES = StateKey["ModelResources | None"]("grpc.model_resources")
THINKING = StateKey["bool"]("grpc.enable_thinking")
_TEMPLATED_KINDS = frozenset({"chat", "tokenize"})


async def model_resources(ctx: RequestContext, index: ModelIndex) -> ModelResources | None:
    """The request's gRPC-mode model resources (looked up once per request).

    The first request for a model waits for its tokenizer to load in a worker thread.
    """
    if RESOURCES in ctx.state:
        return ctx.get(RESOURCES, None)
    res = await index.lookup(ctx.snapshot.config, ctx.request.model)
    ctx.put(RESOURCES, res)
    return res


def render_prompt(ctx: RequestContext, res: ModelResources) -> str:
    """Render the body's ``messages`` to prompt text; records ``enable_thinking``."""
    body = ctx.request.json
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise BadRequest("'tools' must be an array.", param="tools")
    extra = body.get("chat_template_kwargs") or {}
    if not isinstance(extra, dict):
        raise BadRequest("'chat_template_kwargs' must be an object.", param="chat_template_kwargs")
    kwargs: dict[str, Any] = {"enable_thinking": res.model.enable_thinking, **extra}
    ctx.put(THINKING, bool(kwargs["enable_thinking"]))
    text = res.render(
        body["messages"],
        tools or None,
        kwargs,
        add_generation_prompt=body.get("add_generation_prompt", True) is not False,
        continue_final_message=body.get("continue_final_message") is True,
    )
    ctx.put(PROMPT_TEXT, text)
    return text


class ModelFilter(Filter):
    """Base of the gRPC-mode filters: no config of their own, per-model resources cached."""

    config_schema: ClassVar[Mapping[str, Any]] = {
        "type": "object",
        "additionalProperties": False,
        "properties": {},
    }

    def __init__(self, name: str, config: Mapping[str, Any]) -> None:
        super().__init__(name, config)
        self.models = ModelIndex()


class ChatTemplateFilter(ModelFilter):
    """Renders chat messages to the prompt text for token-id engines."""

    type_name = "chat_template"

    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        """Render ``messages`` for gRPC-mode models; leave everything else alone."""
        req = ctx.request
        if req.kind not in _TEMPLATED_KINDS or "messages" not in req.json:
            return None
        res = await model_resources(ctx, self.models)
        if res is not None:
            render_prompt(ctx, res)
        return None
