"""One generic name → factory registry, shared by filters, LB policies, upstreams and parsers.

Three ways a name becomes known, in order of precedence:

1. ``register(name, obj)`` / ``@registry.add(name)``: an object already in hand.
2. ``register_lazy(name, "package.module:attr")``: imported on the first ``get``, so
   listing builtins costs no imports and a broken optional module only fails when used.
3. Entry points of ``entry_point_group`` (third-party packages), discovered once, on
   the first lookup that misses the names above, and loaded on their first ``get``.

``resolve`` also accepts an import path (``"package.module:Class"``), for custom types
that are not installed as a distribution. Registered names may not contain ``:``, so
the two spellings can never be confused.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import logging
import threading
from collections.abc import Callable
from typing import Generic, TypeVar, cast

T = TypeVar("T")

log = logging.getLogger(__name__)


class UnknownName(KeyError):
    """A registry was asked for a name it does not know."""

    def __init__(self, kind: str, name: str, known: list[str]) -> None:
        self.kind = kind
        self.name = name
        self.known = tuple(known)
        listed = ", ".join(known) if known else "(none)"
        message = f"unknown {kind} {name!r}; known: {listed}"
        close = difflib.get_close_matches(name, known, n=1)
        if close:
            message += f"; did you mean {close[0]!r}?"
        self.message = message
        super().__init__(message)

    def __str__(self) -> str:
        # KeyError.__str__ would repr() the message and wrap it in quotes.
        return self.message

    def __reduce__(self) -> tuple[type[UnknownName], tuple[str, str, list[str]]]:
        # Rebuild from the parts (not the message) when pickled across processes.
        return (type(self), (self.kind, self.name, list(self.known)))


def import_path(path: str) -> object:
    """Import ``"package.module:attr"`` (``attr`` may be dotted) and return the object.

    Raises ``ImportError`` naming the path for every failure (bad syntax, missing
    module, missing attribute), so callers catch one exception type.
    """
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name or not attr:
        raise ImportError(f"{path!r} is not an import path of the form 'package.module:attr'")
    try:
        obj: object = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"cannot import {path!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise ImportError(f"cannot import {path!r}: no attribute {part!r}") from exc
    return obj


class Registry(Generic[T]):
    """Names → objects of one kind (e.g. ``"lb policy"``), with lazy and plugin entries."""

    def __init__(self, kind: str, entry_point_group: str | None = None) -> None:
        self.kind = kind
        self.entry_point_group = entry_point_group
        self._loaded: dict[str, T] = {}
        self._lazy: dict[str, str] = {}
        self._entry_points: dict[str, importlib.metadata.EntryPoint] = {}
        self._entry_points_scanned = entry_point_group is None
        # Reentrant: a lazily imported module may itself register into this registry.
        self._lock = threading.RLock()

    # -- registration ----------------------------------------------------------------

    def register(self, name: str, factory: T, *, replace: bool = False) -> None:
        """Make ``factory`` known as ``name``; re-registering a name needs ``replace``."""
        with self._lock:
            self._check_new(name, replace)
            self._lazy.pop(name, None)
            self._loaded[name] = factory

    def add(self, name: str, *, replace: bool = False) -> Callable[[T], T]:
        """Decorator form of ``register``; returns the object unchanged."""

        def decorator(factory: T) -> T:
            self.register(name, factory, replace=replace)
            return factory

        return decorator

    def register_lazy(self, name: str, path: str, *, replace: bool = False) -> None:
        """Make ``name`` known now, importing ``"package.module:attr"`` on first ``get``."""
        if ":" not in path:
            raise ValueError(f"{self.kind} {name!r}: lazy path {path!r} must be 'module:attr'")
        with self._lock:
            self._check_new(name, replace)
            self._loaded.pop(name, None)
            self._lazy[name] = path

    def _check_new(self, name: str, replace: bool) -> None:
        if not name or ":" in name:
            raise ValueError(f"{self.kind} name {name!r} must be non-empty and contain no ':'")
        if not replace and (name in self._loaded or name in self._lazy):
            raise ValueError(f"{self.kind} {name!r} is already registered")

    # -- lookup ----------------------------------------------------------------------

    def get(self, name: str) -> T:
        """The object registered as ``name``; raises ``UnknownName`` if there is none.

        A lazy or entry-point entry that fails to import raises ``ImportError``.
        """
        found = self._loaded.get(name)
        if found is not None:
            return found
        with self._lock:
            if name in self._loaded:
                return self._loaded[name]
            path = self._lazy.get(name)
            if path is not None:
                try:
                    obj = import_path(path)
                except ImportError as exc:
                    raise ImportError(f"{self.kind} {name!r}: {exc}") from exc
                del self._lazy[name]
                return self._store(name, obj)
            self._scan_entry_points()
            ep = self._entry_points.get(name)
            if ep is None:
                raise UnknownName(self.kind, name, self._names_locked())
            try:
                obj = ep.load()
            except Exception as exc:
                # A plugin can fail in any way at import; report it as one kind of error.
                raise ImportError(
                    f"{self.kind} {name!r}: cannot load entry point {ep.value!r}: {exc}"
                ) from exc
            del self._entry_points[name]
            return self._store(name, obj)

    def _store(self, name: str, obj: object) -> T:
        # Lazy targets cannot be type-checked statically; trust the declared kind.
        value = cast(T, obj)
        self._loaded[name] = value
        return value

    def resolve(self, name_or_path: str) -> T:
        """``get(name)``, or the object at an import path ``"package.module:attr"``."""
        if ":" in name_or_path:
            return cast(T, import_path(name_or_path))
        return self.get(name_or_path)

    def names(self) -> list[str]:
        """Every known name (registered, lazy and entry points), sorted."""
        with self._lock:
            self._scan_entry_points()
            return self._names_locked()

    def _names_locked(self) -> list[str]:
        return sorted({*self._loaded, *self._lazy, *self._entry_points})

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        with self._lock:
            if name in self._loaded or name in self._lazy:
                return True
            self._scan_entry_points()
            return name in self._entry_points

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, entry_point_group={self.entry_point_group!r})"

    # -- plugins ---------------------------------------------------------------------

    def _scan_entry_points(self) -> None:
        """Read the entry-point group once; load nothing yet."""
        if self._entry_points_scanned:
            return
        self._entry_points_scanned = True
        group = cast(str, self.entry_point_group)
        for ep in importlib.metadata.entry_points(group=group):
            if ":" in ep.name or not ep.name:
                log.warning("ignoring %s entry point with invalid name %r", self.kind, ep.name)
            elif ep.name in self._loaded or ep.name in self._lazy:
                # Builtins win, so installing a package cannot silently swap one out.
                log.warning(
                    "ignoring %s entry point %r (%s): the name is already registered",
                    self.kind,
                    ep.name,
                    ep.value,
                )
            elif ep.name in self._entry_points:
                log.warning(
                    "ignoring duplicate %s entry point %r (%s); keeping %s",
                    self.kind,
                    ep.name,
                    ep.value,
                    self._entry_points[ep.name].value,
                )
            else:
                self._entry_points[ep.name] = ep
