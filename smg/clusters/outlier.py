"""Passive outlier detection: a circuit breaker per endpoint, fed by the outcome of requests.

States: CLOSED (in rotation) → OPEN (ejected for an ejection time) → HALF_OPEN (a few
probe requests at a time) → CLOSED after ``success_threshold`` successful probes, or
OPEN again, for longer, after one failed probe.

The breaker of an endpoint lives on its ``EndpointState`` (so it survives reloads) and
points at the detector of the cluster that owns the endpoint now, whose config it obeys:
a reload keeps counters and state and applies the new thresholds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from smg.clusters.endpoint import (
    CIRCUIT_CLOSED,
    CIRCUIT_HALF_OPEN,
    CIRCUIT_OPEN,
    EndpointState,
)
from smg.config.model import OutlierDetectionConfig
from smg.errors import GatewayError
from smg.observability import metrics

log = logging.getLogger("smg.outlier")

Clock = Callable[[], float]

CIRCUIT_NAMES: Final = {
    CIRCUIT_CLOSED: "closed",
    CIRCUIT_HALF_OPEN: "half_open",
    CIRCUIT_OPEN: "open",
}

# What one attempt tells the breaker.
SUCCESS: Final = 0
FAILURE_5XX: Final = 1
FAILURE_LOCAL: Final = 2
IGNORED: Final = 3

WINDOW_BUCKETS: Final = 10


def classify(err: GatewayError | None) -> int:
    """The outcome an attempt's error means to the breaker.

    Local-origin errors (refused, reset, timed out) and upstream 5xx are failures;
    429 says "busy", not "broken", so it counts as neither; any other upstream answer
    (4xx: the client's fault) proves the endpoint works. Errors not blamed on the
    upstream (gateway bugs, client errors raised locally) say nothing about it.
    """
    if err is None:
        return SUCCESS
    if err.local_origin:
        return FAILURE_LOCAL
    if err.blame != "upstream" or err.status == 429:
        return IGNORED
    return FAILURE_5XX if err.status >= 500 else SUCCESS


class FailureWindow:
    """Requests and failures of the last ``window`` seconds, in a ring of time buckets.

    The window moves one bucket (a tenth of it) at a time: an outcome ages out between
    0.9 and 1 window after it happened. Totals are kept up to date as buckets expire,
    so adding and reading are O(1) amortized.
    """

    __slots__ = ("_fail", "_newest", "_req", "_width", "failures", "requests", "window")

    def __init__(self, window: float, buckets: int = WINDOW_BUCKETS) -> None:
        self.window = window
        # a zero window would divide by zero; a tiny bucket keeps nothing for long instead
        self._width = max(window / buckets, 1e-6)
        self._req = [0] * buckets
        self._fail = [0] * buckets
        self._newest = -len(self._req)  # bucket number of the newest bucket
        self.requests = 0
        self.failures = 0

    def _advance(self, now: float) -> None:
        n = int(now // self._width)
        gap = n - self._newest
        if gap <= 0:
            return
        size = len(self._req)
        for i in range(1, min(gap, size) + 1):
            idx = (self._newest + i) % size
            self.requests -= self._req[idx]
            self.failures -= self._fail[idx]
            self._req[idx] = 0
            self._fail[idx] = 0
        self._newest = n

    def add(self, now: float, failed: bool) -> None:
        """Count one outcome at time ``now``."""
        self._advance(now)
        idx = self._newest % len(self._req)
        self._req[idx] += 1
        self.requests += 1
        if failed:
            self._fail[idx] += 1
            self.failures += 1

    def counts(self, now: float) -> tuple[int, int]:
        """(requests, failures) within the window ending at ``now``."""
        self._advance(now)
        return self.requests, self.failures

    def clear(self) -> None:
        """Forget every outcome."""
        size = len(self._req)
        self._req = [0] * size
        self._fail = [0] * size
        self.requests = 0
        self.failures = 0


class Breaker:
    """The circuit of one endpoint: counters, window, ejection bookkeeping, probe slots."""

    __slots__ = (
        "closed_at",
        "consecutive_5xx",
        "consecutive_local",
        "detector",
        "ejected_until",
        "ejections",
        "ep",
        "level",
        "probes",
        "successes",
        "window",
    )

    def __init__(self, ep: EndpointState, detector: OutlierDetector) -> None:
        self.ep = ep
        self.detector = detector
        self.consecutive_5xx = 0
        self.consecutive_local = 0
        self.window = FailureWindow(detector.config.window)
        self.ejections = 0  # total, for the admin API
        self.level = 0  # ejections in a row: the ejection time multiplier
        self.ejected_until = 0.0
        self.closed_at = detector.clock()
        self.successes = 0  # successful probes in the current half-open period
        self.probes = 0  # probe requests in flight

    @property
    def state(self) -> int:
        """CIRCUIT_CLOSED, CIRCUIT_HALF_OPEN or CIRCUIT_OPEN."""
        return self.ep.circuit

    # ---- the request path ------------------------------------------------------------

    def admits(self) -> bool:
        """Whether a request may go to the endpoint (called only while not closed)."""
        if self.ep.circuit == CIRCUIT_OPEN and not self.poll():
            return False
        return self.probes < self.detector.config.half_open_max_requests

    def poll(self) -> bool:
        """Move an expired ejection to half-open; False while the endpoint is still ejected."""
        if self.ep.circuit != CIRCUIT_OPEN:
            return True
        now = self.detector.clock()
        if now < self.ejected_until:
            return False
        self.successes = 0
        self._set(CIRCUIT_HALF_OPEN)
        return True

    def take_probe(self) -> bool:
        """Take a probe slot if the endpoint is half-open and one is free."""
        if self.admits() and self.ep.circuit == CIRCUIT_HALF_OPEN:
            self.probes += 1
            return True
        return False

    def release_probe(self) -> None:
        """A probe request finished (its outcome came through ``record``)."""
        if self.probes > 0:
            self.probes -= 1

    def record(self, outcome: int) -> None:
        """Apply one attempt's outcome (``SUCCESS``, ``FAILURE_5XX``, ...)."""
        cfg = self.detector.config
        if not cfg.enabled or outcome == IGNORED:
            return
        state = self.ep.circuit
        if state == CIRCUIT_OPEN:
            # requests sent before the ejection finishing now: nothing new to learn
            return
        now = self.detector.clock()
        if state == CIRCUIT_HALF_OPEN:
            if outcome == SUCCESS:
                self.successes += 1
                if self.successes >= cfg.success_threshold:
                    self._close(now)
            else:
                self._eject(now, "half_open_probe")
            return
        self.window.add(now, outcome != SUCCESS)
        if outcome == SUCCESS:
            self.consecutive_5xx = 0
            self.consecutive_local = 0
            return
        if outcome == FAILURE_5XX:
            self.consecutive_5xx += 1
            self.consecutive_local = 0  # an answer came back: the endpoint is reachable
        else:
            self.consecutive_local += 1
        reason = self._trip_reason(now)
        if reason is not None and self.detector.may_eject(self.ep):
            self._eject(now, reason)

    def _trip_reason(self, now: float) -> str | None:
        cfg = self.detector.config
        if self.consecutive_5xx >= cfg.consecutive_5xx:
            return "consecutive_5xx"
        if self.consecutive_local >= cfg.consecutive_local_origin_failures:
            return "consecutive_local_origin_failures"
        requests, failures = self.window.counts(now)
        if requests >= cfg.failure_rate_min_requests and (
            failures >= cfg.failure_rate_threshold * requests
        ):
            return "failure_rate"
        return None

    # ---- transitions -----------------------------------------------------------------

    def _eject(self, now: float, reason: str) -> None:
        cfg = self.detector.config
        if self.ep.circuit == CIRCUIT_CLOSED and cfg.base_ejection_time > 0:
            # a long healthy stretch earns back the multiplier: one step per base time
            earned = int((now - self.closed_at) // cfg.base_ejection_time)
            self.level = max(0, self.level - earned)
        self.level += 1
        self.ejections += 1
        duration = min(cfg.base_ejection_time * self.level, cfg.max_ejection_time)
        self.ejected_until = now + duration
        self._reset_counts()
        metrics.OUTLIER_EJECTIONS.labels(self.detector.cluster, self.ep.url, reason).inc()
        log.warning(
            "cluster %s: endpoint %s ejected for %.1fs (%s; ejection %d)",
            self.detector.cluster,
            self.ep.url,
            duration,
            reason,
            self.ejections,
            extra={
                "event": "endpoint_ejected",
                "cluster": self.detector.cluster,
                "endpoint": self.ep.url,
                "reason": reason,
                "ejection_s": round(duration, 3),
            },
        )
        self._set(CIRCUIT_OPEN)

    def _close(self, now: float) -> None:
        self.closed_at = now
        self._reset_counts()
        self._set(CIRCUIT_CLOSED)

    def _reset_counts(self) -> None:
        self.consecutive_5xx = 0
        self.consecutive_local = 0
        self.successes = 0
        self.window.clear()

    def _set(self, state: int) -> None:
        old = self.ep.circuit
        if old == state:
            return
        self.ep.circuit = state
        cluster, url = self.detector.cluster, self.ep.url
        metrics.CIRCUIT_TRANSITIONS.labels(
            cluster, url, CIRCUIT_NAMES[old], CIRCUIT_NAMES[state]
        ).inc()
        if state != CIRCUIT_OPEN:  # ejections log their own, more detailed line
            log.info(
                "cluster %s: endpoint %s circuit %s -> %s",
                cluster,
                url,
                CIRCUIT_NAMES[old],
                CIRCUIT_NAMES[state],
                extra={
                    "event": "circuit_changed",
                    "cluster": cluster,
                    "endpoint": url,
                    "to": CIRCUIT_NAMES[state],
                },
            )

    def reset(self) -> None:
        """Close the circuit and forget everything (outlier detection was turned off)."""
        self.level = 0
        self._close(self.detector.clock())

    # ---- admin -----------------------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        """The circuit's state for ``/clusters``."""
        self.poll()
        now = self.detector.clock()
        requests, failures = self.window.counts(now)
        until: str | None = None
        if self.ep.circuit == CIRCUIT_OPEN:
            wall = time.time() + (self.ejected_until - now)
            until = datetime.fromtimestamp(wall, UTC).isoformat(timespec="milliseconds")
        return {
            "circuit": CIRCUIT_NAMES[self.ep.circuit],
            "ejections": self.ejections,
            "consecutive_failures": max(self.consecutive_5xx, self.consecutive_local),
            "consecutive_5xx": self.consecutive_5xx,
            "consecutive_local_origin_failures": self.consecutive_local,
            "window_requests": requests,
            "window_failure_rate": round(failures / requests, 4) if requests else 0.0,
            "ejected_until": until,
            "probes_in_flight": self.probes,
        }


class OutlierDetector:
    """The breakers of one cluster's endpoints under one config, and the ejection cap."""

    def __init__(
        self,
        cluster: str,
        config: OutlierDetectionConfig,
        endpoints: Sequence[EndpointState],
        clock: Clock = time.monotonic,
    ) -> None:
        self.cluster = cluster
        self.config = config
        self.endpoints = endpoints
        self.clock = clock
        for ep in endpoints:
            if ep.breaker is None:
                ep.breaker = Breaker(ep, self)

    def attach(self) -> None:
        """Take over every endpoint's breaker: keep its state, apply this config.

        Called when the cluster goes live, so a reload that fails after building never
        touches the live breakers.
        """
        for ep in self.endpoints:
            breaker = ep.breaker
            if breaker is None:
                ep.breaker = Breaker(ep, self)
                continue
            breaker.detector = self
            if breaker.window.window != self.config.window:
                # buckets of another width cannot be re-sliced; the rate starts over
                breaker.window = FailureWindow(self.config.window)
            if not self.config.enabled and ep.circuit != CIRCUIT_CLOSED:
                breaker.reset()

    def record(self, ep: EndpointState, err: GatewayError | None) -> None:
        """Feed one attempt's outcome to ``ep``'s breaker."""
        breaker = ep.breaker
        if breaker is None:
            breaker = ep.breaker = Breaker(ep, self)
        breaker.record(classify(err))

    def may_eject(self, ep: EndpointState) -> bool:
        """Whether ejecting ``ep`` keeps the ejected share within ``max_ejection_percent``.

        Ejected means open or half-open (a half-open endpoint takes only probes).
        ``floor(n * percent / 100)`` may be ejected at once: below 100 percent at least
        one endpoint always stays in, so a one-endpoint cluster is never ejected.
        """
        allowed = len(self.endpoints) * self.config.max_ejection_percent // 100
        ejected = sum(1 for e in self.endpoints if e.circuit != CIRCUIT_CLOSED and e is not ep)
        if ejected < allowed:
            return True
        log.debug(
            "cluster %s: not ejecting %s: %d of %d endpoints already ejected",
            self.cluster,
            ep.url,
            ejected,
            len(self.endpoints),
        )
        return False
