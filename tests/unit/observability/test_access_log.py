"""The buffered access log: whole JSON (or text) lines, flushed on time, count and demand."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path
from typing import Any

from smg.observability.access_log import FLUSH_AFTER, FLUSH_LINES, AccessLog, Entry


def _entry(**over: Any) -> Entry:
    base = Entry(
        wall=time.time(),
        request_id="req-1",
        listener="main",
        route="r0",
        cluster="pool",
        endpoint="http://e",
        lb_reason="round_robin",
        model="m",
        method="POST",
        path="/v1/chat/completions",
        status=200,
        seconds=0.0012345,
        ttft=None,
        attempts=1,
        stream=False,
        error_kind=None,
        client_disconnected=False,
        tokens=(7, 3, 2, 1),
    )
    return base._replace(**over)


def _file_log(tmp_path: Path, json_lines: bool) -> tuple[AccessLog, Path]:
    path = tmp_path / "access.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    log = AccessLog()
    log.configure(json_lines, fd)
    return log, path


def test_json_lines_carry_the_fields_and_wait_for_the_flush(tmp_path: Path) -> None:
    log, r = _file_log(tmp_path, True)

    async def scenario() -> tuple[bytes, bytes]:
        log.write(tuple(_entry()))
        log.write(tuple(_entry(request_id='a"b\n', status=503, attempts=3, ttft=0.25, tokens=None)))
        early = r.read_bytes()
        await asyncio.sleep(FLUSH_AFTER * 3)
        return early, r.read_bytes()

    early, later = asyncio.run(scenario())
    assert early == b""  # queued, not one write per line
    first, second = (json.loads(line) for line in later.splitlines())
    assert first["logger"] == "smg.access" and first["level"] == "info"
    assert first["ts"].endswith("Z") and first["ts"][:4].isdigit()
    assert first["status"] == 200 and first["latency_ms"] == 1.234 and first["ttft_ms"] is None
    tokens = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")
    assert tuple(first[k] for k in tokens) == (7, 3, 2, 1)
    assert first["retries"] == 0 and first["error_kind"] is None and first["path"].startswith("/v1")
    assert second["request_id"] == 'a"b\n'  # client-given values are escaped, never break a line
    assert second["retries"] == 2 and second["ttft_ms"] == 250.0
    assert "prompt_tokens" not in second  # no usage reported, no token fields


def test_without_a_loop_lines_are_written_at_once_and_text_mode_matches_logging(
    tmp_path: Path,
) -> None:
    log, r = _file_log(tmp_path, False)
    log.write(tuple(_entry(method="GET", path="/", model="x", endpoint="y")))
    line = r.read_text()
    assert line.endswith(" INFO smg.access: GET / x -> y 200 1.2ms\n")


def test_a_full_queue_is_written_without_waiting(tmp_path: Path) -> None:
    log, r = _file_log(tmp_path, True)

    async def scenario() -> bytes:
        for i in range(FLUSH_LINES * 2 + 5):
            log.write(tuple(_entry(request_id=f"r{i}")))
        return r.read_bytes()

    written = asyncio.run(scenario())
    lines = written.splitlines()
    assert len(lines) == FLUSH_LINES * 2 and written.endswith(b"\n")  # whole lines only
    assert [json.loads(x)["request_id"] for x in lines[:2]] == ["r0", "r1"]  # in order
