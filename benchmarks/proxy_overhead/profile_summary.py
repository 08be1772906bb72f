#!/usr/bin/env python3
"""Summarise py-spy ``--format raw`` (collapsed stacks) into top-N tables.  Stdlib only.

  profile_summary.py RAW_FILE [TOP=25] [--by line]

Own time  = samples where the function is the leaf (innermost frame).
Cumulative = samples where the function is anywhere on the stack (counted once per sample).
Frames are grouped by "function (file)" (the line number dropped) unless ``--by line``.
Native frames with no symbol (``0x7f... (libc.so.6)``) are grouped per library.
Also prints own time grouped by area (kernel/libc syscalls, aiohttp, uvloop, smg modules, ...)
and time grouped by the innermost Python frame (which Python code the native work served).
"""

import re
import sys
from collections import Counter

_HEX = re.compile(r"^0x[0-9a-f]+ \((.*)\)$")
_LINE = re.compile(r"^(.*) \((.*?)(?::\d+)?\)$")


def norm(frame, by_line):
    m = _HEX.match(frame)
    if m:
        return f"[unknown] ({m.group(1)})"
    if by_line:
        return frame
    m = _LINE.match(frame)
    return f"{m.group(1)} ({m.group(2)})" if m else frame


_NATIVE_AREA = {
    # uvloop (Cython loop.c) and the libuv it embeds
    **dict.fromkeys(
        [
            "loop.c",
            "core.c",
            "queue.h",
            "loop-watcher.c",
            "stream.c",
            "linux.c",
            "timer.c",
            "heap-inl.h",
            "uv-common.c",
            "tcp.c",
            "handles.c",
            "internal.h",
        ],
        "uvloop / libuv (event loop, transports)",
    ),
    # aiohttp's C extensions and the llhttp parser inside them (httptools embeds llhttp too)
    **dict.fromkeys(
        ["_http_parser.c", "_http_writer.c", "_find_header.c", "llhttp.c", "api.c", "http.c"],
        "aiohttp C ext + llhttp (HTTP parse/serialise)",
    ),
    "parser.c": "httptools (upstream response parser)",
    "_helpers_c.c": "propcache (aiohttp reify/under_cached_property)",
    **dict.fromkeys(
        [
            "_multidict.c",
            "hashtable.h",
            "identity.h",
            "bulk_update.h",
            "iter.h",
            "views.h",
            "istr.h",
            "dict.h",
            "htkeys.h",
            "state.h",
            "pair_list.h",
        ],
        "multidict (C)",
    ),
    **dict.fromkeys(
        [
            "object.h",
            "abstract.h",
            "unicodeobject.h",
            "_asynciomodule.c",
            "_asynciomodule.c.h",
            "compat.h",
            "freelist.h",
        ],
        "CPython runtime (refcounts, alloc, GC, asyncio C tasks)",
    ),
}


def _lib(frame):
    if not frame.endswith(")"):
        return ""
    lib = frame[frame.rfind("(") + 1 : -1]
    return lib.rsplit(":", 1)[0] if lib.rsplit(":", 1)[-1].isdigit() else lib


def area(frame):
    """Coarse owner of a leaf frame."""
    lib = _lib(frame)
    if lib in _NATIVE_AREA:
        return _NATIVE_AREA[lib]
    if "libc.so" in lib or "vdso" in lib or "ld-linux" in lib:
        return "libc: syscalls (socket write/read: kernel TCP time), malloc"
    if "libpython" in lib or lib == "<string>":
        return "CPython runtime (refcounts, alloc, GC, asyncio C tasks)"
    if "uvloop" in lib:
        return "uvloop / libuv (event loop, transports)"
    if "httptools" in lib:
        return "httptools (upstream response parser)"
    if "orjson" in lib:
        return "orjson"
    if lib.startswith("smg/"):
        parts = lib.split("/")
        return "smg/" + parts[1] + ("/" if len(parts) > 2 else "") + " (Python)"
    if lib.startswith(("aiohttp/", "multidict/", "yarl/", "propcache/")):
        return "aiohttp / multidict / yarl (Python code)"
    if lib.startswith("asyncio/"):
        return "asyncio (Python stdlib)"
    if lib.endswith(".py"):
        return lib.split("/")[0] + " (Python)"
    return "other native (" + lib + ")"


# Process entry frames under which everything runs: not an owner.
_ENTRY = frozenset(
    {"asyncio/runners.py", "smg/cli.py", "smg/runtime/process.py", "smg/__main__.py"}
)


def py_owner(frames):
    """The package of the innermost Python frame: who asked for this native work."""
    for f in reversed(frames):
        lib = _lib(f)
        if lib in _ENTRY:
            break
        if lib.endswith(".py") or lib == "<string>":
            if lib.startswith("smg/"):
                return "smg/" + lib.split("/")[1]
            if lib == "<string>":
                return "generated code (dataclass __init__ and the like)"
            return lib.split("/")[0]
    return "no Python frame: event loop / transports / C tasks"


def is_python(frame):
    lib = _lib(frame)
    return lib.endswith(".py") or lib == "<string>" or lib.startswith("<frozen")


def innermost_python(frames):
    """The innermost Python frame below the process entry frames, or None."""
    for f in reversed(frames):
        if _lib(f) in _ENTRY:
            return None
        if is_python(f):
            return f
    return None


def table(title, head, rows):
    print(f"\n{title}\n")
    print("| # | " + " | ".join(head) + " |")
    print("|---|" + "---|" * len(head))
    for i, row in enumerate(rows, 1):
        print(f"| {i} | " + " | ".join(row) + " |")


def main():
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    by_line = "--by" in sys.argv and "line" in sys.argv
    path = args[0]
    top = int(args[1]) if len(args) > 1 else 25
    own, cum, pyself, areas, owners = Counter(), Counter(), Counter(), Counter(), Counter()
    total = 0
    with open(path) as fh:
        lines = fh.read().splitlines()
    for line in lines:
        if not line:
            continue
        stack, _, count = line.rpartition(" ")
        n = int(count)
        frames = [norm(f, by_line) for f in stack.split(";")]
        total += n
        own[frames[-1]] += n
        areas[area(frames[-1])] += n
        owners[py_owner(frames)] += n
        pyself[innermost_python(frames) or "(no Python frame: event loop, transports)"] += n
        for f in set(frames):
            cum[f] += n

    def pct(n):
        return f"{100 * n / total:.1f}"

    print(f"samples: {total}  ({path})")
    table(
        f"Top {top} by own time (leaf frame, native frames included)",
        ["own %", "cum %", "function (file)"],
        [[pct(n), pct(cum[f]), f"`{f}`"] for f, n in own.most_common(top)],
    )
    table(
        f"Top {top} Python functions by self time, native code they call included "
        "(each sample charged to its innermost Python frame)",
        ["self+native %", "cum %", "function (file)"],
        [[pct(n), pct(cum[f]), f"`{f}`"] for f, n in pyself.most_common(top)],
    )
    py_cum = [
        (f, n)
        for f, n in cum.most_common()
        if is_python(f) and _lib(f) not in _ENTRY and not f.startswith("<module>")
    ]
    table(
        f"Top {top} by cumulative time (Python frames; the event loop's native frames and the "
        "process entry frames, on every stack, left out)",
        ["cum %", "self+native %", "function (file)"],
        [[pct(n), pct(pyself[f]), f"`{f}`"] for f, n in py_cum[:top]],
    )
    print("\nOwn time by area (leaf frame)\n")
    print("| area | own % |")
    print("|---|---|")
    for a, n in areas.most_common():
        print(f"| {a} | {pct(n)} |")
    print(
        "\nTime by the innermost Python frame's package (native work charged to the Python "
        "code that called it)\n"
    )
    print("| package | % |")
    print("|---|---|")
    for a, n in owners.most_common():
        print(f"| {a} | {pct(n)} |")


if __name__ == "__main__":
    main()
