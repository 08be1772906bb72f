"""Read a gateway's Prometheus exposition in tests."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from tests.support.procs import http_get


def scrape(admin: str) -> dict[str, list[Sample]]:
    """Family name (as exposed, counters with ``_total``) → its samples."""
    status, body = http_get(admin + "/metrics")
    assert status == 200, body[:500]
    out: dict[str, list[Sample]] = {}
    for fam in text_string_to_metric_families(body.decode()):
        name = fam.name + "_total" if fam.type == "counter" else fam.name
        out[name] = list(fam.samples)
    return out


def value(families: dict[str, list[Sample]], name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` (histograms: the ``_count``) matching ``labels``."""
    samples = families.get(name, [])
    wanted = (
        name
        if name.endswith("_total") or not any(s.name == name + "_count" for s in samples)
        else name + "_count"
    )
    return sum(
        s.value
        for s in samples
        if s.name == wanted and all(s.labels.get(k) == v for k, v in labels.items())
    )
