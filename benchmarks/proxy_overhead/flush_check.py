#!/usr/bin/env python3
"""Are streamed chunks flushed as they arrive?  A trickling SSE worker and a probe.  Stdlib only.

The nginx mock of ../shared/bench sends its whole canned SSE body in one write, so it cannot
tell a gateway that relays chunk by chunk from one that buffers the stream.  This worker
sends EVENTS events INTERVAL_MS apart (each in its own HTTP chunk, the first right after
the head), then ``data: [DONE]``.  The probe sends stream:true requests and records when
each event reaches the client; a gateway that flushes shows arrival offsets spaced like the
worker's schedule, one that buffers shows them bunched at the end.

  flush_check.py serve PORT [PORT ...]        # foreground; answers /health, /v1/models, ...
  flush_check.py probe URL [N]                # one JSON line: per-event lateness vs schedule

"lateness" of event i = (arrival_i - arrival_0) - i * INTERVAL_MS, i.e. how much later than
the worker's schedule event i reached the client, relative to the first event; a flushing
proxy keeps it at about a millisecond, a buffering one pushes it towards the stream length.
Env: EVENTS=10 INTERVAL_MS=100 (must match between serve and probe).
"""

import asyncio
import contextlib
import http.client
import json
import os
import sys
import time
import urllib.parse

EVENTS = int(os.environ.get("EVENTS", "10"))
INTERVAL = int(os.environ.get("INTERVAL_MS", "100")) / 1000.0

_MODELS = json.dumps(
    {
        "object": "list",
        "data": [
            {
                "id": "mock-model",
                "object": "model",
                "created": 1700000000,
                "owned_by": "mock",
                "root": "mock-model",
                "max_model_len": 4096,
            }
        ],
    }
).encode()
_INFO = json.dumps(
    {
        "model_path": "mock-model",
        "tokenizer_path": "mock-model",
        "served_model_name": "mock-model",
        "is_generation": True,
        "model_type": "llama",
        "architectures": ["LlamaForCausalLM"],
        "tp_size": 1,
        "dp_size": 1,
        "version": "0.0.0-mock",
        "max_total_num_tokens": 100000,
        "disaggregation_mode": "null",
        "internal_states": [{"last_gen_throughput": 0.0}],
    }
).encode()
_CHAT = json.dumps(
    {
        "id": "chatcmpl-mock",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "mock-model",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "trickle"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
    }
).encode()


def _event(i):
    c = {
        "id": "chatcmpl-trickle",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "mock-model",
        "choices": [{"index": 0, "delta": {"content": f"t{i} "}, "finish_reason": None}],
    }
    return b"data: " + json.dumps(c, separators=(",", ":")).encode() + b"\n\n"


def _chunk(data):
    return b"%x\r\n%s\r\n" % (len(data), data)


async def _handle(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            lines = head.decode("latin-1").split("\r\n")
            method, path, _ = lines[0].split(" ", 2)
            hdrs = {}
            for ln in lines[1:]:
                if ":" in ln:
                    k, v = ln.split(":", 1)
                    hdrs[k.strip().lower()] = v.strip()
            body = b""
            if "content-length" in hdrs:
                body = await reader.readexactly(int(hdrs["content-length"]))
            elif hdrs.get("transfer-encoding", "").lower() == "chunked":
                while True:
                    size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
                    data = await reader.readexactly(size + 2)
                    if size == 0:
                        break
                    body += data[:-2]
            path = path.split("?", 1)[0]
            if method == "POST" and path in ("/v1/chat/completions", "/v1/completions"):
                stream = False
                with contextlib.suppress(ValueError):
                    stream = bool(json.loads(body or b"{}").get("stream"))
                if not stream:
                    await _send(writer, 200, "application/json", _CHAT)
                    continue
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                    b"cache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n"
                )
                t0 = time.monotonic()
                for i in range(EVENTS):
                    delay = t0 + i * INTERVAL - time.monotonic()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    writer.write(_chunk(_event(i)))
                    await writer.drain()
                writer.write(_chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
                await writer.drain()
            elif path in ("/v1/models",):
                await _send(writer, 200, "application/json", _MODELS)
            elif path in ("/get_model_info", "/model_info", "/get_server_info", "/server_info"):
                await _send(writer, 200, "application/json", _INFO)
            elif path == "/get_load":
                await _send(writer, 200, "application/json", b'{"load":0}')
            elif path in ("/health", "/health_generate", "/metrics", "/flush_cache"):
                await _send(writer, 200, "application/json", b"")
            else:
                await _send(writer, 404, "application/json", b'{"error":"not found"}')
    except (asyncio.IncompleteReadError, ConnectionError, ValueError):
        pass
    finally:
        writer.close()


async def _send(writer, status, ctype, body):
    reason = {200: "OK", 404: "Not Found"}[status]
    writer.write(
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {ctype}\r\n"
        f"content-length: {len(body)}\r\n\r\n".encode()
        + body
    )
    await writer.drain()


async def _serve(ports):
    servers = [await asyncio.start_server(_handle, "127.0.0.1", p) for p in ports]
    print(
        f"trickle SSE worker on {ports}: {EVENTS} events {INTERVAL * 1000:.0f} ms apart",
        file=sys.stderr,
        flush=True,
    )
    await asyncio.gather(*(s.serve_forever() for s in servers))


def probe(url, n):
    u = urllib.parse.urlparse(url)
    body = json.dumps(
        {
            "model": "mock-model",
            "stream": True,
            "max_tokens": EVENTS,
            "messages": [{"role": "user", "content": "trickle"}],
        }
    )
    hdrs = {"Content-Type": "application/json", "Accept": "text/event-stream"}
    conn = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    runs = []
    bad = 0
    for _ in range(n):
        t0 = time.perf_counter()
        conn.request("POST", u.path, body, hdrs)
        r = conn.getresponse()
        buf = b""
        arrivals = []
        while True:
            chunk = r.read1(65536)
            if not chunk:
                break
            now = time.perf_counter()
            buf += chunk
            while len(arrivals) < buf.count(b"\n\n"):  # events completed by this read
                arrivals.append(now - t0)
        r.read()
        events = [e for e in buf.split(b"\n\n") if e.startswith(b"data:")]
        if (
            r.status != 200
            or not events
            or events[-1] != b"data: [DONE]"
            or len(events) != EVENTS + 1
        ):
            bad += 1
            continue
        arr = arrivals[:EVENTS]
        late = [(a - arr[0]) - i * INTERVAL for i, a in enumerate(arr)]
        runs.append(
            {
                "first_ms": arr[0] * 1e3,
                "max_late_ms": max(late) * 1e3,
                "offsets_ms": [round((a - arr[0]) * 1e3, 1) for a in arr],
            }
        )
    ml = sorted(r["max_late_ms"] for r in runs)
    out = {
        "n": len(runs),
        "bad": bad,
        "events": EVENTS,
        "interval_ms": INTERVAL * 1e3,
        "max_late_ms_median": round(ml[len(ml) // 2], 2) if ml else None,
        "max_late_ms_worst": round(ml[-1], 2) if ml else None,
        "first_event_ms_median": round(sorted(r["first_ms"] for r in runs)[len(runs) // 2], 2)
        if runs
        else None,
        "offsets_ms_example": runs[len(runs) // 2]["offsets_ms"] if runs else None,
        "flushed": bool(ml) and ml[-1] < INTERVAL * 1e3 / 2,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "serve":
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(_serve([int(p) for p in sys.argv[2:]]))
    elif len(sys.argv) >= 3 and sys.argv[1] == "probe":
        probe(sys.argv[2], int(sys.argv[3]) if len(sys.argv) > 3 else 5)
    else:
        sys.exit(__doc__)
