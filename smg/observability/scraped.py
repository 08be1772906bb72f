"""Metrics read from live objects at scrape time: their spec and their collector.

The request path pays nothing for these: endpoint in-flight counts, health, pools, engine
load and the like already live on objects; a source turns them into rows when Prometheus
scrapes. The specs themselves are declared in ``smg.observability.metrics``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from smg.observability.fast import Merge


@dataclass(frozen=True, slots=True)
class StateMetric:
    """A gauge (or a counter kept by a live object) read at scrape time."""

    name: str
    documentation: str
    labels: tuple[str, ...]
    merge: Merge = "sum"
    kind: Literal["gauge", "counter"] = "gauge"


StateRow = tuple[StateMetric, tuple[str, ...], float]
"""One sample of a state metric: the spec, its label values, the value."""
StateSource = Callable[[], Iterable[StateRow]]


class StateCollector(Collector):
    """Turns rows from a source into one family per spec at scrape time."""

    def __init__(self, source: StateSource, specs: Sequence[StateMetric]) -> None:
        self._source = source
        self._specs = tuple(specs)

    def collect(self) -> Iterator[Metric]:
        """Rows → one family per state metric (empty families included)."""
        families: dict[str, GaugeMetricFamily | CounterMetricFamily] = {
            g.name: (
                GaugeMetricFamily(g.name, g.documentation, labels=list(g.labels))
                if g.kind == "gauge"
                else CounterMetricFamily(g.name, g.documentation, labels=list(g.labels))
            )
            for g in self._specs
        }
        for spec, labels, value in self._source():
            families[spec.name].add_metric(list(labels), value)
        yield from families.values()
