"""Systems whose kind `samband docs import` could not tell: ``kind: todo``.

A document may name a system Samband has no connector for ("Customcrm").  The importer
writes it with the placeholder kind ``todo``, so that the config still generates its
documents again; ``samband validate`` warns about it (with what to do), and a run refuses
every dataflow that touches such a system before anything is read or written.
"""

from __future__ import annotations

import re
from pathlib import Path

from samband.config.loader import LoadedConfig
from samband.config.model import Config
from samband.errors import Problem

TODO_KIND = "todo"


def is_todo(config: Config, system_id: str) -> bool:
    system = config.systems.get(system_id)
    return system is not None and system.kind == TODO_KIND


def _choose_hint() -> str:
    from samband.plugin import all_kinds

    kinds = ", ".join(k for k in all_kinds(include_test_only=False))
    return (
        f"set its kind ({kinds}) and the settings of its entity types, "
        "then run `samband validate` again"
    )


def todo_warnings(loaded: LoadedConfig) -> list[Problem]:
    """One warning per system still of kind ``todo``, at its ``kind:`` line."""
    config = loaded.config
    problems: list[Problem] = []
    for system_id, system in config.systems.items():
        if system.kind != TODO_KIND:
            continue
        using = sum(
            1 for flow in config.dataflows if system_id in (flow.source_system, flow.target_system)
        )
        problems.append(
            loaded.problem(
                ("systems", system_id, "kind"),
                f"system {system_id!r} has no kind yet (a TODO left by `samband docs import`); "
                f"its {using} dataflow(s) generate documents but cannot sync",
                _choose_hint(),
                "warning",
            )
        )
    return problems


_TODO_COMMENT = re.compile(r"(?:^|\s)#\s*TODO\b:?\s*(?P<what>.*)$")


def todo_comments(loaded: LoadedConfig, reported: set[int]) -> list[Problem]:
    """A warning for each ``# TODO`` comment of the file (what `samband docs import` leaves
    to fill in: a tenant's address, the tables of a system) on a line no other problem
    names already."""
    try:
        text = Path(loaded.file).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return []  # parsed from text, or gone since: nothing to point at
    problems = []
    for number, line in enumerate(text.split("\n"), start=1):
        match = _TODO_COMMENT.search(line)
        if match is None or number in reported:
            continue
        what = match.group("what").strip() or "fill in what this line needs"
        problems.append(
            Problem(
                loaded.file,
                number,
                match.start() + 1 + (line[match.start()] != "#"),
                f"TODO left by `samband docs import`: {what}",
                "fill it in and remove the comment",
                "warning",
            )
        )
    return problems


def todo_refusals(loaded: LoadedConfig) -> list[Problem]:
    """One error per dataflow that touches a ``todo`` system: what a run refuses."""
    config = loaded.config
    problems: list[Problem] = []
    for index, flow in enumerate(config.dataflows):
        for side in ("source", "target"):
            system_id = getattr(flow, f"{side}_system")
            if is_todo(config, system_id):
                problems.append(
                    loaded.problem(
                        ("dataflows", index, side),
                        f"dataflow {flow.key!r} cannot run: system {system_id!r} has no kind "
                        "yet (kind: todo, left by `samband docs import`)",
                        f"choose the kind of {system_id!r} (`samband validate` says how), "
                        "or remove the dataflow",
                    )
                )
                break
    return problems
