"""Durations and sizes: parsing, bad values, and agreement with the schema patterns."""

from __future__ import annotations

import re

import pytest

from smg.config.schema import load_schema
from smg.config.units import DURATION_PATTERN, SIZE_PATTERN, parse_duration, parse_size


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("250ms", 0.25), ("30s", 30.0), ("1.5m", 90.0), ("2h", 7200.0), ("0s", 0.0), (5, 5.0)],
)
def test_durations_parse_to_seconds(text: str | int, seconds: float) -> None:
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "5", "5 s", "-1s", "1.s", "1d", "s", "1.5.5s", "5S"])
def test_bad_durations_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


@pytest.mark.parametrize("value", [-1, -0.5, True])
def test_bad_duration_numbers_are_rejected(value: float) -> None:
    with pytest.raises(ValueError):
        parse_duration(value)


@pytest.mark.parametrize(
    ("text", "size"),
    [
        (1024, 1024),
        ("10B", 10),
        ("512KB", 512_000),
        ("256MB", 256_000_000),
        ("1GB", 10**9),
        ("4KiB", 4096),
        ("4MiB", 4 * 1024**2),
        ("2GiB", 2 * 1024**3),
    ],
)
def test_sizes_parse_to_bytes(text: str | int, size: int) -> None:
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "4mb", "4 MB", "1.5MB", "MB", "-1KB", "4TB"])
def test_bad_sizes_are_rejected(text: str) -> None:
    with pytest.raises(ValueError, match="size"):
        parse_size(text)


SAMPLES = ["1s", "1.5m", "250ms", "2h", "1.s", "5", "5S", "1d", "10B", "4KiB", "4kib", "1.5MB", ""]


@pytest.mark.parametrize("kind", ["duration", "size"])
def test_parser_and_schema_accept_the_same_strings(kind: str) -> None:
    schema_pattern = re.compile(load_schema()["$defs"][kind]["pattern"])
    ours = re.compile(DURATION_PATTERN if kind == "duration" else SIZE_PATTERN)
    for sample in SAMPLES:
        assert bool(schema_pattern.match(sample)) == bool(ours.match(sample)), sample
