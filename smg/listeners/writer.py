"""Writes a ``GatewayResponse`` to the client: whole JSON bodies or SSE relayed chunk by chunk."""

from __future__ import annotations

import asyncio
import logging

from aiohttp import web

from smg.errors import GatewayError, ShuttingDown, UpstreamTimeout
from smg.filters.base import RequestContext
from smg.observability.access import start_stream
from smg.protocol.dialects import encode_response
from smg.protocol.openai_errors import error_payload, stream_error_event
from smg.protocol.request import GatewayResponse

log = logging.getLogger("smg.listeners")

_CLIENT_GONE = (ConnectionResetError, ConnectionError)


def _headers(ctx: RequestContext, resp: GatewayResponse) -> dict[str, str]:
    headers = dict(resp.headers)
    headers.update(ctx.response_headers)
    headers["Content-Type"] = resp.content_type
    return headers


def error_response(
    ctx_headers: dict[str, str], err: GatewayError, dialect: str = "openai"
) -> web.Response:
    """The one place a GatewayError becomes an HTTP response (in the client's dialect)."""
    status, body, ctype = error_payload(err, dialect)
    headers = dict(ctx_headers)
    headers.update(err.headers)
    headers["Content-Type"] = ctype
    return web.Response(status=status, body=body, headers=headers)


async def write_response(
    request: web.BaseRequest, ctx: RequestContext, resp: GatewayResponse
) -> web.StreamResponse:
    """Send ``resp``; for a stream, flush each chunk as it arrives and end it truthfully.

    An answer written in another dialect than the client's is re-encoded on the way
    (``smg.protocol.dialects``); plain OpenAI traffic pays one string comparison.
    """
    ctx.status = resp.status
    dialect = ctx.request.dialect
    if resp.stream is None:
        resp.close(None)
        ctx.response_body = resp.body
        ctx.response_dialect = resp.dialect
        if resp.dialect != dialect:
            encode_response(ctx.request, resp)
        return web.Response(status=resp.status, body=resp.body, headers=_headers(ctx, resp))
    out = web.StreamResponse(status=resp.status, headers=_headers(ctx, resp))
    out.headers.setdefault("Cache-Control", "no-cache")
    failure: BaseException | None = None
    if resp.dialect != dialect:
        encode_response(ctx.request, resp)
    stream = resp.stream
    sent = start_stream(ctx)
    try:
        await out.prepare(request)
        try:
            async with asyncio.timeout_at(ctx.deadline or None):
                async for chunk in stream:
                    await out.write(chunk)
                    sent(chunk)
        except TimeoutError:
            raise UpstreamTimeout(
                f"The stream did not finish within the request deadline "
                f"({ctx.deadline - ctx.started:g}s)."
            ) from None
        await out.write_eof()
    except GatewayError as err:
        # The head already went out: end the stream with an error event, never silently.
        failure = err
        ctx.error = err
        await _try_write(out, stream_error_event(err, dialect))
    except _CLIENT_GONE as exc:
        failure = exc
        ctx.client_disconnected = True
    except asyncio.CancelledError as exc:
        failure = exc
        if not ctx.shutdown:
            ctx.client_disconnected = True
            raise
        # Our own drain deadline: tell the client instead of cutting the stream silently.
        uncancel()
        serr = ShuttingDown("The gateway is shutting down; the stream was ended.")
        failure = ctx.error = serr
        await _try_write(out, stream_error_event(serr, dialect))
    except BaseException as exc:
        failure = exc
        raise
    finally:
        aclose = getattr(stream, "aclose", None)
        if aclose is not None:
            try:
                await aclose()
            except Exception:  # the upstream may already be broken; nothing left to tell
                log.debug("closing upstream stream failed", exc_info=True)
        resp.close(failure)
    return out


def uncancel() -> None:
    """Swallow the cancellation the drain used to stop this request."""
    task = asyncio.current_task()
    if task is not None:
        task.uncancel()


async def _try_write(out: web.StreamResponse, data: bytes) -> None:
    try:
        await out.write(data)
        await out.write_eof()
    except _CLIENT_GONE:
        pass
    except Exception:
        log.debug("could not deliver the stream error event", exc_info=True)
