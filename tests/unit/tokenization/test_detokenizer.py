"""Incremental detokenization: deltas concatenate to transformers' decode for any split."""

from __future__ import annotations

import random

import pytest
from tok_helpers import hf, ours
from tok_samples import SAMPLES

from smg.tokenization import IncrementalDetokenizer, OutputStream, truncate_at_stop
from smg.tokenization.detokenizer import REPLACEMENT_CHAR

NAMES = ("qwen3", "llama3")
_TEXTS = [*SAMPLES, "".join(SAMPLES), "<think>\nhmm 思考中…\n</think>\n\n答案是 42 🎉<|im_end|>"]


def _splits(n: int, rng: random.Random) -> list[int]:
    sizes = []
    while n > 0:
        k = min(n, rng.choice([1, 1, 1, 2, 3, 5]))
        sizes.append(k)
        n -= k
    return sizes


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("skip", [True, False])
def test_deltas_concatenate_to_full_decode(name: str, skip: bool) -> None:
    tok, ref = ours(name), hf(name)
    rng = random.Random(1234)
    for text in _TEXTS:
        ids = tok.encode(text, add_special_tokens=True)
        expected = ref.decode(ids, skip_special_tokens=skip)
        for _ in range(5):
            detok = IncrementalDetokenizer(tok, skip_special_tokens=skip)
            out, pos = [], 0
            for size in _splits(len(ids), rng):
                delta = detok.push(ids[pos : pos + size])
                pos += size
                # Incomplete UTF-8 sequences are held back, never emitted as U+FFFD.
                assert REPLACEMENT_CHAR not in delta
                out.append(delta)
            out.append(detok.flush())
            assert "".join(out) == expected


@pytest.mark.parametrize("name", NAMES)
def test_byte_tokens_inside_multibyte_characters(name: str) -> None:
    tok, ref = ours(name), hf(name)
    # Force a character to be spelled as single-byte tokens: byte-level BPE then has to
    # hold back 1-3 partial bytes before the character becomes decodable.
    byte_ids = [tok.token_to_id(_byte_token(b)) or 0 for b in "日🤖é".encode()]
    detok = IncrementalDetokenizer(tok)
    deltas = [detok.push(i) for i in byte_ids] + [detok.flush()]
    assert "".join(deltas) == ref.decode(byte_ids) == "日🤖é"
    assert [d for d in deltas if d] == ["日", "🤖", "é"]


def _byte_token(b: int) -> str:
    # GPT-2 byte-to-unicode map used by byte-level BPE vocabularies.
    printable = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    if b in printable:
        return chr(b)
    return chr(256 + [x for x in range(256) if x not in printable].index(b))


def test_invalid_utf8_tail_flushed_like_decode() -> None:
    tok, ref = ours("qwen3"), hf("qwen3")
    ids = [tok.token_to_id(_byte_token(0xE6)) or 0]  # a lone lead byte never completes
    detok = IncrementalDetokenizer(tok)
    assert detok.push(ids) == ""
    assert detok.flush() == ref.decode(ids) == REPLACEMENT_CHAR


@pytest.mark.parametrize("stops", [["42"], ["思考", "</"], ["🎉"], ["nothing-matches"]])
def test_output_stream_matches_non_streamed(stops: list[str]) -> None:
    tok = ours("qwen3")
    text = "<think>\nhmm 思考中…\n</think>\n\n答案是 42 🎉 done"
    ids = tok.encode(text)
    expected, matched = truncate_at_stop(tok.decode(ids), stops)
    rng = random.Random(7)
    for _ in range(10):
        stream = OutputStream(tok, stop=stops, eos_token_ids=tok.eos_token_ids)
        out, pos = [], 0
        for size in _splits(len(ids), rng):
            step = stream.push(ids[pos : pos + size])
            pos += size
            out.append(step.text)
            if step.finished:
                assert step.stop_reason == matched
                break
        else:
            out.append(stream.finish())
        assert "".join(out) == expected


def test_output_stream_stops_on_eos_token() -> None:
    tok = ours("qwen3")
    ids = [*tok.encode("Hi there"), 151645, *tok.encode(" ignored")]
    stream = OutputStream(tok, stop=["zzz"], eos_token_ids=tok.eos_token_ids)
    step = stream.push(ids)
    assert (step.text, step.finished, step.stop_reason) == ("Hi there", True, 151645)
    assert stream.push([1, 2]).text == ""
