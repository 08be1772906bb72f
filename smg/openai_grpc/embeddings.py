"""``/v1/embeddings`` in gRPC mode: OpenAI inputs → token ids, Embed results → OpenAI list."""

from __future__ import annotations

import base64
import struct
from collections.abc import Sequence
from typing import Any

import orjson

from smg.errors import BadRequest
from smg.protocol.request import GatewayResponse
from smg.tokenization import Tokenizer
from smg.upstreams.grpc.types import EmbedResult

_INPUT_ERROR = (
    "'input' must be a string, an array of strings, an array of token ids or an array of "
    "token-id arrays."
)


def _is_ids(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(type(i) is int and i >= 0 for i in value)


def embedding_inputs(tok: Tokenizer, value: Any) -> list[list[int]]:
    """The token ids of each input (texts get the tokenizer's special tokens, as in HF)."""
    if isinstance(value, str):
        items: list[Any] = [value]
    elif _is_ids(value):
        items = [value]
    elif isinstance(value, list) and value:
        items = value
    else:
        raise BadRequest(_INPUT_ERROR, param="input")
    out: list[list[int]] = []
    for item in items:
        if isinstance(item, str):
            if not item:
                raise BadRequest("'input' must not contain empty strings.", param="input")
            out.append(tok.encode(item, add_special_tokens=True))
        elif _is_ids(item):
            out.append(list(item))
        else:
            raise BadRequest(_INPUT_ERROR, param="input")
    return out


class EmbeddingsRenderer:
    """Builds the OpenAI ``list`` of ``embedding`` objects (``float`` or ``base64``)."""

    def __init__(self, model: str, body: dict[str, Any]) -> None:
        fmt = body.get("encoding_format", "float")
        if fmt not in ("float", "base64"):
            raise BadRequest(
                "'encoding_format' must be 'float' or 'base64'.", param="encoding_format"
            )
        if body.get("dimensions") is not None:
            raise BadRequest(
                "'dimensions' is not supported in gRPC mode: the engine's Embed call returns "
                "the model's full vector.",
                param="dimensions",
            )
        self.model = model
        self.base64 = fmt == "base64"

    def _vector(self, vec: Sequence[float]) -> list[float] | str:
        if not self.base64:
            return list(vec)
        return base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode("ascii")

    def render(self, results: Sequence[EmbedResult]) -> GatewayResponse:
        """The whole response (embeddings are never streamed)."""
        prompt = sum(r.prompt_tokens for r in results)
        doc = {
            "object": "list",
            "data": [
                {"object": "embedding", "index": i, "embedding": self._vector(r.embedding)}
                for i, r in enumerate(results)
            ],
            "model": self.model,
            "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
        }
        return GatewayResponse(200, "application/json", [], body=orjson.dumps(doc))
