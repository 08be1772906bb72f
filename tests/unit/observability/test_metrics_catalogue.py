"""The metric catalogue: generated docs in sync, names well-formed, fast families exposed right,
worker merging by rule, and the dashboard built only on metrics that exist."""

from __future__ import annotations

import json
import re
from pathlib import Path

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import CollectorRegistry

from smg.observability import fast
from smg.observability.cluster_stats import reason_kind
from smg.observability.docgen import catalogue, render
from smg.observability.usage import usage_in
from smg.observability.workers import merge_families

ROOT = Path(__file__).resolve().parents[3]


def test_docs_metrics_md_is_generated_from_the_module() -> None:
    committed = (ROOT / "docs" / "metrics.md").read_text()
    assert committed == render(), "run: python -m smg.observability.docgen > docs/metrics.md"


def test_at_least_forty_well_formed_smg_families() -> None:
    names = [d.name for d in catalogue()]
    assert len(names) == len(set(names))
    assert len(names) >= 40
    for d in catalogue():
        assert re.fullmatch(r"smg_[a-z0-9_]+", d.name), d.name
        assert d.documentation.strip(), d.name
        if d.type == "counter":
            assert d.name.endswith("_total"), d.name
        assert "le" not in d.labels and "quantile" not in d.labels


def _expose(*families: fast._Family[object]) -> str:
    reg = CollectorRegistry()
    for f in families:
        reg.register(f)
    return generate_latest(reg).decode()


def test_fast_histogram_buckets_are_cumulative_with_le_semantics() -> None:
    h = fast.FastHistogram("t_seconds", "doc", ["a"], buckets=(0.1, 1.0), registry=None)
    child = h.labels("x")
    for v in (0.05, 0.1, 0.5, 1.0, 7.0):  # a value equal to a bound lands in that bucket
        child.observe(v)
    text = _expose(h)
    assert 't_seconds_bucket{a="x",le="0.1"} 2.0' in text
    assert 't_seconds_bucket{a="x",le="1.0"} 4.0' in text
    assert 't_seconds_bucket{a="x",le="+Inf"} 5.0' in text
    assert 't_seconds_count{a="x"} 5.0' in text
    assert 't_seconds_sum{a="x"} 8.65' in text


def test_fast_counter_and_gauge_exposition() -> None:
    c = fast.FastCounter("t_things_total", "doc", ["k"], registry=None)
    g = fast.FastGauge("t_level", "doc", [], registry=None)
    c.labels("a").inc()
    c.labels("a").inc(2)
    g.labels().set(5)
    g.labels().dec(2)
    text = _expose(c, g)
    assert 't_things_total{k="a"} 3.0' in text
    assert "t_level 3.0" in text


def test_workers_merge_sums_counters_and_applies_gauge_rules() -> None:
    def worker(requests: float, healthy: float, in_flight: float) -> str:
        return (
            "# TYPE smg_requests counter\n"
            f'smg_requests_total{{status="200"}} {requests}\n'
            "# TYPE smg_endpoint_healthy gauge\n"
            f'smg_endpoint_healthy{{endpoint="a"}} {healthy}\n'
            "# TYPE smg_endpoint_in_flight gauge\n"
            f'smg_endpoint_in_flight{{endpoint="a"}} {in_flight}\n'
            "# TYPE smg_lb_decision_duration_seconds histogram\n"
            'smg_lb_decision_duration_seconds_bucket{le="0.001"} 3\n'
            'smg_lb_decision_duration_seconds_bucket{le="+Inf"} 4\n'
            "smg_lb_decision_duration_seconds_count 4\n"
            "smg_lb_decision_duration_seconds_sum 0.01\n"
        )

    merged = merge_families(
        [
            text_string_to_metric_families(worker(3, 1, 2)),
            text_string_to_metric_families(worker(4, 0, 5)),
        ]
    )
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value for f in merged for s in f.samples
    }
    assert samples[("smg_requests_total", (("status", "200"),))] == 7
    assert samples[("smg_endpoint_healthy", (("endpoint", "a"),))] == 0  # worst worker
    assert samples[("smg_endpoint_in_flight", (("endpoint", "a"),))] == 7  # summed
    assert samples[("smg_lb_decision_duration_seconds_bucket", (("le", "0.001"),))] == 6
    assert samples[("smg_lb_decision_duration_seconds_count", ())] == 8


def test_usage_figures_read_from_bytes() -> None:
    body = (
        b'{"id":"x","choices":[{"message":{"content":"say \\"prompt_tokens\\": 9"}}],'
        b'"usage":{"prompt_tokens":12,"completion_tokens":5,"total_tokens":17,'
        b'"prompt_tokens_details":{"cached_tokens":8},'
        b'"completion_tokens_details":{"reasoning_tokens":2}}}'
    )
    u = usage_in(body)
    assert u is not None and tuple(u) == (12, 5, 8, 2)
    # Flat objects (vLLM, SGLang) are parsed whole; a figure that is not a number is
    # skipped by the regex reading rather than failing the request's accounting.
    vllm = (
        b'{"usage":{"prompt_tokens":8,"total_tokens":11,"completion_tokens":3,'
        b'"prompt_tokens_details":null}}'
    )
    assert tuple(usage_in(vllm) or ()) == (8, 3, 0, 0)
    odd = b'{"usage":{"prompt_tokens":8,"completion_tokens":null,"reasoning_tokens":3}}'
    assert tuple(usage_in(odd) or ()) == (8, 0, 0, 3)
    assert usage_in(b'data: {"choices":[{"delta":{"content":"hi"}}]}\n\n') is None


def test_reason_kinds_are_label_safe() -> None:
    assert reason_kind("cache_aware; hit=0.82") == "hit"
    assert reason_kind("cache_aware; load_fallback") == "load_fallback"
    assert reason_kind("least_request; in_flight=3") == "pick"
    assert reason_kind("round_robin") == "pick"
    assert reason_kind("consistent_hash; no_key->least_request") == "no_key"
    assert reason_kind("manual; sticky") == "sticky"


def test_grafana_dashboard_uses_only_catalogued_metrics() -> None:
    doc = json.loads((ROOT / "docs" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in doc["panels"] for t in p.get("targets", []) if "expr" in t]
    assert len(exprs) >= 20
    known = {d.name for d in catalogue()}
    suffixes = ("_bucket", "_count", "_sum")
    used: set[str] = set()
    for e in exprs:
        for name in re.findall(r"\b(smg_[a-z0-9_]+)", e):
            base = next((name[: -len(s)] for s in suffixes if name.endswith(s)), name)
            used.add(base)
            assert base in known, f"dashboard uses unknown metric {name} in {e}"
    assert len(used) >= 25


def test_usage_figures_in_every_dialect() -> None:
    anthropic_body = (
        b'{"type":"message","usage":{"input_tokens":5,"cache_creation_input_tokens":3,'
        b'"cache_read_input_tokens":20,"output_tokens":7}}'
    )
    assert tuple(usage_in(anthropic_body, "anthropic") or ()) == (28, 7, 20, 0)
    gemini = (
        b'{"usageMetadata":{"promptTokenCount":30,"candidatesTokenCount":4,'
        b'"cachedContentTokenCount":16,"thoughtsTokenCount":2,"totalTokenCount":36}}'
    )
    assert tuple(usage_in(gemini, "gemini") or ()) == (30, 4, 16, 2)


def test_anthropic_stream_usage_merges_start_and_delta() -> None:
    from smg.observability.access import StreamStats

    stats = StreamStats(fast.HistogramChild((0.1,)), "anthropic")
    stats.chunk(
        b'event: message_start\ndata: {"type":"message_start","message":{"usage":'
        b'{"input_tokens":9,"cache_read_input_tokens":4,"output_tokens":1}}}\n\n'
    )
    stats.chunk(b'event: content_block_delta\ndata: {"delta":{"text":"say \\"x_tokens\\": 3"}}\n\n')
    stats.chunk(
        b'event: message_delta\ndata: {"type":"message_delta","usage":{"output_tokens":12}}\n\n'
    )
    u = stats.usage_figures()
    assert u is not None and tuple(u) == (13, 12, 4, 0)


def test_stream_usage_is_read_from_the_last_chunks_and_gaps_are_timed() -> None:
    from smg.observability.access import StreamStats

    itl = fast.HistogramChild((0.1,))
    stats = StreamStats(itl, "openai")
    # Many content events, then the usage event, a stop event without usage and [DONE].
    stats.chunk(b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n')
    for word in (b"a", b"b", b"c", b"d", b"e"):
        stats.chunk(b'data: {"choices":[{"delta":{"content":"' + word + b'"}}]}\n\n')
    stats.chunk(b'data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":5}}\n\n')
    stats.chunk(b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n')
    stats.chunk(b"data: [DONE]\n\n")
    u = stats.usage_figures()
    assert u is not None and tuple(u) == (7, 5, 0, 0)
    assert stats.chunks == 9 and sum(itl.counts) == 8  # one gap per chunk after the first
    # Without metrics (access line only) nothing feeds a histogram; usage still read.
    quiet = StreamStats(None, "openai")
    quiet.chunk(b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n')
    quiet.chunk(b'data: {"usage":{"prompt_tokens":3,"completion_tokens":1}}\n\ndata: [DONE]\n\n')
    assert tuple(quiet.usage_figures() or ()) == (3, 1, 0, 0)
    # A stream that never reported usage reports none.
    bare = StreamStats(None, "openai")
    bare.chunk(b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n')
    assert bare.usage_figures() is None
