"""Read a config file: YAML → pydantic models, every error as ``FILE:LINE:COLUMN``."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from samband.config.model import Config
from samband.config.yaml_lines import Positions, load_with_positions, position_of
from samband.errors import ConfigError, Problem
from samband.plugin.settings import error_text, misspelt_in, unknown_key_problem


class LoadedConfig:
    """A config with the positions of its nodes, for messages that point into the file.

    A config read leniently (:func:`read_lenient`) holds what could be read of a file
    with mistakes: ``problems`` lists the mistakes, and the parts they made unusable (an
    unknown key, a dataflow without a target) were left out, so that the semantic checks
    still see the rest.  ``index_maps`` then turns a list index of the config back into
    the index of that item in the file.
    """

    def __init__(
        self,
        config: Config,
        positions: Positions,
        file: str,
        problems: list[Problem] | None = None,
        index_maps: dict[tuple[str | int, ...], list[int]] | None = None,
    ) -> None:
        self.config, self.positions, self.file = config, positions, file
        self.problems = problems or []
        self.index_maps = index_maps or {}
        # where the file's mistakes were left out, and the findings they would cause
        # (a filter whose misspelt `where` was left out "has no where")
        self.dropped: set[tuple[str | int, ...]] = set()
        self.consequences: set[int] = set()
        self.text = ""  # the file's text, when it was read from one

    def in_file(self, path: tuple[str | int, ...]) -> tuple[str | int, ...]:
        """``path`` in the config → the same node's path in the file."""
        return _in_file(self.index_maps, path)

    def problem(
        self,
        path: tuple[str | int, ...],
        message: str,
        hint: str | None = None,
        severity: str = "error",
    ) -> Problem:
        in_file = self.in_file(path)
        line, column = position_of(self.positions, in_file)
        found = Problem(self.file, line, column, message, hint, severity)
        if any(gone[: len(in_file)] == in_file for gone in self.dropped):
            self.consequences.add(id(found))
        return found


def _in_file(
    index_maps: dict[tuple[str | int, ...], list[int]], path: tuple[str | int, ...]
) -> tuple[str | int, ...]:
    result: tuple[str | int, ...] = ()
    for part in path:
        kept = index_maps.get(result)
        if kept is not None and isinstance(part, int) and 0 <= part < len(kept):
            part = kept[part]
        result = (*result, part)
    return result


def parse_config(text: str, file: str = "<config>") -> LoadedConfig:
    """Parse config text; raise ConfigError listing every problem."""
    loaded = parse_lenient(text, file)
    if loaded.problems:
        raise ConfigError(loaded.problems)
    return loaded


def parse_lenient(text: str, file: str = "<config>") -> LoadedConfig:
    """Parse config text; every mistake of the file's shape is in ``problems`` and the
    rest of the file is read (ConfigError only when nothing can be: not YAML, not a
    mapping, no ``systems``)."""
    try:
        data, positions = load_with_positions(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line, column = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ConfigError(
            [Problem(file, line, column, f"not valid YAML: {exc.problem or exc}")]
        ) from None
    if not isinstance(data, dict):
        raise ConfigError([Problem(file, 1, 1, "the config must be a mapping with 'systems:'")])
    config, problems, index_maps, dropped = _validate_leniently(data, positions, file)
    if config is None:
        raise ConfigError(problems)
    config.path = str(Path(file).resolve()) if file != "<config>" else None
    loaded = LoadedConfig(config, positions, file, problems, index_maps)
    loaded.dropped = dropped
    loaded.text = text
    return loaded


def _validate_leniently(
    data: dict[str, Any], positions: Positions, file: str
) -> tuple[
    Config | None,
    list[Problem],
    dict[tuple[str | int, ...], list[int]],
    set[tuple[str | int, ...]],
]:
    """Validate ``data``; leave out what is refused and validate again, until the rest is
    a config.  Every refusal becomes one problem, pointing into the file."""
    data = copy.deepcopy(data)
    problems: list[Problem] = []
    seen: set[tuple[tuple[str | int, ...], str]] = set()
    index_maps: dict[tuple[str | int, ...], list[int]] = {}
    dropped_values: set[tuple[str | int, ...]] = set()  # refused values, left to defaults
    dropped: set[tuple[str | int, ...]] = set()
    for _ in range(50):
        try:
            return Config.model_validate(data), problems, index_maps, dropped
        except ValidationError as exc:
            errors = exc.errors()
        removals: list[tuple[str | int, ...]] = []
        misspelt = misspelt_in(errors)
        for error in errors:
            loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
            in_file = _in_file(index_maps, loc)
            if error["type"] == "missing" and (in_file in dropped_values or loc[:-1] in misspelt):
                removals.append(loc[:-1])  # its value was refused: the object goes too
                continue
            key = (in_file, _message(error))
            if key not in seen:
                seen.add(key)
                line, column = position_of(positions, in_file)
                where = ".".join(str(p) for p in in_file)
                hint = _unknown_key_hint(loc) if error["type"] == "extra_forbidden" else None
                problems.append(Problem(file, line, column, f"{where}: {key[1]}", hint))
            if error["type"] == "missing":
                removals.append(loc[:-1])
            else:
                removals.append(loc)
                dropped_values.add(in_file)
        if not removals or any(len(loc) == 0 or loc == ("systems",) for loc in removals):
            return None, problems, index_maps, dropped
        dropped.update(_in_file(index_maps, loc) for loc in removals)
        _remove(data, removals, index_maps)
    return None, problems, index_maps, dropped


def _unknown_key_hint(loc: tuple[str | int, ...]) -> str:
    found = unknown_key_problem(Config, loc)
    return found.hint or ""


def _remove(
    data: Any,
    locs: list[tuple[str | int, ...]],
    index_maps: dict[tuple[str | int, ...], list[int]],
) -> None:
    """Delete the nodes at ``locs`` (keys of mappings, items of lists)."""
    for loc in sorted(set(locs), key=lambda at: (len(at), [str(p) for p in at]), reverse=True):
        parent: Any = data
        for part in loc[:-1]:
            try:
                parent = parent[part]
            except (KeyError, IndexError, TypeError):
                parent = None
                break
        last = loc[-1]
        if isinstance(parent, dict):
            parent.pop(last, None)
        elif isinstance(parent, list) and isinstance(last, int) and 0 <= last < len(parent):
            list_path = _in_file(index_maps, loc[:-1])
            kept = index_maps.setdefault(list_path, list(range(len(parent))))
            del parent[last]
            del kept[last]


def _message(error: Any) -> str:
    kind = error.get("type", "")
    if kind == "missing":
        return "this key is required"
    if kind == "extra_forbidden":
        return "unknown key"
    return error_text(error)


def read_config(path: str | os.PathLike[str]) -> LoadedConfig:
    file = str(path)
    return parse_config(_read_text(file), file)


def _read_text(file: str) -> str:
    try:
        raw = Path(file).read_bytes()
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise ConfigError(
            [Problem(file, line, column, "not UTF-8 text", "save the file as UTF-8")]
        ) from None
    except FileNotFoundError:
        raise ConfigError([Problem(file, 1, 1, "the config file does not exist")]) from None
    except OSError as exc:
        raise ConfigError(
            [Problem(file, 1, 1, f"cannot read the config file: {exc.strerror}")]
        ) from None
    return text


def read_lenient(path: str | os.PathLike[str]) -> LoadedConfig:
    """The config at ``path`` as far as it can be read, its shape's mistakes in
    ``problems`` (see :func:`parse_lenient`)."""
    file = str(path)
    return parse_lenient(_read_text(file), file)


def load_config(path: str | os.PathLike[str]) -> Config:
    """The config in ``path`` (``${VAR}`` references stay unresolved until a run)."""
    return read_config(path).config


def base_dir(config: Config) -> str:
    """The folder relative paths of a config are resolved against."""
    return str(Path(config.path).parent) if config.path else os.getcwd()
