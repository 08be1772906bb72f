"""The life of an inference request: queue, prefill, decode, reply; and injected faults."""

from __future__ import annotations

from smg.sim.engine import Engine, Job
from smg.sim.http import HttpConnection
from smg.sim.params import BadRequest, error_body
from smg.sim.runner import PASS, Process
from smg.sim.tokens import count_tokens, prompt_digest, sample

# Non-streamed decoding sleeps this many tokens at a time: cheaper than one timer
# per token, yet it still follows the batch size as it changes.
_DECODE_SLICE = 16
# uvloop timers have millisecond resolution: a shorter wait would only cost a loop
# iteration, so tokens due sooner than this are sent at once (the rate stays right
# because waits are measured against deadlines).
_MIN_SLEEP = 0.001
# Longest run of tokens written without giving the event loop back.
_MAX_BURST = 64


def check_context(engine: Engine, job: Job, param: str) -> None:
    """Reject prompts that cannot fit the model's context, as vLLM does."""
    limit = engine.cfg.max_model_len
    prompt_tokens = max(map(count_tokens, job.prompts))
    out = job.max_tokens if job.max_tokens is not None else 0
    if prompt_tokens + out > limit:
        raise BadRequest(
            f"This model's maximum context length is {limit} tokens. However, you requested "
            f"{prompt_tokens + out} tokens ({prompt_tokens} in the messages, {out} in the "
            "completion). Please reduce the length of the messages or completion.",
            param=param,
            code="context_length_exceeded",
        )


def launch(engine: Engine, conn: HttpConnection, job: Job, path: str) -> Process | None:
    """Apply injected faults, then run the job."""
    fault = engine.draw_fault() if engine.faulty else None
    if fault == "fail":
        if job.pd is not None:
            job.pd.discard()
        status = engine.cfg.fail_status
        conn.send(status, error_body(status, "simulated failure", code=status))
        return None
    if fault == "hang":
        return _hang(engine, job)
    return _run(engine, job, conn, path)


def _hang(engine: Engine, job: Job) -> Process:
    # Never answers; the runner closes this when the client gives up.
    engine.hanging += 1
    try:
        yield engine.loop.create_future()
    finally:
        engine.hanging -= 1
        engine.aborted += 1
        if job.pd is not None:
            job.pd.close()


def _run(engine: Engine, job: Job, conn: HttpConnection, path: str) -> Process:
    leg = job.pd
    try:
        wake = engine.admit(job)
        if wake is not None:
            yield wake
        if leg is not None and leg.pulls:
            # A decode leg: the prompt's KV comes from the prefill engine, not from here.
            pulled = leg.start_pull()
            yield pulled
            fault = pulled.result()
            if fault is not None:
                conn.send(fault.status, error_body(fault.status, fault.message, code=fault.status))
                job.outcome = "failed"
                return
        else:
            prefill = engine.prefill(job)
            if prefill > 0:
                yield prefill
            engine.commit_prefill(job)
            if leg is not None:
                leg.kv_ready()
        if job.generates:
            _sample(engine, job)
        if job.stream:
            yield from _stream(engine, job, conn)
        else:
            yield from _whole(engine, job, conn)
    finally:
        if leg is not None:
            leg.close()
        engine.finish(job, path)


def _sample(engine: Engine, job: Job) -> None:
    if job.max_tokens is not None:
        job.output_len = job.max_tokens
        job.finish_reason = "length"
    else:
        job.output_len = engine.cfg.output_tokens
        job.finish_reason = "stop"
    seed = engine.cfg.seed
    n = job.output_len
    if job.n == 1 and len(job.prompts) == 1:
        job.outputs = [sample(seed, prompt_digest(job.prompts[0]), 0, n)]
    else:
        job.outputs = [
            sample(seed, prompt_digest(p), i, n) for p in job.prompts for i in range(job.n)
        ]


def _whole(engine: Engine, job: Job, conn: HttpConnection) -> Process:
    loop = engine.loop
    remaining = job.output_len - 1
    deadline = loop.time()
    while remaining > 0:
        itl = engine.itl()
        if itl <= 0:
            break
        k = min(remaining, _DECODE_SLICE)
        remaining -= k
        deadline += itl * k
        delay = deadline - loop.time()
        if delay >= _MIN_SLEEP:
            yield delay
    job.produced = job.output_len
    conn.send(200, job.renderer.body(job), headers=job.headers)
    job.outcome = "completed"


def _stream(engine: Engine, job: Job, conn: HttpConnection) -> Process:
    loop = engine.loop
    renderer = job.renderer
    drop = engine.cfg.drop_after_chunks
    conn.start_stream(headers=job.headers)
    if drop == 0:
        conn.abort()
        job.outcome = "dropped"
        return
    head = renderer.stream_head(job)
    if engine.zero_itl and drop is None:
        # Every token is ready at the same instant: one write instead of one per token.
        body = head + renderer.stream_steps(job, 0, job.output_len) + renderer.stream_tail(job)
        job.produced = job.output_len
        conn.end_stream(body)
        job.outcome = "completed"
        return
    chunks = 0
    if head:
        conn.write(head)
        chunks += 1
        if drop is not None and chunks >= drop:
            conn.abort()
            job.outcome = "dropped"
            return
    deadline = loop.time()
    burst = 0
    for pos in range(job.output_len):
        if pos:
            itl = engine.itl()
            if itl > 0:
                # Deadlines rather than plain sleeps keep the token rate right even
                # when timers fire late.
                deadline += itl
                delay = deadline - loop.time()
                if delay >= _MIN_SLEEP:
                    burst = 0
                    yield delay
                elif burst >= _MAX_BURST:
                    burst = 0
                    yield PASS
            if conn.closed:
                return
        conn.write(renderer.stream_step(job, pos))
        job.produced = pos + 1
        burst += 1
        chunks += 1
        if drop is not None and chunks >= drop:
            conn.abort()
            job.outcome = "dropped"
            return
        if conn.write_paused:
            burst = 0
            yield conn.drain()
    if conn.closed:
        return
    conn.end_stream(renderer.stream_tail(job))
    job.outcome = "completed"
