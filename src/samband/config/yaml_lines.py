"""YAML loading that remembers where every key and list item stands in the file."""

from __future__ import annotations

from typing import Any, cast

import yaml

Path = tuple[str | int, ...]
Positions = dict[Path, tuple[int, int]]


class _LineLoader(yaml.SafeLoader):
    pass


def load_with_positions(text: str) -> tuple[Any, Positions]:
    """Parse YAML; return the data and ``{path: (line, column)}`` (1-based) of each node."""
    positions: Positions = {}
    root = yaml.compose(text, Loader=_LineLoader)
    if root is None:
        return None, positions
    return _build(root, (), positions), positions


def _build(
    node: yaml.Node, path: Path, positions: Positions, ancestors: frozenset[int] = frozenset()
) -> Any:
    positions.setdefault(path, (node.start_mark.line + 1, node.start_mark.column + 1))
    if id(node) in ancestors:  # an alias to a node that contains it: "&a [*a]"
        raise yaml.constructor.ConstructorError(
            None, None, "a recursive alias (an anchor used inside itself)", node.start_mark
        )
    ancestors = ancestors | {id(node)}
    if isinstance(node, yaml.MappingNode):
        _LineLoader("").flatten_mapping(node)  # YAML merge keys (<<: *anchor)
        result: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            key: Any = _LineLoader.construct_object(_LineLoader(""), key_node)
            if not isinstance(key, str | int | float | bool) and key is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a plain value", key_node.start_mark
                )
            child = cast(Path, (*path, key))
            if key in result:
                # PyYAML would silently keep the last one: a second system or dataflow key
                # of the same name is almost always a copy-paste mistake.
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key!r} (the first is on line {positions[child][0]})",
                    key_node.start_mark,
                )
            positions[child] = (key_node.start_mark.line + 1, key_node.start_mark.column + 1)
            result[key] = _build(value_node, child, positions, ancestors)
        return result
    if isinstance(node, yaml.SequenceNode):
        items = []
        for index, item in enumerate(node.value):
            child = (*path, index)
            positions[child] = (item.start_mark.line + 1, item.start_mark.column + 1)
            items.append(_build(item, child, positions, ancestors))
        return items
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = _LineLoader("")
    return loader.construct_object(node, deep=True)


def position_of(positions: Positions, path: Path) -> tuple[int, int]:
    """The position of ``path`` or of its closest known ancestor."""
    current = tuple(path)
    while current:
        if current in positions:
            return positions[current]
        current = current[:-1]
    return positions.get((), (1, 1))
