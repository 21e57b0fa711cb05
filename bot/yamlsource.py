"""Read YAML keeping each value's position, so problems can name their line and column."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import yaml

from bot.problems import YamlPath

try:  # libyaml is much faster; the pure-Python loader behaves the same
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Position:
    line: int
    column: int


class YamlSyntaxError(ValueError):
    def __init__(self, message: str, position: Position) -> None:
        super().__init__(message)
        self.position = position


@dataclass(frozen=True, slots=True)
class YamlDocument:
    """The data of one YAML document and its node tree (for positions)."""

    data: Any
    root: yaml.Node | None
    duplicate_keys: tuple[YamlPath, ...]

    def position(self, path: YamlPath) -> Position:
        """Where `path` is; the nearest enclosing node when part of it does not exist."""
        node = self.root
        if node is None:
            return Position(1, 1)
        best = node
        for part in path:
            child = _child(node, part)
            if child is None:
                continue  # e.g. a pydantic union tag in the path: stay on this node
            node = child
            best = child
        return Position(best.start_mark.line + 1, best.start_mark.column + 1)

    def key_position(self, path: YamlPath) -> Position:
        """Where the key of the last element of `path` is (for unknown or duplicate keys)."""
        if not path:
            return self.position(path)
        parent = self.position_node(path[:-1])
        if isinstance(parent, yaml.MappingNode):
            # The last key of that name: for a duplicate key, that is the repeat.
            for key, _value in reversed(parent.value):
                if key.value == path[-1]:
                    return Position(key.start_mark.line + 1, key.start_mark.column + 1)
        return self.position(path)

    def position_node(self, path: YamlPath) -> yaml.Node | None:
        node = self.root
        for part in path:
            if node is None:
                return None
            child = _child(node, part)
            if child is not None:
                node = child
        return node


def _child(node: yaml.Node, part: str | int) -> yaml.Node | None:
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if key.value == part or (isinstance(part, int) and key.value == str(part)):
                return cast(yaml.Node, value)
        return None
    if (
        isinstance(node, yaml.SequenceNode)
        and isinstance(part, int)
        and 0 <= part < len(node.value)
    ):
        return cast(yaml.Node, node.value[part])
    return None


def read_yaml(source: str) -> YamlDocument:
    """Parse one YAML document; raise `YamlSyntaxError` with the position on bad syntax."""
    try:
        loader = _Loader(source)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        position = Position(mark.line + 1, mark.column + 1) if mark else Position(1, 1)
        message = " ".join(part for part in (error.context, error.problem) if part)
        raise YamlSyntaxError(message or "invalid YAML", position) from None
    except yaml.YAMLError as error:
        raise YamlSyntaxError(str(error), Position(1, 1)) from None
    duplicates: list[YamlPath] = []
    if root is not None:
        _find_duplicate_keys(root, (), duplicates)
    return YamlDocument(data=data, root=root, duplicate_keys=tuple(duplicates))


def _find_duplicate_keys(node: yaml.Node, path: YamlPath, out: list[YamlPath]) -> None:
    # PyYAML silently keeps the last of two equal keys; a script author never means that.
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            name = str(key.value)
            if name in seen:
                out.append((*path, name))
            seen.add(name)
            _find_duplicate_keys(value, (*path, name), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _find_duplicate_keys(item, (*path, index), out)
