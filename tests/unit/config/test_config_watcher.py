"""The file watcher sees in-place writes, atomic renames and ..data symlink swaps."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path

from smg.config.watcher import watch_file

# a change is retried while the watcher may still be starting; each try waits this long
ATTEMPT_SECONDS = 1.0
ATTEMPTS = 5


@contextlib.asynccontextmanager
async def watching(path: Path) -> AsyncIterator[asyncio.Queue[None]]:
    """Run watch_file in a task, putting one item in the queue per change it reports."""
    stop = asyncio.Event()
    events: asyncio.Queue[None] = asyncio.Queue()

    async def run() -> None:
        async for _ in watch_file(path, stop, step_ms=50):
            events.put_nowait(None)

    task = asyncio.create_task(run())
    # let the watch start; a change before that is only retried, never lost for good
    await asyncio.sleep(0.2)
    try:
        yield events
    finally:
        stop.set()
        await asyncio.wait_for(task, timeout=5)


async def seen(events: asyncio.Queue[None], change: Callable[[int], object]) -> bool:
    """Apply ``change`` (repeatedly, with a new number) until the watcher reports it."""
    for attempt in range(ATTEMPTS):
        change(attempt)
        try:
            await asyncio.wait_for(events.get(), timeout=ATTEMPT_SECONDS)
        except TimeoutError:
            print(f"change {attempt} not seen; retrying")
            continue
        # drain the rest of a batch that straddled the wait
        await asyncio.sleep(0.3)
        while not events.empty():
            events.get_nowait()
        return True
    return False


def test_in_place_write_is_seen(tmp_path: Path) -> None:
    config = tmp_path / "live.yaml"
    config.write_text("a: 0\n")

    async def main() -> None:
        async with watching(config) as events:
            assert await seen(events, lambda n: config.write_text(f"a: {n + 1}\n"))

    asyncio.run(main())


def test_atomic_rename_is_seen(tmp_path: Path) -> None:
    config = tmp_path / "live.yaml"
    config.write_text("a: 0\n")

    def replace(n: int) -> None:
        tmp = tmp_path / f".live.yaml.{n}.tmp"
        tmp.write_text(f"a: {n + 1}\n")
        os.replace(tmp, config)

    async def main() -> None:
        async with watching(config) as events:
            assert await seen(events, replace)
            # and again: the watch survives the inode it started with being replaced
            assert await seen(events, lambda n: replace(n + 10))

    asyncio.run(main())


def test_kubernetes_style_symlink_swap_is_seen(tmp_path: Path) -> None:
    # live.yaml -> ..data/live.yaml, ..data -> ..v0 (a ConfigMap volume)
    (tmp_path / "..v0").mkdir()
    (tmp_path / "..v0" / "live.yaml").write_text("a: 0\n")
    (tmp_path / "..data").symlink_to("..v0")
    config = tmp_path / "live.yaml"
    config.symlink_to("..data/live.yaml")

    def swap(n: int) -> None:
        version = tmp_path / f"..v{n + 1}"
        version.mkdir()
        (version / "live.yaml").write_text(f"a: {n + 1}\n")
        link = tmp_path / "..data_tmp"
        link.symlink_to(version.name)
        os.replace(link, tmp_path / "..data")

    async def main() -> None:
        async with watching(config) as events:
            assert await seen(events, swap)
            assert config.read_text() != "a: 0\n"
            # a second swap is seen too, though the first one's directory is watched now
            assert await seen(events, lambda n: swap(n + 10))

    asyncio.run(main())


def test_other_files_in_the_directory_are_ignored(tmp_path: Path) -> None:
    config = tmp_path / "live.yaml"
    config.write_text("a: 0\n")

    async def main() -> None:
        async with watching(config) as events:
            # first prove the watcher is running
            assert await seen(events, lambda n: config.write_text(f"a: {n + 1}\n"))
            (tmp_path / "other.yaml").write_text("b: 1\n")
            (tmp_path / "live.yaml.swp").write_text("junk\n")
            await asyncio.sleep(0.8)
            assert events.empty()
            assert await seen(events, lambda n: config.write_text(f"a: {n + 100}\n"))

    asyncio.run(main())


def test_change_without_an_event_is_caught_by_the_recheck(tmp_path: Path) -> None:
    # a write through a hard link elsewhere makes no event in the watched directory,
    # like a change made while the watch is being re-created after a symlink swap
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    config = tmp_path / "a" / "live.yaml"
    config.write_text("a: 0\n")
    elsewhere = tmp_path / "b" / "alias.yaml"
    os.link(config, elsewhere)

    async def main() -> None:
        async with watching(config) as events:
            with elsewhere.open("a") as f:
                f.write("b: 1\n")
            await asyncio.wait_for(events.get(), timeout=5)

    asyncio.run(main())


def test_stop_ends_the_watch_promptly(tmp_path: Path) -> None:
    config = tmp_path / "live.yaml"
    config.write_text("a: 0\n")

    async def main() -> None:
        stop = asyncio.Event()

        async def run() -> int:
            count = 0
            async for _ in watch_file(config, stop):
                count += 1
            return count

        task = asyncio.create_task(run())
        await asyncio.sleep(0.3)
        loop = asyncio.get_running_loop()
        started = loop.time()
        stop.set()
        assert await asyncio.wait_for(task, timeout=3) == 0
        assert loop.time() - started < 2

    asyncio.run(main())
