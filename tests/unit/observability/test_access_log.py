"""The buffered access log: whole JSON (or text) lines, flushed on time, size and demand."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

from smg.observability.access_log import FLUSH_AFTER, AccessLog


def _doc(msg: str, **fields: object) -> dict[str, object]:
    return {"ts": "", "level": "info", "logger": "smg.access", "msg": msg, **fields}


def _file_log(tmp_path: Path, json_lines: bool) -> tuple[AccessLog, Path]:
    path = tmp_path / "access.log"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    log = AccessLog()
    log.configure(json_lines, fd)
    return log, path


def test_json_lines_carry_the_fields_and_wait_for_the_flush(tmp_path: Path) -> None:
    log, r = _file_log(tmp_path, True)

    async def scenario() -> tuple[bytes, bytes]:
        log.write(_doc("POST /v1/chat/completions m -> http://e 200 1.0ms", status=200, x=None))
        log.write(_doc("second", status=503))
        early = r.read_bytes()
        await asyncio.sleep(FLUSH_AFTER * 3)
        return early, r.read_bytes()

    early, later = asyncio.run(scenario())
    assert early == b""  # buffered, not one write per line
    first, second = (json.loads(line) for line in later.splitlines())
    assert first["logger"] == "smg.access" and first["level"] == "info"
    assert first["status"] == 200 and first["x"] is None and first["ts"].endswith("Z")
    assert second["msg"] == "second"


def test_without_a_loop_lines_are_written_at_once_and_text_mode_matches_logging(
    tmp_path: Path,
) -> None:
    log, r = _file_log(tmp_path, False)
    log.write(_doc("GET / x -> y 200 1.0ms", status=200))
    line = r.read_text()
    assert line.endswith(" INFO smg.access: GET / x -> y 200 1.0ms\n")


def test_a_full_buffer_is_written_without_waiting(tmp_path: Path) -> None:
    log, r = _file_log(tmp_path, True)

    async def scenario() -> bytes:
        for i in range(2000):
            log.write(_doc("m" * 40, i=i))
        return r.read_bytes()

    written = asyncio.run(scenario())
    assert written.count(b"\n") >= 500 and written.endswith(b"\n")  # whole lines only
