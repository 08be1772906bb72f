"""What the simulated Gemini API accepts: field names, schema rules, turn order.

The checks Google's API applies to a ``generateContent`` body, with its messages:
unknown field names anywhere (``Invalid JSON payload received. Unknown name …``),
empty ``contents`` / ``parts``, roles other than ``user`` / ``model``, function-call and
function-response turn order and counts, the ``Schema`` subset (no
``additionalProperties``, string enums, ``format`` per type, non-empty object
parameters), ``functionCallingConfig``, temperature range, and Gemini 3's
``thoughtSignature`` on replayed calls (this simulator's own or Google's sentinel).
"""

from __future__ import annotations

import hashlib
from typing import Any, Final

import orjson

SKIP_SIGNATURE: Final = "skip_thought_signature_validator"

STATUS: Final = {
    400: "INVALID_ARGUMENT",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_SCHEMA_FIELDS: Final = frozenset(
    [
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    ]
)
# Field names the API knows, per message type (camelCase as sent over REST).

_FIELDS: Final = {
    "request": frozenset(
        [
            "contents",
            "tools",
            "toolConfig",
            "safetySettings",
            "systemInstruction",
            "generationConfig",
            "cachedContent",
            "model",
            "labels",
        ]
    ),
    "content": frozenset({"role", "parts"}),
    "part": frozenset(
        [
            "text",
            "inlineData",
            "functionCall",
            "functionResponse",
            "fileData",
            "executableCode",
            "codeExecutionResult",
            "thought",
            "thoughtSignature",
            "videoMetadata",
            "partMetadata",
        ]
    ),
    "generationConfig": frozenset(
        [
            "stopSequences",
            "responseMimeType",
            "responseSchema",
            "responseJsonSchema",
            "candidateCount",
            "maxOutputTokens",
            "temperature",
            "topP",
            "topK",
            "seed",
            "presencePenalty",
            "frequencyPenalty",
            "responseLogprobs",
            "logprobs",
            "enableEnhancedCivicAnswers",
            "responseModalities",
            "speechConfig",
            "thinkingConfig",
            "mediaResolution",
        ]
    ),
    "tool": frozenset(
        [
            "functionDeclarations",
            "googleSearch",
            "googleSearchRetrieval",
            "codeExecution",
            "urlContext",
        ]
    ),
    "functionDeclaration": frozenset(
        [
            "name",
            "description",
            "parameters",
            "parametersJsonSchema",
            "response",
            "responseJsonSchema",
            "behavior",
        ]
    ),
    "toolConfig": frozenset({"functionCallingConfig", "retrievalConfig"}),
    "functionCallingConfig": frozenset({"mode", "allowedFunctionNames"}),
    "functionCall": frozenset({"id", "name", "args"}),
    "functionResponse": frozenset({"id", "name", "response", "parts", "willContinue"}),
}

_FORMATS: Final = {
    "STRING": frozenset({"enum", "date-time"}),
    "INTEGER": frozenset({"int32", "int64"}),
    "NUMBER": frozenset({"float", "double"}),
}

_TYPES: Final = frozenset({"STRING", "NUMBER", "INTEGER", "BOOLEAN", "ARRAY", "OBJECT", "NULL"})


class ApiError(Exception):
    """An error answer in Google's shape."""

    def __init__(
        self, status: int, message: str, details: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.details = status, message, details


def _unknown(where: str, name: str) -> ApiError:
    return ApiError(
        400,
        f"Invalid JSON payload received. Unknown name \"{name}\" at '{where}': Cannot find field.",
    )


def _fields(doc: Any, kind: str, where: str) -> dict[str, Any]:
    if not isinstance(doc, dict):
        raise ApiError(400, f"Invalid JSON payload received. Expected an object at '{where}'.")
    allowed = _FIELDS[kind]
    for k in doc:
        if k not in allowed:
            raise _unknown(where, k)
    return doc


def check_schema(schema: Any, where: str, top: bool = False) -> None:
    """Gemini's OpenAPI-subset ``Schema`` rules."""
    if not isinstance(schema, dict):
        raise ApiError(400, f"Invalid JSON payload received. Expected an object at '{where}'.")
    for k in schema:
        if k not in _SCHEMA_FIELDS:
            raise _unknown(where, k)
    kind = schema.get("type")
    upper = kind.upper() if isinstance(kind, str) else None
    if kind is not None and upper not in _TYPES:
        raise ApiError(400, f"Invalid value at '{where}.type' ({kind!r}).")
    fmt = schema.get("format")
    if fmt is not None and upper in _FORMATS and fmt not in _FORMATS[upper]:
        raise ApiError(
            400,
            f"* GenerateContentRequest.{where}.format: only {sorted(_FORMATS[upper])} are "
            f"supported for {upper} type",
        )
    enum = schema.get("enum")
    if enum is not None and not (isinstance(enum, list) and all(isinstance(e, str) for e in enum)):
        raise ApiError(400, f"Invalid value at '{where}.enum': enum values must be strings.")
    props = schema.get("properties")
    if upper == "OBJECT" and top and not props:
        raise ApiError(
            400,
            f"* GenerateContentRequest.{where}.properties: should be non-empty for OBJECT type",
        )
    if isinstance(props, dict):
        for name, sub in props.items():
            check_schema(sub, f"{where}.properties[{name}].value")
    if "items" in schema:
        check_schema(schema["items"], f"{where}.items")
    for i, sub in enumerate(schema.get("anyOf") or ()):
        check_schema(sub, f"{where}.any_of[{i}]")


def _check_parts(parts: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(parts, list) or not parts:
        raise ApiError(
            400, f"* GenerateContentRequest.{where}.parts: contents.parts must not be empty."
        )
    for j, p in enumerate(parts):
        _fields(p, "part", f"{where}.parts[{j}]")
        if "functionCall" in p:
            _fields(p["functionCall"], "functionCall", f"{where}.parts[{j}].function_call")
        if "functionResponse" in p:
            fr = _fields(
                p["functionResponse"], "functionResponse", f"{where}.parts[{j}].function_response"
            )
            if not isinstance(fr.get("response"), dict):
                raise ApiError(
                    400,
                    f"* GenerateContentRequest.{where}.parts[{j}]."
                    "function_response.response: must be an object",
                )
    return parts


def _check_contents(contents: Any, gemini3: bool) -> None:
    if not contents:
        raise ApiError(400, "* GenerateContentRequest.contents: contents is not specified")
    if not isinstance(contents, list):
        raise ApiError(400, "Invalid JSON payload received. 'contents' must be a list.")
    prev_calls = 0
    prev_kind = None  # "user", "call", "response", "model"
    for i, c in enumerate(contents):
        where = f"contents[{i}]"
        _fields(c, "content", where)
        role = c.get("role", "user")
        if role not in ("user", "model"):
            raise ApiError(400, "Please use a valid role: user, model.")
        parts = _check_parts(c.get("parts"), where)
        calls = [p for p in parts if "functionCall" in p]
        responses = [p for p in parts if "functionResponse" in p]
        if responses:
            if prev_kind != "call":
                raise ApiError(
                    400,
                    "Please ensure that function response turn comes immediately "
                    "after a function call turn.",
                )
            if len(responses) != prev_calls:
                raise ApiError(
                    400,
                    "Please ensure that the number of function response parts is "
                    "equal to the number of function call parts of the function call "
                    "turn.",
                )
            prev_kind = "response"
        elif calls:
            if role != "model":
                raise ApiError(400, "Please use a valid role: functionCall parts need role model.")
            if prev_kind not in ("user", "response"):
                raise ApiError(
                    400,
                    "Please ensure that function call turn comes immediately after "
                    "a user turn or after a function response turn.",
                )
            if gemini3 and not _signed(calls[0]):
                raise ApiError(
                    400,
                    f"Function call is missing a thought_signature in "
                    f"functionCall parts. This is required for tools to work "
                    f"correctly, and missing thought_signature may lead to degraded "
                    f"model performance. Additional data, function call "
                    f"`{calls[0]['functionCall'].get('name')}` , position {i + 1}.",
                )
            prev_calls = len(calls)
            prev_kind = "call"
        else:
            prev_kind = role


def validate(body: Any, model: str) -> list[dict[str, Any]]:
    """Reject what Gemini rejects; returns the declared functions."""
    _fields(body, "request", "")
    _check_contents(body.get("contents"), model.startswith("gemini-3"))
    if "systemInstruction" in body:
        si = _fields(body["systemInstruction"], "content", "system_instruction")
        _check_parts(si.get("parts"), "system_instruction")
    decls: list[dict[str, Any]] = []
    for i, tool in enumerate(body.get("tools") or ()):
        _fields(tool, "tool", f"tools[{i}]")
        for j, d in enumerate(tool.get("functionDeclarations") or ()):
            where = f"tools[{i}].function_declarations[{j}]"
            _fields(d, "functionDeclaration", where)
            if not d.get("name"):
                raise ApiError(400, f"* GenerateContentRequest.{where}.name: Name cannot be empty.")
            if "parameters" in d:
                check_schema(d["parameters"], f"{where}.parameters", top=True)
            decls.append(d)
    gen = body.get("generationConfig")
    if gen is not None:
        _fields(gen, "generationConfig", "generation_config")
        t = gen.get("temperature")
        if t is not None and not 0 <= t <= 2:
            raise ApiError(
                400,
                "Unable to submit request because it has a temperature value "
                f"of {t} but the supported range is from 0 (inclusive) to 2.0001 "
                "(exclusive).",
            )
        if "responseSchema" in gen:
            check_schema(gen["responseSchema"], "generation_config.response_schema")
    tc = body.get("toolConfig")
    if tc is not None:
        _fields(tc, "toolConfig", "tool_config")
        fcc = _fields(
            tc.get("functionCallingConfig") or {},
            "functionCallingConfig",
            "tool_config.function_calling_config",
        )
        mode = fcc.get("mode", "AUTO")
        if mode not in ("AUTO", "ANY", "NONE", "VALIDATED", "MODE_UNSPECIFIED"):
            raise ApiError(
                400,
                f"Invalid value at 'tool_config.function_calling_config.mode' "
                f"(type.googleapis.com/google.ai.generativelanguage.v1beta."
                f'FunctionCallingConfig.Mode), "{mode}"',
            )
        names = fcc.get("allowedFunctionNames")
        if names is not None:
            if mode not in ("ANY", "VALIDATED"):
                raise ApiError(
                    400,
                    "* GenerateContentRequest.tool_config.function_calling_config"
                    ".allowed_function_names: allowed_function_names should be empty "
                    "when function calling mode is not ANY or VALIDATED.",
                )
            declared = {d["name"] for d in decls}
            for n in names:
                if n not in declared:
                    raise ApiError(
                        400,
                        f"* GenerateContentRequest.tool_config.function_calling_"
                        f"config.allowed_function_names: {n} is not declared.",
                    )
    return decls


def signature(name: str, args: Any) -> str:
    return "sig-" + hashlib.sha256(orjson.dumps([name, args])).hexdigest()[:24]


def _signed(part: dict[str, Any]) -> bool:
    """The signature this sim issued for the call, or Google's documented sentinel."""
    sig = part.get("thoughtSignature")
    fc = part["functionCall"]
    return sig == SKIP_SIGNATURE or sig == signature(fc.get("name", ""), fc.get("args", {}))
