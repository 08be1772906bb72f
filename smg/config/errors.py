"""Configuration errors: every problem found in a file, each with its place."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from smg.config.paths import JsonPath, format_path


@dataclass(frozen=True, slots=True)
class ConfigIssue:
    """One problem in a configuration: where it is and what is wrong."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        if self.path:
            return f"{where}: {self.path}: {self.message}"
        return f"{where}: {self.message}"


class ConfigError(Exception):
    """A configuration was rejected; ``issues`` lists every problem found, sorted by line."""

    def __init__(self, issues: Iterable[ConfigIssue]) -> None:
        self.issues: list[ConfigIssue] = sort_issues(issues)
        super().__init__(str(self))

    def __str__(self) -> str:
        return "\n".join(str(issue) for issue in self.issues)

    def __reduce__(self) -> tuple[type[ConfigError], tuple[list[ConfigIssue]]]:
        # the default would rebuild from the message string, not from the issues
        return (ConfigError, (self.issues,))


def sort_issues(issues: Iterable[ConfigIssue]) -> list[ConfigIssue]:
    """Issues in file order (unknown lines last), duplicates dropped."""
    unique = dict.fromkeys(issues)
    return sorted(unique, key=lambda i: (i.line is None, i.line or 0))


class IssueCollector:
    """Accumulates issues for one source, looking up lines by JSON path."""

    def __init__(self, source: str, lines: dict[JsonPath, int]) -> None:
        self.source = source
        self.lines = lines
        self.issues: list[ConfigIssue] = []

    def add(self, path: JsonPath, message: str) -> None:
        """Record ``message`` at ``path`` (on the line of the path or its nearest ancestor)."""
        self.issues.append(
            ConfigIssue(self.source, line_for(self.lines, path), format_path(path), message)
        )


def line_for(lines: dict[JsonPath, int], path: JsonPath) -> int | None:
    """Line of ``path``, or of its nearest ancestor that has one."""
    for end in range(len(path), -1, -1):
        line = lines.get(path[:end])
        if line is not None:
            return line
    return None
