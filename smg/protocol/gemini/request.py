"""OpenAI chat request → Gemini ``generateContent`` request body.

* ``system``/``developer`` messages → ``systemInstruction`` (all of them, in order).
* ``user`` → role ``user``; ``assistant`` → role ``model`` (text, then ``functionCall``
  parts for its ``tool_calls``); ``tool`` → a ``user`` turn of ``functionResponse`` parts,
  the function name recovered from the assistant call with the same id. Consecutive
  turns of one role are merged (Gemini wants user and model to alternate).
* Images: ``data:`` URLs → ``inlineData``; other URLs → ``fileData`` (Files API / GCS
  URIs). ``input_audio`` → ``inlineData``.
* ``tools`` → one ``functionDeclarations`` tool (parameters cleaned, see ``schema.py``);
  ``tool_choice`` → ``toolConfig.functionCallingConfig`` (auto→AUTO, none→NONE,
  required→ANY, a named function→ANY + ``allowedFunctionNames``).
* Sampling → ``generationConfig``; ``response_format`` → ``responseMimeType`` /
  ``responseSchema``.

Input Gemini cannot take is refused with a ``BadRequest`` naming the field.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable
from typing import Any, Final

import orjson

from smg.errors import BadRequest
from smg.protocol.gemini.schema import function_parameters, to_gemini_schema

SignatureOf = Callable[[str], str | None]
"""The thoughtSignature Gemini gave a tool call the gateway handed out (None: unknown)."""

# Gemini 3 refuses a replayed functionCall without the thoughtSignature it was issued
# with; when the signature is not known (history written elsewhere), the documented
# sentinel lets the request through.
SKIP_SIGNATURE: Final = "skip_thought_signature_validator"

_GENERATION_FIELDS: Final = (
    ("temperature", "temperature"),
    ("top_p", "topP"),
    ("top_k", "topK"),
    ("n", "candidateCount"),
    ("seed", "seed"),
    ("presence_penalty", "presencePenalty"),
    ("frequency_penalty", "frequencyPenalty"),
)


def _no_signature(call_id: str) -> str | None:
    return None


def _text_of(content: Any, where: str) -> str:
    """The text of a system / tool message (a string or an array of text parts)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for i, part in enumerate(content):
            if not isinstance(part, dict) or part.get("type") != "text":
                raise BadRequest(f"'{where}[{i}]' must be a text part here.", param=f"{where}[{i}]")
            out.append(str(part.get("text", "")))
        return "".join(out)
    raise BadRequest(f"'{where}' must be a string or an array of parts.", param=where)


def _data_url(url: str, where: str) -> dict[str, Any]:
    head, sep, data = url.partition(",")
    if not sep or ";base64" not in head:
        raise BadRequest(f"'{where}' must be a base64 data URL.", param=where)
    mime = head[5:].split(";", 1)[0] or "application/octet-stream"
    return {"inlineData": {"mimeType": mime, "data": data}}


def _image_part(part: dict[str, Any], where: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise BadRequest(f"'{where}.image_url.url' must be a URL.", param=f"{where}.image_url.url")
    if url.startswith("data:"):
        return _data_url(url, f"{where}.image_url.url")
    mime, _ = mimetypes.guess_type(url.split("?", 1)[0])
    if mime is None:
        raise BadRequest(
            f"'{where}.image_url.url': Gemini needs the image's type; send a data: URL or a "
            "URL ending in the file's extension.",
            param=f"{where}.image_url.url",
        )
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def _user_parts(content: Any, where: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}]
    if not isinstance(content, list):
        raise BadRequest(f"'{where}' must be a string or an array of parts.", param=where)
    parts: list[dict[str, Any]] = []
    for i, part in enumerate(content):
        at = f"{where}[{i}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            parts.append({"text": str(part.get("text", ""))})
        elif kind == "image_url":
            parts.append(_image_part(part, at))
        elif kind == "input_audio":
            audio = part.get("input_audio") or {}
            fmt = audio.get("format", "wav") if isinstance(audio, dict) else "wav"
            data = audio.get("data") if isinstance(audio, dict) else None
            if not isinstance(data, str):
                raise BadRequest(f"'{at}.input_audio.data' is required.", param=f"{at}.input_audio")
            parts.append({"inlineData": {"mimeType": f"audio/{fmt}", "data": data}})
        else:
            raise BadRequest(f"'{at}.type' {kind!r} is not supported for Gemini.", param=at)
    return parts


def _arguments(raw: Any, where: str) -> dict[str, Any]:
    if isinstance(raw, dict):
        return raw
    if raw in (None, ""):
        return {}
    try:
        args = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError):
        raise BadRequest(f"'{where}' must be a JSON object.", param=where) from None
    if not isinstance(args, dict):
        raise BadRequest(f"'{where}' must be a JSON object.", param=where)
    return args


def _tool_response(content: Any, where: str) -> dict[str, Any]:
    """A tool result as Gemini's ``response`` object (a JSON object passes as is)."""
    text = _text_of(content, where)
    try:
        parsed = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"result": text}
    return parsed if isinstance(parsed, dict) else {"result": parsed}


class _Contents:
    """Accumulates turns, merging consecutive ones of the same role."""

    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, role: str, parts: list[dict[str, Any]]) -> None:
        if not parts:
            return
        if self.items and self.items[-1]["role"] == role:
            self.items[-1]["parts"].extend(parts)
        else:
            self.items.append({"role": role, "parts": parts})


def _messages(
    messages: list[Any], signatures: SignatureOf, sentinel: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(systemInstruction parts, contents)."""
    system: list[dict[str, Any]] = []
    contents = _Contents()
    call_names: dict[str, str] = {}
    for i, m in enumerate(messages):
        where = f"messages[{i}]"
        role = m.get("role")
        content = m.get("content")
        if role in ("system", "developer"):
            text = _text_of(content, f"{where}.content")
            if text:
                system.append({"text": text})
        elif role == "user":
            contents.add("user", _user_parts(content, f"{where}.content"))
        elif role == "assistant":
            contents.add("model", _assistant_parts(m, where, call_names, signatures, sentinel))
        elif role in ("tool", "function"):
            call_id = m.get("tool_call_id")
            name = m.get("name") if role == "function" else call_names.get(str(call_id))
            if not isinstance(name, str) or not name:
                raise BadRequest(
                    f"'{where}.tool_call_id' {call_id!r} does not answer any earlier "
                    "assistant tool call.",
                    param=f"{where}.tool_call_id",
                )
            response: dict[str, Any] = {
                "name": name,
                "response": _tool_response(content, f"{where}.content"),
            }
            if isinstance(call_id, str) and call_id:
                response["id"] = call_id
            contents.add("user", [{"functionResponse": response}])
    return system, contents.items


def _assistant_parts(
    m: dict[str, Any],
    where: str,
    call_names: dict[str, str],
    signatures: SignatureOf,
    sentinel: bool,
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    content = m.get("content")
    if isinstance(content, str):
        if content:
            parts.append({"text": content})
    elif isinstance(content, list):
        parts.extend(
            {"text": str(p.get("text", ""))}
            for p in content
            if isinstance(p, dict) and p.get("type") == "text"
        )
    calls = m.get("tool_calls") or []
    if not isinstance(calls, list):
        raise BadRequest(f"'{where}.tool_calls' must be an array.", param=f"{where}.tool_calls")
    first = True
    for j, call in enumerate(calls):
        at = f"{where}.tool_calls[{j}]"
        fn = call.get("function") if isinstance(call, dict) else None
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise BadRequest(f"'{at}.function.name' is required.", param=f"{at}.function.name")
        assert isinstance(fn, dict)
        call_id = call.get("id")
        fc: dict[str, Any] = {"name": name, "args": _arguments(fn.get("arguments"), at)}
        part: dict[str, Any] = {"functionCall": fc}
        if isinstance(call_id, str) and call_id:
            call_names[call_id] = name
            sig = signatures(call_id)
            if sig:
                part["thoughtSignature"] = sig
        if first and sentinel and "thoughtSignature" not in part:
            part["thoughtSignature"] = SKIP_SIGNATURE
        first = False
        parts.append(part)
    return parts


def _tools(body: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """(functionDeclarations, declared names)."""
    tools = body.get("tools")
    if tools is None:
        return [], []
    if not isinstance(tools, list):
        raise BadRequest("'tools' must be an array.", param="tools")
    decls: list[dict[str, Any]] = []
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or t.get("type") != "function":
            raise BadRequest(
                f"'tools[{i}].type' must be 'function' for Gemini.", param=f"tools[{i}].type"
            )
        fn = t.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or not name:
            raise BadRequest(
                f"'tools[{i}].function.name' is required.", param=f"tools[{i}].function.name"
            )
        assert isinstance(fn, dict)
        decl: dict[str, Any] = {"name": name}
        if isinstance(fn.get("description"), str):
            decl["description"] = fn["description"]
        params = function_parameters(fn.get("parameters"))
        if params is not None:
            decl["parameters"] = params
        decls.append(decl)
    return decls, [d["name"] for d in decls]


def _tool_config(choice: Any, names: list[str]) -> tuple[dict[str, Any] | None, list[str] | None]:
    """(functionCallingConfig, names the declarations are cut to) for ``tool_choice``."""
    if choice is None:
        return None, None
    if choice == "auto":
        return {"mode": "AUTO"}, None
    if choice == "none":
        return {"mode": "NONE"}, None
    if choice == "required":
        return {"mode": "ANY"}, None
    if isinstance(choice, dict) and choice.get("type") == "function":
        fn = choice.get("function")
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str) or name not in names:
            raise BadRequest(
                f"'tool_choice' names the function {name!r}, which is not in 'tools'.",
                param="tool_choice",
            )
        return {"mode": "ANY", "allowedFunctionNames": [name]}, None
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        spec = choice.get("allowed_tools") or {}
        allowed = [
            t["function"]["name"]
            for t in (spec.get("tools") or [])
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ]
        unknown = [n for n in allowed if n not in names]
        if unknown or not allowed:
            raise BadRequest(
                f"'tool_choice.allowed_tools' must name declared tools (unknown: {unknown}).",
                param="tool_choice",
            )
        if spec.get("mode") == "required":
            return {"mode": "ANY", "allowedFunctionNames": allowed}, None
        return {"mode": "AUTO"}, allowed
    raise BadRequest(
        "'tool_choice' must be 'auto', 'none', 'required' or a named function.",
        param="tool_choice",
    )


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    gen: dict[str, Any] = {}
    for ours, theirs in _GENERATION_FIELDS:
        v = body.get(ours)
        if v is not None:
            gen[theirs] = v
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        gen["maxOutputTokens"] = max_tokens
    stop = body.get("stop")
    if isinstance(stop, str):
        gen["stopSequences"] = [stop]
    elif isinstance(stop, list) and stop:
        gen["stopSequences"] = stop
    fmt = body.get("response_format")
    if isinstance(fmt, dict):
        kind = fmt.get("type")
        if kind == "json_object":
            gen["responseMimeType"] = "application/json"
        elif kind == "json_schema":
            spec = fmt.get("json_schema")
            schema = spec.get("schema") if isinstance(spec, dict) else None
            if not isinstance(schema, dict):
                raise BadRequest(
                    "'response_format.json_schema.schema' must be an object.",
                    param="response_format.json_schema.schema",
                )
            gen["responseMimeType"] = "application/json"
            gen["responseSchema"] = to_gemini_schema(schema)
        elif kind not in (None, "text"):
            raise BadRequest(
                f"'response_format.type' {kind!r} is not supported.", param="response_format.type"
            )
    if body.get("logprobs"):
        gen["responseLogprobs"] = True
        top = body.get("top_logprobs")
        if isinstance(top, int):
            gen["logprobs"] = top
    return gen


def to_gemini(body: dict[str, Any], signatures: SignatureOf | None = None) -> dict[str, Any]:
    """The ``generateContent`` body for an OpenAI chat request body.

    ``signatures`` finds the thoughtSignature Gemini attached to a tool call the gateway
    handed out (replayed with the call).
    """
    model = str(body.get("model") or "")
    sentinel = "gemini-3" in model
    messages = body.get("messages")
    if not isinstance(messages, list):
        raise BadRequest("'messages' must be a non-empty array.", param="messages")
    system, contents = _messages(messages, signatures or _no_signature, sentinel)
    if not contents:
        raise BadRequest(
            "'messages' must hold at least one user, assistant or tool message for Gemini.",
            param="messages",
        )
    out: dict[str, Any] = {"contents": contents}
    if system:
        out["systemInstruction"] = {"parts": system}
    decls, names = _tools(body)
    fcc, keep = _tool_config(body.get("tool_choice"), names)
    if keep is not None:
        decls = [d for d in decls if d["name"] in keep]
    if decls:
        out["tools"] = [{"functionDeclarations": decls}]
    if fcc is not None and decls:
        out["toolConfig"] = {"functionCallingConfig": fcc}
    gen = _generation_config(body)
    if gen:
        out["generationConfig"] = gen
    return out
