"""YAML-level problems: syntax, duplicate keys, key types, document shape."""

from __future__ import annotations

from pathlib import Path

import pytest
from config_helpers import MINIMAL, Failer

from smg.config.errors import ConfigError, line_for
from smg.config.loader import load_config, load_config_text
from smg.config.yaml_source import parse_yaml


def test_syntax_error_reports_its_line(fail: Failer) -> None:
    issues = fail("listeners:\n  - name: a\n    address: [1, 2\nclusters: []\n")
    assert len(issues) == 1
    assert issues[0].startswith("f.yaml:4: invalid YAML:")


def test_tab_indentation_is_a_syntax_error_with_line(fail: Failer) -> None:
    issues = fail("listeners:\n\t- name: a\n")
    assert issues[0].startswith("f.yaml:2: invalid YAML:")


def test_duplicate_key_reports_line_of_duplicate_and_first(fail: Failer) -> None:
    text = MINIMAL + "clusters:\n  - name: other\n    endpoints: [http://h:1]\n"
    assert fail(text) == ["f.yaml:9: clusters: duplicate key 'clusters' (first defined on line 6)"]


def test_nested_duplicate_key_reports_its_path(fail: Failer) -> None:
    text = MINIMAL.replace("    endpoints:", "    name: again\n    endpoints:")
    assert fail(text) == [
        "f.yaml:8: clusters[0].name: duplicate key 'name' (first defined on line 7)"
    ]


def test_non_string_key_is_rejected(fail: Failer) -> None:
    issues = fail(MINIMAL + "models:\n  1: {}\n")
    assert issues == ["f.yaml:10: models: mapping keys must be strings; quote the key '1'"]


def test_empty_file_is_rejected(fail: Failer) -> None:
    assert fail("# nothing\n") == ["f.yaml:1: the file is empty"]


def test_top_level_list_is_rejected(fail: Failer) -> None:
    assert fail("- a\n- b\n") == [
        "f.yaml:1: the top level must be a mapping of settings, not a list"
    ]


def test_two_documents_are_rejected(fail: Failer) -> None:
    issues = fail(MINIMAL + "---\nversion: 1\n")
    assert issues[0].startswith("f.yaml:9: invalid YAML:")


def test_unsafe_tags_are_refused(fail: Failer) -> None:
    issues = fail("!!python/object/apply:os.system ['true']\n")
    assert "invalid YAML" in issues[0]


def test_recursive_alias_is_rejected() -> None:
    with pytest.raises(ConfigError, match="recursive YAML alias"):
        parse_yaml("a: &x\n  b: *x\n", "f.yaml")


def test_lines_are_recorded_for_every_path() -> None:
    parsed = parse_yaml(MINIMAL, "f.yaml")
    assert parsed.lines[("listeners",)] == 1
    assert parsed.lines[("listeners", 0)] == 2
    assert parsed.lines[("listeners", 0, "routes", 0, "cluster")] == 5
    assert parsed.lines[("clusters", 0, "endpoints", 0)] == 8


def test_merge_keys_work_and_local_keys_win() -> None:
    text = "base: &b {x: 1, y: 2}\nchild:\n  <<: *b\n  y: 3\n"
    parsed = parse_yaml(text, "f.yaml")
    assert parsed.doc["child"] == {"x": 1, "y": 3}
    assert parsed.lines[("child", "y")] == 4
    assert parsed.lines[("child", "x")] == 1


def test_missing_file_is_one_issue(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "absent.yaml")
    assert len(info.value.issues) == 1
    assert "cannot read file" in info.value.issues[0].message


def test_text_source_names_the_issues() -> None:
    with pytest.raises(ConfigError) as info:
        load_config_text("a: [", "inline", env={})
    assert str(info.value).startswith("inline:1: invalid YAML")


def test_config_keeps_the_line_table_for_later_checks(tmp_path: Path) -> None:
    path = tmp_path / "f.yaml"
    path.write_text(MINIMAL + "    lb_policy: random\n")
    config = load_config(path, env={})
    # the shorthand was expanded to {type: random}; its line is that of the shorthand
    assert line_for(config.lines, ("clusters", 0, "lb_policy", "type")) == 9
    assert line_for(config.lines, ("listeners", 0, "address")) == 3
