"""The committed configuration reference is the generator's output."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from smg.config.docgen import render

ROOT = Path(__file__).resolve().parents[3]


def test_committed_reference_matches_the_schema() -> None:
    committed = (ROOT / "docs" / "config-reference.md").read_text(encoding="utf-8")
    assert committed == render(), "run: python -m smg.config.docgen > docs/config-reference.md"


def test_reference_lists_every_field_with_its_default() -> None:
    text = render()
    assert '| `clusters[].lb_policy.type` | string | `"round_robin"` |' in text
    assert "| `listeners[].max_payload_size` | size | `268435456` |" in text
    assert "`cache_aware`" in text


def test_module_entry_point_prints_the_reference() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "smg.config.docgen"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout == render()
