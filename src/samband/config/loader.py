"""Read a config file: YAML → pydantic models, every error as ``FILE:LINE:COLUMN``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from samband.config.model import Config
from samband.config.yaml_lines import Positions, load_with_positions, position_of
from samband.errors import ConfigError, Problem


class LoadedConfig:
    """A config with the positions of its nodes, for messages that point into the file."""

    def __init__(self, config: Config, positions: Positions, file: str) -> None:
        self.config, self.positions, self.file = config, positions, file

    def problem(
        self,
        path: tuple[str | int, ...],
        message: str,
        hint: str | None = None,
        severity: str = "error",
    ) -> Problem:
        line, column = position_of(self.positions, path)
        return Problem(self.file, line, column, message, hint, severity)


def parse_config(text: str, file: str = "<config>") -> LoadedConfig:
    """Parse config text; raise ConfigError listing every problem."""
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
    try:
        config = Config.model_validate(data)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            loc = tuple(part for part in error["loc"] if not str(part).startswith("function-"))
            line, column = position_of(positions, loc)
            where = ".".join(str(p) for p in loc)
            problems.append(Problem(file, line, column, f"{where}: {_message(error)}"))
        raise ConfigError(problems) from None
    config.path = str(Path(file).resolve()) if file != "<config>" else None
    return LoadedConfig(config, positions, file)


def _message(error: Any) -> str:
    kind, msg = error.get("type", ""), error.get("msg", "")
    if kind == "missing":
        return "this key is required"
    if kind == "extra_forbidden":
        return "unknown key"
    if msg.startswith("Value error, "):
        return msg[len("Value error, ") :]
    return str(msg)


def read_config(path: str | os.PathLike[str]) -> LoadedConfig:
    file = str(path)
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
    return parse_config(text, file)


def load_config(path: str | os.PathLike[str]) -> Config:
    """The config in ``path`` (``${VAR}`` references stay unresolved until a run)."""
    return read_config(path).config


def base_dir(config: Config) -> str:
    """The folder relative paths of a config are resolved against."""
    return str(Path(config.path).parent) if config.path else os.getcwd()
