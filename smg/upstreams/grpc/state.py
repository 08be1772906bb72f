"""The contract between upstream filters (template, tokenize, …) and the gRPC adapter.

Filters that run before the router put these keys on the ``RequestContext``; the gRPC
adapter reads them in ``send``. With none set, the adapter serves SGLang-style
``POST /generate`` bodies that already carry ``input_ids`` (see ``adapter.py``).

- ``PROMPT_IDS``: the prompt as token ids (required for any request that is not a
  ``/generate`` body with ``input_ids``).
- ``SAMPLING``: the engine-neutral ``SamplingParams`` (``sampling.py``); default: the
  ``/generate`` body's ``sampling_params``, else engine defaults.
- ``RENDERER``: turns the neutral chunk stream into the client's response (e.g. the
  detokenize + parsers stage writing OpenAI chat chunks); default: SGLang ``/generate``
  JSON or SSE with ``output_ids`` and ``meta_info``.
- ``PROMPT_TEXT``: optional text of the prompt, sent as ``original_text`` (debugging).
- ``ENGINE_REQUEST_ID``: set by the adapter: the request id the engine saw (for Abort).
- ``EMBED_INPUTS`` / ``EMBED_RENDERER``: an embeddings request's inputs as token ids
  (one Embed call each) and what turns the results into the client's response.
- ``ENGINE_EOS_IDS``: set by the adapter before rendering: the eos token ids the chosen
  engine reported in GetModelInfo (the engine stops on them by itself); a renderer ends
  sequences on them too, so a model directory without ``generation_config.json`` still
  stops (and never shows the eos token) where the engine does.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING, Protocol

from smg.filters.base import StateKey

if TYPE_CHECKING:
    from smg.filters.base import RequestContext
    from smg.protocol.request import GatewayResponse
    from smg.upstreams.grpc.sampling import SamplingParams  # noqa: F401 - in a StateKey string
    from smg.upstreams.grpc.types import EmbedResult, GenerateChunk


class ChunkRenderer(Protocol):
    """Builds the client response from the engine's neutral chunks."""

    async def render(
        self, ctx: RequestContext, chunks: AsyncIterator[GenerateChunk], stream: bool
    ) -> GatewayResponse:
        """Return the response; for a stream, return once its head is known.

        ``chunks`` is closed by the adapter when the response closes (which sends Abort
        to the engine if the sequence had not finished); a renderer that returns a
        whole body must have consumed the chunks it needs before returning.
        """
        ...


class EmbedRenderer(Protocol):
    """Builds the client response from one Embed result per input."""

    def render(self, results: Sequence[EmbedResult]) -> GatewayResponse:
        """The whole response."""
        ...


PROMPT_IDS = StateKey["list[int] | None"]("grpc.prompt_ids")
SAMPLING = StateKey["SamplingParams | None"]("grpc.sampling")
RENDERER = StateKey["ChunkRenderer | None"]("grpc.renderer")
PROMPT_TEXT = StateKey["str"]("grpc.prompt_text")
ENGINE_REQUEST_ID = StateKey["str"]("grpc.engine_request_id")
ENGINE_EOS_IDS = StateKey["tuple[int, ...]"]("grpc.engine_eos_ids")
EMBED_INPUTS = StateKey["list[list[int]] | None"]("grpc.embed_inputs")
EMBED_RENDERER = StateKey["EmbedRenderer | None"]("grpc.embed_renderer")
