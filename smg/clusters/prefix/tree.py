"""An approximate radix tree of routed prompts: which endpoints recently served which prefix.

Keys are text (HTTP mode: the conversation as the engine will see it) or token-id tuples
(gRPC mode, once the gateway tokenizes); one tree holds one kind. Each node carries the
endpoints (by URL) that were sent a prompt running through it, so one walk answers
"how much of this prompt does each endpoint probably hold in its KV cache".

Cost model: a walk is one dict lookup plus one C-level prefix comparison per node on the
path (``str.startswith`` on the edge label, a binary search of slice comparisons only at
the node where the key diverges), so it grows with the number of branch points on the
path, not with the length of the prompt in Python steps.

Size is the total length of all edge labels (characters or tokens), bounded by
``max_size``. Eviction is least-recently-used over nodes and O(1) per node: the LRU order
is an ``OrderedDict`` in which every node stays *before* its parent (a touch moves the
path to the end deepest-first, so ancestors land after descendants). The front entry is
therefore always a leaf and can be cut without looking at the rest of the tree.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import TypeVar

Key = str | tuple[int, ...]
"""Routed text, or token ids."""

T = TypeVar("T")


class _Node:
    """One edge of the tree (its label) and the endpoints that went through it."""

    __slots__ = ("children", "key", "owners", "parent")

    def __init__(self, key: Key, parent: _Node | None) -> None:
        self.key = key
        self.parent = parent
        self.children: dict[object, _Node] = {}
        self.owners: dict[str, int] = {}
        """Endpoint URL → insert tick of the last prompt routed there through this node."""


def _common(key: Key, pos: int, label: Key) -> int:
    """Length of the common prefix of ``key[pos:]`` and ``label`` (first elements equal)."""
    n = len(label)
    room = len(key) - pos
    if isinstance(key, str):
        assert isinstance(label, str)
        if key.startswith(label, pos):
            return n
        lo, hi = 1, min(n - 1, room)
        while lo < hi:
            mid = (lo + hi + 1) >> 1
            if key.startswith(label[:mid], pos):
                lo = mid
            else:
                hi = mid - 1
        return lo
    if key[pos : pos + n] == label:
        return n
    lo, hi = 1, min(n - 1, room)
    while lo < hi:
        mid = (lo + hi + 1) >> 1
        if key[pos : pos + mid] == label[:mid]:
            lo = mid
        else:
            hi = mid - 1
    return lo


class PrefixPath:
    """The nodes one key runs through, deepest last, with the matched length at each."""

    __slots__ = ("_forgotten", "ends", "key", "nodes", "version")

    def __init__(
        self, key: Key, nodes: list[_Node], ends: list[int], forgotten: dict[str, int], version: int
    ) -> None:
        self.key = key
        self.nodes = nodes
        self.ends = ends
        self._forgotten = forgotten
        self.version = version

    @property
    def length(self) -> int:
        """Length of the key that was looked up."""
        return len(self.key)

    def best(self, accept: Callable[[str], T | None]) -> tuple[int, list[T]]:
        """The longest match held by an accepted endpoint, and every accepted one holding it.

        ``accept(url)`` returns the endpoint's object, or None to pass over it. The walk
        goes from the deepest node up and stops at the first node with any accepted owner
        (ownership is closed under prefixes, so no shallower node can beat it).
        """
        forgotten = self._forgotten
        nodes = self.nodes
        for i in range(len(nodes) - 1, -1, -1):
            found: list[T] = []
            for url, tick in nodes[i].owners.items():
                if forgotten and tick <= forgotten.get(url, 0):
                    continue
                item = accept(url)
                if item is not None:
                    found.append(item)
            if found:
                return self.ends[i], found
        return 0, []

    def matched(self, url: str) -> int:
        """How much of the key ``url`` holds according to the tree."""
        forgotten = self._forgotten.get(url, 0)
        for i in range(len(self.nodes) - 1, -1, -1):
            tick = self.nodes[i].owners.get(url)
            if tick is not None and tick > forgotten:
                return self.ends[i]
        return 0


class PrefixTree:
    """Radix tree over routed keys, bounded in total size, evicting least recently used."""

    def __init__(self, max_size: int) -> None:
        if max_size < 1:
            raise ValueError(f"max_size must be >= 1 (got {max_size})")
        self.max_size = max_size
        self._root = _Node("", None)
        self._lru: OrderedDict[_Node, None] = OrderedDict()
        self.size = 0
        """Total length of the stored edge labels (characters or tokens)."""
        self.evicted = 0
        """Total length evicted so far (``smg_prefix_tree_evictions_total``)."""
        self._tick = 0
        self._version = 0
        self._owned: dict[str, int] = {}
        self._forgotten: dict[str, int] = {}

    def __len__(self) -> int:
        """Number of nodes (the root excluded)."""
        return len(self._lru)

    def owned(self, url: str) -> int:
        """Total label length ``url`` holds: its share of the tree."""
        return self._owned.get(url, 0)

    def owned_map(self) -> dict[str, int]:
        """The live ``url → share`` mapping (read only; for hot loops)."""
        return self._owned

    def owned_sizes(self) -> dict[str, int]:
        """Every endpoint's share of the tree."""
        return dict(self._owned)

    def match(self, key: Key) -> PrefixPath:
        """Walk ``key`` as deep as the tree goes; nothing is changed."""
        if len(key) > self.max_size:
            key = key[: self.max_size]
        node = self._root
        pos = 0
        n = len(key)
        nodes: list[_Node] = []
        ends: list[int] = []
        text = isinstance(key, str)
        while pos < n:
            child = node.children.get(key[pos])
            if child is None:
                break
            label = child.key
            nodes.append(child)
            # The common case, a whole edge matching, is one C-level comparison.
            if text and key.startswith(label, pos):  # type: ignore[union-attr,arg-type]
                pos += len(label)
                ends.append(pos)
                node = child
                continue
            k = _common(key, pos, label)
            pos += k
            ends.append(pos)
            if k < len(label):
                break
            node = child
        return PrefixPath(key, nodes, ends, self._forgotten, self._version)

    def insert(self, key: Key, url: str) -> None:
        """Record that ``key`` was routed to ``url``; evict the oldest entries beyond the bound."""
        self.insert_at(self.match(key), url)

    def insert_at(self, path: PrefixPath, url: str) -> None:
        """``insert`` of ``path.key``, reusing the walk ``match`` already did."""
        if path.version != self._version:
            path = self.match(path.key)  # the tree changed since: walk again
        key = path.key
        n = len(key)
        if n == 0:
            return
        self._version += 1
        self._tick += 1
        tick = self._tick
        lru = self._lru
        nodes = path.nodes
        pos = 0
        parent = self._root
        if nodes:
            last = nodes[-1]
            pos = path.ends[-1]
            k = pos - (path.ends[-2] if len(nodes) > 1 else 0)
            label = last.key
            if k < len(label):
                # Split the edge: the shared part becomes a new parent of the old node.
                up = last.parent
                assert up is not None
                mid = _Node(label[:k], up)
                mid.owners = last.owners.copy()
                up.children[label[0]] = mid
                rest = label[k:]
                last.key = rest
                last.parent = mid
                mid.children[rest[0]] = last
                lru[mid] = None  # after ``last`` in the order, as a parent must be
                nodes = [*nodes[:-1], mid]
            parent = nodes[-1]
        if pos < n:
            leaf = _Node(key[pos:], parent)
            parent.children[key[pos]] = leaf
            self.size += n - pos
            lru[leaf] = None
            nodes = [*nodes, leaf]
        forgotten = self._forgotten.get(url, 0)
        added = 0
        for nd in nodes:
            prev = nd.owners.get(url)
            if prev is None or prev <= forgotten:
                added += len(nd.key)
            nd.owners[url] = tick
        if added:
            self._owned[url] = self._owned.get(url, 0) + added
        move = lru.move_to_end
        for nd in reversed(nodes):
            move(nd)
        if self.size > self.max_size:
            self.evict(self.max_size)

    def evict(self, target: int, limit: int = 0) -> int:
        """Cut least recently used leaves until the size is at most ``target``.

        At most ``limit`` nodes when ``limit`` > 0 (a background task works in slices).
        Returns the number of nodes removed.
        """
        lru = self._lru
        owned = self._owned
        forgotten = self._forgotten
        count = 0
        self._version += 1
        while self.size > target and lru:
            node, _ = lru.popitem(last=False)
            parent = node.parent
            key = node.key
            n = len(key)
            if parent is not None:
                del parent.children[key[0]]
            node.parent = None
            self.size -= n
            self.evicted += n
            for url, tick in node.owners.items():
                if tick > forgotten.get(url, 0):
                    left = owned.get(url, 0) - n
                    if left > 0:
                        owned[url] = left
                    else:
                        owned.pop(url, None)
            count += 1
            if count == limit:
                break
        return count

    def forget(self, url: str) -> None:
        """Treat everything recorded for ``url`` so far as gone (it left, or lost its cache).

        O(1): entries are invalidated by tick, and age out of the LRU like any other.
        """
        self._forgotten[url] = self._tick
        self._owned.pop(url, None)
        self._version += 1

    def clear(self) -> None:
        """Drop everything."""
        self._root = _Node("", None)
        self._lru.clear()
        self._owned.clear()
        self._forgotten.clear()
        self.size = 0
        self._version += 1
