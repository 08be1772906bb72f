"""The scrape-time rows of the state metrics, read from the snapshot in force."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from smg.filters.admission import AdmissionFilter
from smg.observability import metrics as m
from smg.observability.scraped import StateRow
from smg.openai_grpc.resources import loaded_tokenizers
from smg.runtime.snapshot import Snapshot


def state_rows(current: Callable[[], Snapshot]) -> Iterator[StateRow]:
    """Every state metric sample of this process, for the snapshot ``current()`` returns."""
    yield m.WORKER_PROCESSES, (), 1.0
    snap = current()
    for path, tok in loaded_tokenizers().items():
        info = tok.cache_info()
        yield m.TOKENIZER_CACHE, (path, "hit"), float(info.hits)
        yield m.TOKENIZER_CACHE, (path, "miss"), float(info.misses)
    for f in snap.filters.values():
        if isinstance(f, AdmissionFilter):
            yield m.ADMISSION_QUEUE_DEPTH, (f.name,), float(f.queued)
            yield m.ADMISSION_ACTIVE, (f.name,), float(f.in_use)
    for c in snap.clusters.values():
        name = c.name
        available = 0
        pools = c.upstream.pool_stats()
        for st in c.endpoints:
            key = (name, st.url)
            if st.available:
                available += 1
            yield m.ENDPOINT_IN_FLIGHT, key, float(st.in_flight)
            yield m.ENDPOINT_HEALTHY, key, 1.0 if st.available else 0.0
            yield m.ENDPOINT_WEIGHT, key, float(st.weight)
            yield m.CIRCUIT_STATE, key, float(st.circuit)
            pool = pools.get(st.url)
            if pool is not None:
                yield m.UPSTREAM_CONNECTIONS, (*key, "idle"), float(pool.get("idle", 0))
                yield m.UPSTREAM_CONNECTIONS, (*key, "in_use"), float(pool.get("in_use", 0))
            load = st.engine
            if load is not None:
                yield m.ENGINE_RUNNING, key, load.running
                yield m.ENGINE_WAITING, key, load.waiting
                if load.kv_usage is not None:
                    yield m.ENGINE_KV_USAGE, key, load.kv_usage
                rate = load.cache_hit_rate
                if rate is not None:
                    yield m.ENGINE_CACHE_HIT_RATE, key, rate
        yield m.CLUSTER_ENDPOINTS, (name, "total"), float(len(c.endpoints))
        yield m.CLUSTER_ENDPOINTS, (name, "available"), float(available)
        tree = getattr(c.lb, "tree", None)
        if tree is not None:
            yield m.PREFIX_TREE_SIZE, (name,), float(tree.size)
            yield m.PREFIX_TREE_EVICTIONS, (name,), float(tree.evicted)
