"""Safe YAML parsing that rejects duplicate keys and remembers the line of every node."""

from __future__ import annotations

from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from smg.config.errors import ConfigError, ConfigIssue
from smg.config.paths import JsonPath, format_path

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STR_TAG = "tag:yaml.org,2002:str"


class _Loader(yaml.SafeLoader):
    """SafeLoader whose instances we drive by hand (compose, check, then construct)."""


class ParsedYaml:
    """A parsed document, the line of each JSON path, and the paths of plain scalars."""

    def __init__(self, doc: Any, lines: dict[JsonPath, int], plain: set[JsonPath]) -> None:
        self.doc = doc
        self.lines = lines
        # plain (unquoted) scalars get YAML typing again after ${VAR} substitution
        self.plain = plain


def parse_yaml(text: str, source: str) -> ParsedYaml:
    """Parse one YAML document safely; raise :class:`ConfigError` with lines on any problem."""
    loader = _Loader(text)
    try:
        try:
            root = loader.get_single_node()
        except yaml.MarkedYAMLError as exc:
            raise ConfigError([_syntax_issue(exc, source)]) from None
        except yaml.YAMLError as exc:
            raise ConfigError([ConfigIssue(source, None, "", f"invalid YAML: {exc}")]) from None
        if root is None:
            raise ConfigError([ConfigIssue(source, 1, "", "the file is empty")])
        walker = _Walker(loader, source)
        walker.walk(root, ())
        if walker.issues:
            raise ConfigError(walker.issues)
        try:
            doc = loader.construct_document(root)
        except yaml.MarkedYAMLError as exc:
            raise ConfigError([_syntax_issue(exc, source)]) from None
        return ParsedYaml(doc, walker.lines, walker.plain)
    finally:
        loader.dispose()


def _syntax_issue(exc: yaml.MarkedYAMLError, source: str) -> ConfigIssue:
    mark = exc.problem_mark or exc.context_mark
    line = None if mark is None else mark.line + 1
    text = ", ".join(part for part in (exc.context, exc.problem) if part)
    return ConfigIssue(source, line, "", f"invalid YAML: {text or exc}")


def _line(node: Node) -> int:
    return int(node.start_mark.line) + 1


class _Walker:
    """Visits the composed node graph before construction: lines, duplicates, key types."""

    def __init__(self, loader: _Loader, source: str) -> None:
        self.loader = loader
        self.source = source
        self.lines: dict[JsonPath, int] = {(): 1}
        self.plain: set[JsonPath] = set()
        self.issues: list[ConfigIssue] = []
        # nodes on the current descent: an alias to one of them makes an endless value
        self._active: set[int] = set()

    def walk(self, node: Node, path: JsonPath, line: int | None = None) -> None:
        self.lines.setdefault(path, _line(node) if line is None else line)
        if id(node) in self._active:
            self._issue(path, _line(node), "recursive YAML alias")
            return
        self._active.add(id(node))
        try:
            if isinstance(node, MappingNode):
                self._walk_mapping(node, path)
            elif isinstance(node, SequenceNode):
                for index, item in enumerate(node.value):
                    self.walk(item, (*path, index))
            elif isinstance(node, ScalarNode) and node.style is None:
                self.plain.add(path)
        finally:
            self._active.discard(id(node))

    def _walk_mapping(self, node: MappingNode, path: JsonPath) -> None:
        seen: dict[str, int] = {}
        merged: list[Node] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG:
                merged.append(value_node)
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            if key in seen:
                self._issue(
                    (*path, key),
                    _line(key_node),
                    f"duplicate key '{key}' (first defined on line {seen[key]})",
                )
                continue
            seen[key] = _line(key_node)
            # a block mapping/sequence value starts on the line after its key; the key
            # line is where a reader looks for it
            self.walk(value_node, (*path, key), line=_line(key_node))
        # keys written in the mapping itself win over merged (<<) ones
        for value_node in merged:
            sources = value_node.value if isinstance(value_node, SequenceNode) else [value_node]
            for src in sources:
                if isinstance(src, MappingNode):
                    self._walk_mapping_lines_only(src, path, seen)

    def _walk_mapping_lines_only(
        self, node: MappingNode, path: JsonPath, seen: dict[str, int]
    ) -> None:
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE_TAG or not isinstance(key_node, ScalarNode):
                continue
            key = str(key_node.value)
            if key not in seen:
                seen[key] = _line(key_node)
                self.walk(value_node, (*path, key), line=_line(key_node))

    def _key(self, key_node: Node, path: JsonPath) -> str | None:
        if isinstance(key_node, ScalarNode) and key_node.tag == _STR_TAG:
            return str(key_node.value)
        shown = key_node.value if isinstance(key_node, ScalarNode) else key_node.tag
        self._issue(
            path,
            _line(key_node),
            f"mapping keys must be strings; quote the key {shown!r}",
        )
        return None

    def _issue(self, path: JsonPath, line: int, message: str) -> None:
        self.issues.append(ConfigIssue(self.source, line, format_path(path), message))
