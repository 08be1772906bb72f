"""Shared text and types for the configuration tests (a unique name, unlike conftest)."""

from __future__ import annotations

from collections.abc import Callable

from smg.config.model import Config

MINIMAL = """\
listeners:
  - name: public
    address: 127.0.0.1:30000
    routes:
      - cluster: sim
clusters:
  - name: sim
    endpoints: [http://127.0.0.1:31001]
"""

Loader = Callable[..., Config]
Failer = Callable[..., list[str]]
