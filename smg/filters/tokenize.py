"""``tokenize``: prompt → token ids, sampling params and the OpenAI renderer (gRPC mode).

For models with a ``tokenizer`` it sets ``PROMPT_IDS``, ``SAMPLING`` (stop strings, eos
and stop token ids, generation-config defaults, forced ``tool_choice`` as a JSON-schema
constraint) and ``RENDERER`` for chat and completions, ``EMBED_INPUTS`` and
``EMBED_RENDERER`` for embeddings, and answers ``/v1/tokenize`` and ``/v1/detokenize``
itself. Chat prompts come from the ``chat_template`` filter when it
ran, else are rendered here (so ``[tokenize, router]`` alone also works).
"""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from smg.errors import BadRequest
from smg.filters.base import RequestContext
from smg.filters.chat_template import THINKING, ModelFilter, model_resources, render_prompt
from smg.openai_grpc.choice import Settings
from smg.openai_grpc.embeddings import EmbeddingsRenderer, embedding_inputs
from smg.openai_grpc.render import OpenAIRenderer
from smg.openai_grpc.resources import ModelResources
from smg.openai_grpc.tool_choice import forced_choice
from smg.parsers import OutputParser
from smg.protocol.request import GatewayResponse
from smg.upstreams.grpc.sampling import SamplingParams, from_openai, with_changes
from smg.upstreams.grpc.state import (
    EMBED_INPUTS,
    EMBED_RENDERER,
    PROMPT_IDS,
    PROMPT_TEXT,
    RENDERER,
    SAMPLING,
)

_KINDS = frozenset({"chat", "completions", "embeddings", "tokenize", "detokenize"})
_DEFAULTED = ("temperature", "top_p", "top_k", "min_p", "repetition_penalty")


def _json(doc: dict[str, Any]) -> GatewayResponse:
    return GatewayResponse(200, "application/json", [], body=orjson.dumps(doc))


def _ids(value: Any, param: str) -> list[int]:
    if not isinstance(value, list) or not all(type(i) is int and i >= 0 for i in value):
        raise BadRequest(f"'{param}' must be a list of token ids.", param=param)
    return list(value)


def completion_ids(res: ModelResources, prompt: Any, add_special: bool) -> tuple[list[int], str]:
    """Token ids (and text) of a completions ``prompt``: one string or one id list."""
    if isinstance(prompt, list) and len(prompt) == 1 and isinstance(prompt[0], str | list):
        prompt = prompt[0]
    if isinstance(prompt, str):
        return res.tokenizer.encode(prompt, add_special_tokens=add_special), prompt
    if isinstance(prompt, list) and prompt and all(type(i) is int for i in prompt):
        return _ids(prompt, "prompt"), ""
    raise BadRequest(
        "In gRPC mode 'prompt' must be one string or one list of token ids.", param="prompt"
    )


def sampling(body: dict[str, Any], res: ModelResources) -> SamplingParams:
    """The request's sampling params, refined with the model's defaults and stop ids."""
    sp = from_openai(body)
    tok = res.tokenizer
    changes: dict[str, Any] = {
        k: v
        for k, v in tok.generation_defaults.items()
        if k in _DEFAULTED and getattr(sp, k) is None
    }
    if not sp.ignore_eos:
        changes["stop_token_ids"] = list(dict.fromkeys([*sp.stop_token_ids, *tok.eos_token_ids]))
    forced = forced_choice(body) if body.get("messages") is not None else None
    if forced is not None:
        if sp.constraint() is not None:
            raise BadRequest(
                "A forced 'tool_choice' cannot be combined with another output constraint.",
                param="tool_choice",
            )
        changes["json_schema"] = orjson.dumps(forced.schema).decode()
    return with_changes(sp, **changes)


class TokenizeFilter(ModelFilter):
    """Tokenizes prompts for token-id engines and installs the OpenAI renderer."""

    type_name = "tokenize"

    async def on_request(self, ctx: RequestContext) -> GatewayResponse | None:
        """Prepare gRPC-mode requests; answer tokenize / detokenize locally."""
        req = ctx.request
        if req.kind not in _KINDS:
            return None
        res = await model_resources(ctx, self.models)
        if res is None:
            return None
        body = req.json
        if req.kind == "detokenize":
            text = res.tokenizer.decode(
                _ids(body.get("tokens"), "tokens"), skip_special_tokens=False
            )
            return _json({"prompt": text})
        if req.kind == "tokenize":
            return _json(self._tokenize(ctx, res))
        if req.kind == "embeddings":
            renderer = EmbeddingsRenderer(req.model or res.model.name, body)
            ctx.put(EMBED_INPUTS, embedding_inputs(res.tokenizer, body["input"]))
            ctx.put(EMBED_RENDERER, renderer)
            return None
        if req.kind == "chat":
            text = ctx.get(PROMPT_TEXT, "") or render_prompt(ctx, res)
            ids = res.tokenizer.encode(text, add_special_tokens=False)
        else:
            add = body.get("add_special_tokens", True) is not False
            ids, text = completion_ids(res, body["prompt"], add)
            ctx.put(PROMPT_TEXT, text)
        sp = sampling(body, res)
        ctx.put(PROMPT_IDS, ids)
        ctx.put(SAMPLING, sp)
        ctx.put(RENDERER, self._renderer(ctx, res, sp, len(ids)))
        return None

    def _tokenize(self, ctx: RequestContext, res: ModelResources) -> dict[str, Any]:
        body = ctx.request.json
        if "messages" in body:
            text = ctx.get(PROMPT_TEXT, "") or render_prompt(ctx, res)
            ids = res.tokenizer.encode(text, add_special_tokens=False)
        elif "prompt" in body:
            add = body.get("add_special_tokens", True) is not False
            ids, _ = completion_ids(res, body["prompt"], add)
        else:
            raise BadRequest("Give 'prompt' or 'messages' to tokenize.", param="prompt")
        max_len = res.tokenizer.config.model_max_length
        return {"count": len(ids), "max_model_len": max_len, "tokens": ids}

    def _renderer(
        self, ctx: RequestContext, res: ModelResources, sp: SamplingParams, prompt_len: int
    ) -> OpenAIRenderer:
        body = ctx.request.json
        chat = ctx.request.kind == "chat"
        rid = ctx.request_id or uuid.uuid4().hex
        tools = body.get("tools") if chat else None
        forced = forced_choice(body) if chat else None
        parse_tools = bool(tools) and body.get("tool_choice") != "none" and forced is None
        thinking = ctx.get(THINKING, res.model.enable_thinking)

        def parsers(i: int) -> OutputParser | None:
            if not chat:
                return None
            return res.output_parser(
                tools=tools, parse_tools=parse_tools, thinking=thinking, seed=f"{rid}-{i}"
            )

        # Parser markers (<think>, <tool_call>, …) are special tokens in many vocabularies.
        uses_parser = chat and (res.reasoning_parser is not None or parse_tools)
        settings = Settings(
            tokenizer=res.tokenizer,
            sampling=sp,
            eos_token_ids=res.tokenizer.eos_token_ids,
            skip_special_tokens=sp.skip_special_tokens and not uses_parser,
            forced=forced,
            seed=rid,
        )
        so = body.get("stream_options") or {}
        return OpenAIRenderer(
            chat=chat,
            model=ctx.request.model or res.model.name,
            request_id=rid,
            settings=settings,
            parsers=parsers,
            prompt_len=prompt_len,
            include_usage=bool(ctx.request.stream and so.get("include_usage")),
            logprobs=sp.logprobs,
            top_logprobs=sp.top_logprobs > 0,
        )
