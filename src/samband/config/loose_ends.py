"""Warnings about what a config still leaves open: ``${VAR}`` references nothing sets, and
the ``TODO`` marks ``samband docs import`` writes for what a document cannot say."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Mapping

from samband.config.loader import LoadedConfig
from samband.errors import Problem

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(:-[^}]*)?\}")
# a mark: `# TODO`, `TODO:` or a value that is only TODO; not a sentence that mentions it
# ("Fill in what is marked TODO, then …", the header `docs import` writes)
_TODO = re.compile(r"#\s*TODO\b|\bTODO\s*(?::|$)")
# the kinds `docs import` writes where a document does not say which system it is
PLACEHOLDER_KINDS = ("todo", "unknown")


def unset_references(
    loaded: LoadedConfig, environ: Mapping[str, str] | None = None
) -> list[Problem]:
    """A warning for each ``${VAR}`` (without a ``:-default``) that neither the
    environment nor the keyring sets: a run would stop at it."""
    from samband.secrets import keyring_credential

    env = os.environ if environ is None else environ
    problems: list[Problem] = []
    known: dict[str, bool] = {}
    for path, text in _strings(loaded.config.model_dump(by_alias=True, exclude={"path"}), ()):
        for match in _REFERENCE.finditer(text):
            name, default = match.group(1), match.group(2)
            if default is not None:
                continue
            if name not in known:
                known[name] = name in env or keyring_credential(name) is not None
            if not known[name]:
                problems.append(
                    loaded.problem(
                        path,
                        f"the environment variable {name} is not set",
                        f"export {name}=... (or store it in the keyring) before a run",
                        "warning",
                    )
                )
    return problems


def _strings(
    value: object, path: tuple[str | int, ...]
) -> Iterator[tuple[tuple[str | int, ...], str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def todo_marks(loaded: LoadedConfig) -> list[Problem]:
    """A warning for each line that holds a ``TODO`` (in a value or a comment)."""
    problems: list[Problem] = []
    for number, line in enumerate(loaded.text.splitlines(), start=1):
        found = _TODO.search(line)
        if found is None:
            continue
        said = line[found.end() :].strip(" :#-\t")
        problems.append(
            Problem(
                loaded.file,
                number,
                found.start() + 1,
                "a TODO is left here" + (f": {said}" if said else ""),
                "fill it in (samband docs import marks what a document does not say)",
                "warning",
            )
        )
    return problems
