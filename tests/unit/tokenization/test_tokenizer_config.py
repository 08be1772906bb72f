"""TokenizerConfig: what a model directory's JSON files say, sanitised."""

from __future__ import annotations

import pytest

from smg.tokenization.config import TokenizerConfig


@pytest.mark.parametrize("value", [int(1e30), 1e30, 2**64, True, -1, 0, "2048"])
def test_unlimited_or_bogus_model_max_length_is_none(value: object) -> None:
    # transformers writes int(1e30) back as "no limit"; it must not reach JSON answers.
    assert TokenizerConfig.from_dicts({"model_max_length": value}).model_max_length is None


def test_real_model_max_length_is_kept() -> None:
    assert TokenizerConfig.from_dicts({"model_max_length": 131072}).model_max_length == 131072


def test_generation_eos_ids_as_int_or_list() -> None:
    assert TokenizerConfig.from_dicts({}, {"eos_token_id": 2}).generation_eos_ids == [2]
    cfg = TokenizerConfig.from_dicts({}, {"eos_token_id": [151645, 151643]})
    assert cfg.generation_eos_ids == [151645, 151643]
