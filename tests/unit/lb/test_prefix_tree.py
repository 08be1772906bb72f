"""The prefix tree: matching, ownership, size bound, LRU eviction, forgetting endpoints."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from smg.clusters.prefix.tree import PrefixTree, _Node


def best(tree: PrefixTree, key: Any) -> tuple[int, list[str]]:
    return tree.match(key).best(lambda url: url)


def check_invariants(tree: PrefixTree) -> None:
    """Sizes add up, owners are closed under prefixes, every node precedes its parent."""
    order = {node: i for i, node in enumerate(tree._lru)}
    size = 0
    owned: dict[str, int] = {}
    stack: list[_Node] = list(tree._root.children.values())
    while stack:
        node = stack.pop()
        assert node in order
        assert node.key, "no empty edges"
        parent = node.parent
        assert parent is not None and parent.children[node.key[0]] is node
        if parent is not tree._root:
            assert order[node] < order[parent], "a node must precede its parent in the LRU"
            assert set(node.owners) <= set(parent.owners), "ownership is prefix-closed"
        size += len(node.key)
        for url in node.owners:
            owned[url] = owned.get(url, 0) + len(node.key)
        stack.extend(node.children.values())
    assert size == tree.size <= tree.max_size
    assert len(order) == len(tree)
    assert owned == tree.owned_sizes()


def test_longest_match_and_who_holds_it() -> None:
    tree = PrefixTree(10_000)
    head = "<|system|>\nbe brief\n<|user|>\nh"
    a, b = head + "i\n", head + "ello\n"
    tree.insert(a, "a")
    tree.insert(b, "b")
    assert best(tree, a + "<|assistant|>\nyo\n") == (len(a), ["a"])
    # Both hold the shared head; the deepest node with any holder decides.
    length, urls = best(tree, head)
    assert length == len(head) and sorted(urls) == ["a", "b"]
    assert best(tree, "something else") == (0, [])
    path = tree.match(b + " and more")
    assert path.matched("b") == len(b) and path.matched("a") == len(head)
    assert path.length == len(b + " and more")
    check_invariants(tree)


def test_best_skips_endpoints_not_accepted() -> None:
    tree = PrefixTree(10_000)
    tree.insert("shared prefix, then a long tail for a", "a")
    tree.insert("shared prefix, then b", "b")
    path = tree.match("shared prefix, then a long tail for a and more")
    assert path.best(lambda url: url if url != "a" else None) == (
        len("shared prefix, then "),
        ["b"],
    )


def test_split_edges_keep_owners_and_sizes() -> None:
    tree = PrefixTree(10_000)
    tree.insert("abcdef", "a")
    tree.insert("abcxyz", "b")
    tree.insert("abc", "c")
    assert tree.size == len("abc") + len("def") + len("xyz")
    assert tree.owned("a") == 6 and tree.owned("b") == 6 and tree.owned("c") == 3
    assert sorted(best(tree, "abc")[1]) == ["a", "b", "c"]
    check_invariants(tree)


def test_reinserting_the_same_prompt_adds_nothing() -> None:
    tree = PrefixTree(10_000)
    for _ in range(3):
        tree.insert("the same prompt", "a")
    assert tree.size == len("the same prompt") and len(tree) == 1 and tree.owned("a") == 15


def test_size_bound_evicts_least_recently_used_first() -> None:
    tree = PrefixTree(100)
    for i in range(5):
        tree.insert(f"conversation {i}: " + "x" * 10, "a")
    assert tree.size <= 100
    # Use conversation 0 again; the next insert must evict 1 (the oldest), not 0.
    tree.insert("conversation 0: " + "x" * 10, "a")
    tree.insert("conversation 9: " + "y" * 30, "b")
    assert tree.size <= 100
    assert best(tree, "conversation 0: " + "x" * 10)[0] == 26
    assert best(tree, "conversation 1: " + "x" * 10)[0] < 26
    check_invariants(tree)


def test_a_prompt_longer_than_the_bound_is_cut_to_fit() -> None:
    tree = PrefixTree(50)
    tree.insert("z" * 500, "a")
    assert tree.size == 50 and best(tree, "z" * 500) == (50, ["a"])


def test_background_eviction_in_slices() -> None:
    tree = PrefixTree(10_000)
    for i in range(100):
        tree.insert(f"{i:03d}" + "q" * 50, "a")
    assert tree.evict(1000, limit=10) == 10
    assert tree.evict(1000) > 0 and tree.size <= 1000
    check_invariants(tree)


def test_forgetting_an_endpoint_hides_its_entries() -> None:
    tree = PrefixTree(10_000)
    tree.insert("one long prompt", "gone")
    tree.insert("one long prompt", "kept")
    tree.forget("gone")
    assert best(tree, "one long prompt") == (15, ["kept"])
    assert tree.owned("gone") == 0 and tree.match("one long prompt").matched("gone") == 0
    # The URL may come back later; it starts from scratch.
    tree.insert("one long", "gone")
    assert tree.owned("gone") == 8
    assert tree.match("one long prompt").matched("gone") == 8
    tree.evict(0)
    assert tree.size == 0 and tree.owned_sizes() == {}


def test_token_id_keys() -> None:
    tree = PrefixTree(1000)
    tree.insert((1, 2, 3, 4, 5), "a")
    tree.insert((1, 2, 3, 9), "b")
    assert best(tree, (1, 2, 3, 4, 5, 6)) == (5, ["a"])
    assert sorted(best(tree, (1, 2, 3))[1]) == ["a", "b"]
    assert best(tree, (1, 2, 3, 9, 9))[0] == 4
    check_invariants(tree)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.tuples(st.text(alphabet="abc", min_size=1, max_size=12), st.sampled_from("xyz")),
        min_size=1,
        max_size=60,
    ),
    st.integers(min_value=5, max_value=80),
)
def test_invariants_hold_under_any_inserts(ops: list[tuple[str, str]], bound: int) -> None:
    tree = PrefixTree(bound)
    for key, url in ops:
        tree.insert(key, url)
        check_invariants(tree)
        # What was just inserted is always found in full (it is the most recent).
        assert tree.match(key[:bound]).matched(url) == len(key[:bound])
