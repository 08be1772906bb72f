"""Helpers for configuration tests: write YAML to a file and load it."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path

import pytest
from config_helpers import Failer, Loader

from smg.config.errors import ConfigError
from smg.config.loader import load_config
from smg.config.model import Config


@pytest.fixture
def load(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Loader:
    """Load YAML text written to f.yaml (relative, so issues read ``f.yaml:N: ...``)."""
    monkeypatch.chdir(tmp_path)

    def _load(text: str, env: Mapping[str, str] | None = None, **kwargs: object) -> Config:
        Path("f.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
        return load_config("f.yaml", env={} if env is None else env, **kwargs)  # type: ignore[arg-type]

    return _load


@pytest.fixture
def fail(load: Loader) -> Failer:
    """Load YAML text that must be rejected; return its issues as strings."""

    def _fail(text: str, env: Mapping[str, str] | None = None, **kwargs: object) -> list[str]:
        with pytest.raises(ConfigError) as info:
            load(text, env, **kwargs)
        return [str(issue) for issue in info.value.issues]

    return _fail
