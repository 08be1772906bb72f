"""Session-cached real tokenizers (ours and transformers') for the tokenization tests."""

from __future__ import annotations

from typing import Any

import pytest

from smg.tokenization import Tokenizer
from tests.support.tokenizer_assets import asset_dir

_OURS: dict[str, Tokenizer] = {}
_HF: dict[str, Any] = {}


def ours(name: str) -> Tokenizer:
    """Our tokenizer for an asset dir, loaded once per session."""
    if name not in _OURS:
        _OURS[name] = Tokenizer.from_pretrained(asset_dir(name))
    return _OURS[name]


def hf(name: str) -> Any:
    """transformers' tokenizer for the same dir, loaded once per session."""
    if name not in _HF:
        transformers = pytest.importorskip("transformers")
        _HF[name] = transformers.AutoTokenizer.from_pretrained(str(asset_dir(name)))
    return _HF[name]
