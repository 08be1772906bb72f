"""What the simulated Messages API refuses, and how it says so (Anthropic's error shape).

Split from ``anthropic.py`` (the answers) so the rules read on their own: headers, the
top-level fields, roles and block types per role, tool_use / tool_result pairing,
tools and ``tool_choice``, sampling ranges, ``thinking`` budgets. Every rejection is an
``ApiError`` whose message starts with the field, as the API writes them.
"""

from __future__ import annotations

import re
import secrets
from typing import Any, Final

from aiohttp import web

from smg.sim.providers.common import SimState

# Dated versions; newer SDKs send newer dates, the API accepts every published one.
_VERSION: Final = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FIRST_VERSION: Final = "2023-01-01"
_KNOWN: Final = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "metadata",
        "stop_sequences",
        "stream",
        "temperature",
        "top_p",
        "top_k",
        "tools",
        "tool_choice",
        "thinking",
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
    }
)
_USER_BLOCKS: Final = frozenset(
    {"text", "image", "document", "tool_result", "search_result", "container_upload"}
)
_ASSISTANT_BLOCKS: Final = frozenset(
    {"text", "tool_use", "thinking", "redacted_thinking", "server_tool_use"}
)
_TOOL_NAME: Final = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")
_STATUS_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class ApiError(Exception):
    """An error answer in Anthropic's shape."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


def _bad(message: str) -> ApiError:
    return ApiError(400, message)


def error_response(
    status: int, message: str, headers: dict[str, str] | None = None
) -> web.Response:
    """``{"type": "error", "error": {type, message}, "request_id"}`` (faults use it too)."""
    kind = _STATUS_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    rid = "req_" + secrets.token_hex(12)
    body = {"type": "error", "error": {"type": kind, "message": message}, "request_id": rid}
    return web.json_response(body, status=status, headers={**(headers or {}), "request-id": rid})


def check_headers(state: SimState, request: web.Request) -> None:
    """The API key (``x-api-key`` or a bearer token) and ``anthropic-version``."""
    key = request.headers.get("x-api-key")
    if not key:
        # Newer SDKs send the API key as a bearer token; the API takes both.
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        key = token.strip() if scheme.lower() == "bearer" else ""
    if not key:
        raise ApiError(401, "x-api-key header is required")
    if key != state.api_key:
        raise ApiError(401, "invalid x-api-key")
    version = request.headers.get("anthropic-version")
    if not version:
        raise _bad("anthropic-version: header is required")
    if not _VERSION.match(version) or version < _FIRST_VERSION:
        raise _bad(f"anthropic-version: invalid version {version!r}")


def _blocks(content: Any, path: str, allowed: frozenset[str]) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}]
    if not isinstance(content, list):
        raise _bad(f"{path}: Input should be a valid string or list")
    for j, b in enumerate(content):
        if not isinstance(b, dict):
            raise _bad(f"{path}.{j}: Input should be a valid dictionary")
        kind = b.get("type")
        if kind not in allowed:
            raise _bad(f"{path}.{j}.type: Input tag {kind!r} found is not valid here")
        if kind == "text" and (not isinstance(b.get("text"), str) or not b["text"]):
            raise _bad(f"{path}.{j}: text content blocks must be non-empty")
    return content


def _check_messages(msgs: Any) -> None:
    if msgs is None:
        raise _bad("messages: Field required")
    if not isinstance(msgs, list) or not msgs:
        raise _bad("messages: at least one message is required")
    pending: set[str] = set()
    for i, m in enumerate(msgs):
        path = f"messages.{i}"
        if not isinstance(m, dict):
            raise _bad(f"{path}: Input should be a valid dictionary")
        role = m.get("role")
        if role == "system":
            raise _bad(
                'messages: Unexpected role "system". The Messages API accepts a top-level '
                '`system` parameter, not "system" as an input message role.'
            )
        if role not in ("user", "assistant"):
            raise _bad(f"{path}.role: Input should be 'user' or 'assistant'")
        if "content" not in m:
            raise _bad(f"{path}.content: Field required")
        content = m["content"]
        last = i == len(msgs) - 1
        if (content == "" or content == []) and not (last and role == "assistant"):
            raise _bad(
                f"{path}: all messages must have non-empty content except for the optional "
                "final assistant message"
            )
        allowed = _USER_BLOCKS if role == "user" else _ASSISTANT_BLOCKS
        blocks = _blocks(content, f"{path}.content", allowed)
        if role == "user":
            results = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
            for j, tid in enumerate(results):
                if tid not in pending:
                    raise _bad(
                        f"{path}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                        f"blocks: {tid}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message."
                    )
            missing = pending - set(results)
            if missing:
                raise _bad(
                    f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(sorted(missing))}. Each `tool_use` block "
                    "must have a corresponding `tool_result` block in the next message."
                )
            pending = set()
        else:
            if pending:
                raise _bad(
                    f"messages.{i - 1}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(sorted(pending))}."
                )
            pending = {
                str(b.get("id")) for b in blocks if b.get("type") in ("tool_use", "server_tool_use")
            }
            for j, b in enumerate(blocks):
                if b.get("type") == "tool_use" and not isinstance(b.get("input"), dict):
                    raise _bad(f"{path}.content.{j}.input: Input should be a valid dictionary")


def _check_tools(body: dict[str, Any]) -> list[dict[str, Any]]:
    tools = body.get("tools")
    choice = body.get("tool_choice")
    fns: list[dict[str, Any]] = []
    if tools is not None:
        if not isinstance(tools, list):
            raise _bad("tools: Input should be a valid list")
        for i, t in enumerate(tools):
            if not isinstance(t, dict):
                raise _bad(f"tools.{i}: Input should be a valid dictionary")
            if t.get("type") not in (None, "custom"):
                continue  # a server tool: run by the API, not the client
            name = t.get("name")
            if not isinstance(name, str) or not _TOOL_NAME.match(name):
                raise _bad(
                    f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
                )
            schema = t.get("input_schema")
            if not isinstance(schema, dict) or schema.get("type") != "object":
                raise _bad(f"tools.{i}.custom.input_schema.type: Input should be 'object'")
            fns.append(t)
    if choice is None:
        return fns
    if not isinstance(choice, dict):
        raise _bad("tool_choice: Input should be a valid dictionary")
    kind = choice.get("type")
    if kind not in ("auto", "any", "tool", "none"):
        raise _bad(
            f"tool_choice.type: Input tag {kind!r} found using 'type' does not match any of the "
            "expected tags: 'auto', 'any', 'tool', 'none'"
        )
    if not tools and kind != "none":
        raise _bad("tool_choice: tool_choice may only be specified while providing tools")
    if kind == "tool" and choice.get("name") not in [f["name"] for f in fns]:
        raise _bad(f"tool_choice.name: tool {choice.get('name')!r} is not among the tools given")
    return fns


def _number(body: dict[str, Any], name: str, lo: float, hi: float) -> None:
    v = body.get(name)
    if v is None:
        return
    if isinstance(v, bool) or not isinstance(v, int | float):
        raise _bad(f"{name}: Input should be a valid number")
    if not lo <= v <= hi:
        raise _bad(f"{name}: range: {lo:g} <= {name} <= {hi:g}")


def validate(state: SimState, body: Any, count_only: bool = False) -> tuple[str, list[Any]]:
    """Reject what the Messages API rejects; returns (model, declared tools)."""
    if not isinstance(body, dict):
        raise _bad("Request body must be a JSON object")
    for k in body:
        if k not in _KNOWN:
            raise _bad(f"{k}: Extra inputs are not permitted")
    model = body.get("model")
    if model is None:
        raise _bad("model: Field required")
    if not isinstance(model, str) or not model:
        raise _bad("model: Input should be a valid string")
    if model not in state.models:
        raise ApiError(404, f"model: {model}")
    if not count_only:
        mt = body.get("max_tokens")
        if mt is None:
            raise _bad("max_tokens: Field required")
        if not isinstance(mt, int) or isinstance(mt, bool) or mt < 1:
            raise _bad("max_tokens: Input should be greater than or equal to 1")
    _check_messages(body.get("messages"))
    system = body.get("system")
    if system is not None and not isinstance(system, str):
        _blocks(system, "system", frozenset({"text"}))
    _number(body, "temperature", 0, 1)
    _number(body, "top_p", 0, 1)
    k = body.get("top_k")
    if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 0):
        raise _bad("top_k: Input should be a non-negative integer")
    stops = body.get("stop_sequences")
    if stops is not None and (
        not isinstance(stops, list) or not all(isinstance(s, str) and s for s in stops)
    ):
        raise _bad("stop_sequences: Input should be a list of non-empty strings")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _bad("stream: Input should be a valid boolean")
    meta = body.get("metadata")
    if meta is not None and (
        not isinstance(meta, dict) or not isinstance(meta.get("user_id", ""), str)
    ):
        raise _bad("metadata.user_id: Input should be a valid string")
    thinking = body.get("thinking")
    if thinking is not None and not count_only:
        budget = thinking.get("budget_tokens") if isinstance(thinking, dict) else None
        if not isinstance(thinking, dict) or thinking.get("type") not in ("enabled", "disabled"):
            raise _bad("thinking.type: Input should be 'enabled' or 'disabled'")
        if thinking["type"] == "enabled" and (
            not isinstance(budget, int) or budget < 1024 or budget >= body["max_tokens"]
        ):
            raise _bad("thinking.enabled.budget_tokens: must be >= 1024 and less than max_tokens")
    return model, _check_tools(body)
