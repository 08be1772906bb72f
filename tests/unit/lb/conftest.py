"""Shared helpers for the LB policy tests."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from smg.clusters.endpoint import Endpoint, EndpointState
from smg.clusters.lb.base import PickContext

MakeEndpoints = Callable[..., list[EndpointState]]


def _make(*weights: int, names: str | None = None) -> list[EndpointState]:
    labels = names or "abcdefghijklmnopqrstuvwxyz"
    if len(weights) > len(labels):
        labels = [f"w{i}" for i in range(len(weights))]  # type: ignore[assignment]
    return [
        EndpointState(Endpoint.parse(f"http://{labels[i]}:8000"), weight=w)
        for i, w in enumerate(weights)
    ]


@pytest.fixture
def make_eps() -> MakeEndpoints:
    """``make_eps(5, 1, 1)`` → endpoints http://a:8000 (weight 5), http://b:8000, ..."""
    return _make


@pytest.fixture
def ctx() -> PickContext:
    """A request context with no headers and no body."""
    return PickContext(headers={}, body=None, model=None)
