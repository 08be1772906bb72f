"""Watch one configuration file for changes, including atomic renames and symlink swaps."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Iterable
from pathlib import Path

import watchfiles

_MAX_LINK_HOPS = 40
_RECHECK_MS = 1000


async def watch_file(
    path: Path,
    stop: asyncio.Event,
    *,
    step_ms: int = 50,
    debounce_ms: int = 1600,
) -> AsyncIterator[None]:
    """Yield once per batch of changes that may have changed what ``path`` reads as.

    The parent directory is watched rather than the file, because an editor's or a
    deployment's atomic rename replaces the inode a file watch would follow; for a
    Kubernetes-style ``live.yaml -> ..data/live.yaml`` link, the swap of ``..data`` counts.
    Changes are batched until ``step_ms`` pass without one (at most ``debounce_ms``).
    Returns promptly once ``stop`` is set.
    """
    target = _absolute(path)
    seen = _fingerprint(target)
    while not stop.is_set():
        dirs = _watch_dirs(target)
        if not dirs:
            # the directory itself is missing (being recreated?): look again shortly
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=0.5)
            continue
        relevant = _relevant_paths(target)
        async for changes in watchfiles.awatch(
            *dirs,
            watch_filter=None,
            recursive=False,
            stop_event=stop,
            step=step_ms,
            debounce=debounce_ms,
            # a quiet period yields an empty batch: the moment to compare fingerprints,
            # which catches a change made while the watch was being re-created
            rust_timeout=_RECHECK_MS,
            yield_on_timeout=True,
        ):
            current = _relevant_paths(target)
            now = _fingerprint(target)
            # the old chain matters too: a deleted old target is a change of the file
            if _touches((p for _, p in changes), relevant | current, dirs) or (
                not changes and now != seen
            ):
                seen = now
                yield None
            relevant = current
            if _watch_dirs(target) != dirs:
                break  # the link chain now leads elsewhere: watch the new directories


_Fingerprint = tuple[tuple[str, ...], tuple[int, int, int] | None]


def _fingerprint(path: Path) -> _Fingerprint:
    """What the file is now: its link chain and the identity, time and size of its target."""
    try:
        st = os.stat(path)
        identity: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
    except OSError:
        identity = None
    return tuple(_link_chain(path)), identity


def _absolute(path: Path) -> Path:
    return Path(os.path.abspath(path))


def _link_chain(path: Path) -> list[str]:
    """``path`` and every path its symlinks lead through, ending at the real file."""
    chain = [os.path.normpath(path)]
    current = chain[0]
    for _ in range(_MAX_LINK_HOPS):
        try:
            link = os.readlink(current)
        except OSError:
            break
        current = os.path.normpath(os.path.join(os.path.dirname(current), link))
        chain.append(current)
    chain.append(os.path.realpath(path))
    return chain


def _relevant_paths(path: Path) -> set[str]:
    return set(_link_chain(path))


def _watch_dirs(path: Path) -> tuple[str, ...]:
    dirs = {os.path.dirname(p) for p in _link_chain(path)}
    return tuple(sorted(d for d in dirs if os.path.isdir(d)))


def _touches(changed: Iterable[str], relevant: set[str], watched: tuple[str, ...]) -> bool:
    for raw in changed:
        changed_path = os.path.normpath(raw)
        if changed_path in relevant:
            return True
        if changed_path in watched:
            continue
        # a directory (or link to one) on the way to the file, e.g. ``..data``
        prefix = changed_path + os.sep
        if any(p.startswith(prefix) for p in relevant):
            return True
    return False
