"""Stop strings: streamed output equals non-streamed output for any chunking."""

from __future__ import annotations

import itertools

from hypothesis import given, settings
from hypothesis import strategies as st

from smg.tokenization import StopStringMatcher, StopTokenChecker, find_stop, truncate_at_stop

# A small alphabet makes overlapping and partial stop strings frequent.
_ALPHA = st.text(alphabet="ab<|>é🤖\n", max_size=60)
_STOPS = st.lists(st.text(alphabet="ab<|>é🤖\n", min_size=1, max_size=5), max_size=4)


def _stream(text: str, cuts: list[int], stops: list[str], include: bool) -> tuple[str, str | None]:
    m = StopStringMatcher(stops, include)
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    out = []
    for a, b in itertools.pairwise(points):
        piece = m.push(text[a:b])
        # Nothing emitted may ever contain (part of) text that a full render truncates.
        out.append(piece)
        if m.stopped:
            break
    out.append(m.flush())
    return "".join(out), m.matched


@settings(max_examples=400, deadline=None)
@given(_ALPHA, _STOPS, st.lists(st.integers(0, 1000), max_size=20), st.booleans())
def test_streamed_equals_non_streamed(
    text: str, stops: list[str], cuts: list[int], include: bool
) -> None:
    assert _stream(text, cuts, stops, include) == truncate_at_stop(text, stops, include)


@settings(max_examples=200, deadline=None)
@given(_ALPHA, _STOPS, st.lists(st.integers(0, 1000), max_size=20))
def test_emitted_prefix_never_contains_partial_stop(
    text: str, stops: list[str], cuts: list[int]
) -> None:
    final, _ = truncate_at_stop(text, stops)
    m = StopStringMatcher(stops)
    emitted = ""
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    for a, b in itertools.pairwise(points):
        emitted += m.push(text[a:b])
        # Every intermediate emission is a prefix of the final answer (nothing is retracted).
        assert final.startswith(emitted)
        if m.stopped:
            break


def test_holds_back_only_possible_stop_prefix() -> None:
    m = StopStringMatcher(["</stop>", "END"])
    assert m.push("hello </st") == "hello "
    assert m.pending == "</st"
    assert m.push("uff E") == "</stuff "
    assert m.pending == "E"
    assert m.push("NDING") == ""
    assert m.matched == "END"
    assert m.push("more") == ""


def test_earliest_completing_stop_wins() -> None:
    # "bc" completes before "abcd" could, exactly as an engine stopping at the first match.
    assert truncate_at_stop("xabcd", ["abcd", "bc"]) == ("xa", "bc")
    assert find_stop("xabc", ["bc", "abc"]) == find_stop("xabc", ["abc", "bc"])
    assert truncate_at_stop("xabc", ["bc", "abc"]) == ("x", "abc")


def test_include_stop_str_in_output() -> None:
    m = StopStringMatcher(["STOP"], include_stop_str_in_output=True)
    assert m.push("done ST") == "done "
    assert m.push("OP tail") == "STOP"


def test_no_stops_passthrough_and_empty_stops_ignored() -> None:
    m = StopStringMatcher(["", ""])
    assert m.push("abc") == "abc"
    assert m.flush() == ""


def test_stop_token_checker() -> None:
    c = StopTokenChecker([7], [2, 3])
    assert c.is_stop(7) and c.is_stop(2) and not c.is_stop(5)
    c2 = StopTokenChecker([7], [2, 3], ignore_eos=True)
    assert c2.is_stop(7) and not c2.is_stop(2)
