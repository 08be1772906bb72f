"""Shared fixtures: two simulated engines and a gateway in front of them."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest

from tests.support.procs import Gateway, free_port, gateway, gateway_config, sim


@pytest.fixture
def sims(tmp_path: Path) -> Iterator[list[str]]:
    """Two running simulated engines (base URLs)."""
    with ExitStack() as stack:
        yield [stack.enter_context(sim(tmp_path, "--itl-ms", "2")) for _ in range(2)]


@pytest.fixture
def gw(tmp_path: Path, sims: list[str]) -> Iterator[Gateway]:
    """A gateway (round robin) in front of ``sims``."""
    doc = gateway_config(sims, free_port(), free_port())
    with gateway(tmp_path, doc) as g:
        yield g
