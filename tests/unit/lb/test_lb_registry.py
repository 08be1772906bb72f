"""The generic registry (smg.registry) and the LB policy registry built on it."""

from __future__ import annotations

import importlib.metadata
import pickle
import sys
from pathlib import Path

import pytest

from smg.clusters.lb import LB_POLICIES, create_policy
from smg.clusters.lb.base import PickContext
from smg.registry import Registry, UnknownName, import_path


def test_register_get_and_decorator() -> None:
    reg: Registry[object] = Registry("thing")
    reg.register("one", 1)

    @reg.add("fn")
    def fn() -> int:
        return 2

    assert reg.get("one") == 1
    assert reg.get("fn") is fn
    assert reg.names() == ["fn", "one"]
    assert "one" in reg and "two" not in reg


def test_duplicate_needs_replace() -> None:
    reg: Registry[int] = Registry("thing")
    reg.register("x", 1)
    with pytest.raises(ValueError, match="thing 'x' is already registered"):
        reg.register("x", 2)
    with pytest.raises(ValueError, match="already registered"):
        reg.register_lazy("x", "os:sep")
    reg.register("x", 3, replace=True)
    assert reg.get("x") == 3


@pytest.mark.parametrize("bad", ["", "a:b"])
def test_invalid_names(bad: str) -> None:
    with pytest.raises(ValueError, match="must be non-empty and contain no ':'"):
        Registry[int]("thing").register(bad, 1)


def test_unknown_name_lists_known_sorted() -> None:
    with pytest.raises(UnknownName) as info:
        create_policy("cache_awre")
    err = info.value
    assert isinstance(err, KeyError)
    known = (
        "bucket",
        "cache_aware",
        "consistent_hash",
        "least_load",
        "least_request",
        "manual",
        "power_of_two",
        "prefix_hash",
        "random",
        "round_robin",
    )
    assert str(err).startswith(f"unknown lb policy 'cache_awre'; known: {', '.join(known)}")
    assert err.kind == "lb policy" and err.name == "cache_awre"
    assert err.known == known


def test_unknown_name_pickles() -> None:
    err = UnknownName("lb policy", "x", ["a", "b"])
    back = pickle.loads(pickle.dumps(err))
    assert str(back) == str(err) == "unknown lb policy 'x'; known: a, b"
    assert back.known == ("a", "b")


def test_unknown_name_suggests_close_match() -> None:
    with pytest.raises(UnknownName, match="did you mean 'round_robin'"):
        LB_POLICIES.get("round_robn")
    empty: Registry[int] = Registry("widget")
    with pytest.raises(UnknownName) as info:
        empty.get("x")
    assert str(info.value) == "unknown widget 'x'; known: (none)"


def _write_module(tmp_path: Path, name: str, body: str) -> None:
    (tmp_path / f"{name}.py").write_text(body)


def test_lazy_import_on_first_get(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _write_module(tmp_path, "smg_test_lazy_mod", "class Thing:\n    pass\nVALUE = 7\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "smg_test_lazy_mod", raising=False)
    reg: Registry[object] = Registry("thing")
    reg.register_lazy("thing", "smg_test_lazy_mod:Thing")
    assert reg.names() == ["thing"]
    assert "smg_test_lazy_mod" not in sys.modules  # listing imports nothing
    cls = reg.get("thing")
    assert "smg_test_lazy_mod" in sys.modules
    assert cls is sys.modules["smg_test_lazy_mod"].Thing
    assert reg.get("thing") is cls


def test_lazy_import_failure_is_import_error() -> None:
    reg: Registry[object] = Registry("thing")
    reg.register_lazy("gone", "smg_no_such_module_xyz:Thing")
    reg.register_lazy("noattr", "os:no_such_attr_xyz")
    with pytest.raises(ImportError, match=r"thing 'gone'.*smg_no_such_module_xyz"):
        reg.get("gone")
    with pytest.raises(ImportError, match="no attribute 'no_such_attr_xyz'"):
        reg.get("noattr")
    with pytest.raises(ValueError, match="must be 'module:attr'"):
        reg.register_lazy("bad", "os.path")


def test_resolve_name_or_import_path() -> None:
    reg: Registry[object] = Registry("thing")
    reg.register("p", 1)
    assert reg.resolve("p") == 1
    assert reg.resolve("collections:OrderedDict") is __import__("collections").OrderedDict
    assert reg.resolve("os:path.join") is __import__("os").path.join
    for bad in ("os:", ":x", "no_such_mod_xyz:A", "os:nope_xyz"):
        with pytest.raises(ImportError):
            reg.resolve(bad)
    with pytest.raises(UnknownName):
        reg.resolve("q")
    assert import_path("smg.registry:Registry") is Registry


def test_entry_points_discovered_once_and_loaded_lazily(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write_module(tmp_path, "smg_test_plugin_mod", "def factory():\n    return 'plugged'\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "smg_test_plugin_mod", raising=False)
    calls: list[str] = []

    def fake_entry_points(*, group: str) -> list[importlib.metadata.EntryPoint]:
        calls.append(group)
        mk = importlib.metadata.EntryPoint
        return [
            mk("plugged", "smg_test_plugin_mod:factory", group),
            mk("builtin", "smg_test_plugin_mod:factory", group),  # shadowed by the builtin
            mk("plugged", "other_mod:other", group),  # duplicate: first one wins
            mk("broken", "smg_missing_plugin_xyz:x", group),
        ]

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    reg: Registry[object] = Registry("gadget", entry_point_group="smg.test_gadgets")
    reg.register("builtin", "mine")
    assert reg.get("builtin") == "mine"
    assert calls == []  # a hit on a builtin does not even scan
    assert reg.names() == ["broken", "builtin", "plugged"]
    assert "smg_test_plugin_mod" not in sys.modules
    factory = reg.get("plugged")
    assert callable(factory) and factory() == "plugged"
    with pytest.raises(ImportError, match="gadget 'broken'"):
        reg.get("broken")
    with pytest.raises(UnknownName, match="known: broken, builtin, plugged"):
        reg.get("nope")
    assert calls == ["smg.test_gadgets"]


def test_no_group_means_no_scan(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(**_: object) -> None:
        raise AssertionError("scanned")

    monkeypatch.setattr(importlib.metadata, "entry_points", boom)
    reg: Registry[int] = Registry("thing")
    with pytest.raises(UnknownName):
        reg.get("x")


BUCKETS = {"buckets": [{"endpoints": ["http://a:1"]}]}


@pytest.mark.parametrize(
    "name",
    [
        "round_robin",
        "random",
        "least_request",
        "consistent_hash",
        "cache_aware",
        "power_of_two",
        "least_load",
        "prefix_hash",
        "bucket",
        "manual",
    ],
)
def test_every_builtin_policy_builds(name: str) -> None:
    policy = create_policy(name, BUCKETS if name == "bucket" else {})
    assert policy.name == name
    assert policy.pick([], PickContext(headers={}, body=None, model=None)) is None
    assert policy.reason().startswith(name)


def test_create_policy_accepts_import_path() -> None:
    policy = create_policy("smg.clusters.lb.random:create", {"seed": 1})
    assert policy.name == "random"
