"""Semantic checks of a config: systems, types, properties, conversions, secrets."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from samband.config.env import is_reference_only
from samband.config.loader import LoadedConfig, read_lenient
from samband.config.loose_ends import PLACEHOLDER_KINDS, todo_marks, unset_references
from samband.config.model import Dataflow, EntityTypeConfig, PropertyMapping, SystemConfig
from samband.config.todo import TODO_KIND, todo_comments, todo_refusals, todo_warnings
from samband.errors import ConfigError, ContractError, Problem, SambandError
from samband.plugin import KindDescriptor, all_kinds, settings_problems
from samband.plugin.settings import SettingProblem, closest
from samband.types import DataType, round_trips

if TYPE_CHECKING:
    # the connectors' schema types; the connector itself is reached through the kind's
    # descriptor, imported on first use
    from samband.connectors.base import EntityType, Property

__all__ = [
    "check",
    "check_offline",
    "closest",
    "describe_systems",
    "load_valid",
    "validate_file",
]


def _hint(name: str, candidates: Iterable[str], what: str) -> str:
    options = sorted(candidates)
    best = closest(name, options)
    if best:
        return f"did you mean {best!r}?"
    return f"known {what}: {', '.join(options) or '(none)'}"


def describe_systems(
    loaded: LoadedConfig,
) -> tuple[dict[str, dict[str, EntityType]], list[Problem]]:
    """The entity types of each configured system, with problems found on the way."""
    problems: list[Problem] = []
    schemas: dict[str, dict[str, EntityType]] = {}
    from samband.config.loader import base_dir

    labels: dict[str, str] = {}
    for system_id, system in loaded.config.systems.items():
        where = ("systems", system_id)
        label = loaded.config.label(system_id)
        if label in labels:
            problems.append(
                loaded.problem(
                    (*where, "label") if system.label is not None else where,
                    f"systems {labels[label]!r} and {system_id!r} have the same label {label!r}",
                    "documents name systems by label; give each system its own",
                    "warning",
                )
            )
        labels.setdefault(label, system_id)
        problems.extend(_label_problems(loaded, system_id, system))
        if system.kind == TODO_KIND:
            continue  # left by `samband docs import`: a warning of its own (config.todo)
        kinds = all_kinds()
        if system.kind in PLACEHOLDER_KINDS and system.kind not in kinds:
            problems.append(
                loaded.problem(
                    (*where, "kind"),
                    f"system {system_id!r} has no kind yet ({system.kind!r} is a placeholder "
                    "left by samband docs import)",
                    f"write its kind: {', '.join(k for k in kinds if not kinds[k].test_only)}",
                )
            )
            continue
        if system.kind not in kinds:
            problems.append(
                loaded.problem(
                    (*where, "kind"),
                    f"unknown system kind {system.kind!r}",
                    _hint(system.kind, kinds, "kinds"),
                )
            )
            continue
        descriptor = kinds[system.kind]
        refused = _settings_problems(loaded, system_id, system, descriptor)
        problems.extend(refused)
        usable = _without_refused(loaded, system, descriptor)
        for note in descriptor.connector_class().config_warnings(usable):
            problems.append(
                loaded.problem((*where, *note.path), note.message, note.hint, "warning")
            )
        if any(p.severity == "error" for p in refused):
            # the dataflows are still checked against what can be read of its schema
            with contextlib.suppress(Exception):  # the settings' own errors say what is wrong
                schemas[system_id] = descriptor.connector_class().describe(usable)
            continue
        if system.label is not None and system.label.strip() == "":
            problems.append(
                loaded.problem(
                    (*where, "label"),
                    f"system {system_id!r} has an empty label",
                    "documents will show double spaces where the label stands",
                    "warning",
                )
            )
        for key, value in system.credentials.items():
            if not is_reference_only(str(value)):
                problems.append(
                    loaded.problem(
                        (*where, "credentials", key),
                        f"credential {key!r} of {system_id!r} is written in the file",
                        "use ${ENV_VAR} and set it in the environment or the keyring",
                        "warning",
                    )
                )
        for key, value in system.settings().items():
            if isinstance(value, str) and _has_plain_password(value):
                problems.append(
                    loaded.problem(
                        (*where, key),
                        f"{key!r} of {system_id!r} holds a password written in the file",
                        "write the password as ${ENV_VAR} inside the URL",
                        "warning",
                    )
                )
        system_copy = system.model_copy()
        if system_copy.model_extra is not None:
            system_copy.model_extra.setdefault("base_dir", base_dir(loaded.config))
        try:
            connector = descriptor.connector_class()
            schemas[system_id] = connector.describe(system_copy)
        except ContractError as exc:  # the system's schema does not fit the config
            message = str(exc).split(" — ", 1)[0].removeprefix(f"system {exc.system!r}: ")
            problems.append(loaded.problem(where, f"system {system_id!r}: {message}", exc.hint))
        except SambandError as exc:
            problems.append(
                loaded.problem(
                    where,
                    f"cannot read the schema of {system_id!r}: {exc}",
                    "property names are not checked for this system",
                    "warning",
                )
            )
        except Exception as exc:  # a connector kind that cannot describe itself offline
            problems.append(
                loaded.problem(
                    where,
                    f"cannot read the schema of {system_id!r}: {exc}",
                    "property names are not checked for this system",
                    "warning",
                )
            )
    return schemas, problems


def _without_refused(
    loaded: LoadedConfig, system: SystemConfig, descriptor: KindDescriptor
) -> SystemConfig:
    """The system's config without the settings its kind refuses (already reported), so
    that what can be checked of the rest still is."""
    from samband.config.loader import base_dir

    settings = system.settings()
    for found in settings_problems(descriptor.settings, settings):
        if found.path:
            settings.pop(str(found.path[0]), None)
    types: dict[str, EntityTypeConfig] = {}
    for name, type_config in system.entity_types.items():
        kept = type_config.settings()
        for found in settings_problems(descriptor.entity_type_settings, kept):
            if found.path:
                kept.pop(str(found.path[0]), None)
        types[name] = EntityTypeConfig.model_validate(kept)
    settings["base_dir"] = base_dir(loaded.config)
    return SystemConfig.model_validate(
        {
            **settings,
            "kind": system.kind,
            "label": system.label,
            "credentials": system.credentials,
            "entity_types": types,
            "priority": system.priority,
        }
    )


def _settings_problems(
    loaded: LoadedConfig, system_id: str, system: SystemConfig, kind: KindDescriptor
) -> list[Problem]:
    """The system's settings and its entity types' settings, by the kind's typed models."""
    where = ("systems", system_id)
    problems = [
        loaded.problem((*where, *found.path), _setting_text(system_id, found), found.hint)
        for found in settings_problems(
            kind.settings, system.settings(), [*SystemConfig.model_fields]
        )
    ]
    for type_name, type_config in system.entity_types.items():
        for found in settings_problems(
            kind.entity_type_settings, type_config.settings(), [*EntityTypeConfig.model_fields]
        ):
            problems.append(
                loaded.problem(
                    (*where, "entity_types", type_name, *found.path),
                    _setting_text(f"{system_id}.{type_name}", found),
                    found.hint,
                )
            )
    return problems


def _setting_text(owner: str, found: SettingProblem) -> str:
    """``crm.base_url: ...``: a refused value names its key (an unknown key names itself)."""
    keys = ".".join(str(part) for part in found.path[:-1] if found.message.startswith("unknown"))
    if not found.message.startswith("unknown key"):
        keys = ".".join(str(part) for part in found.path)
    return f"{owner}{'.' + keys if keys else ''}: {found.message}"


_URL_PASSWORD = re.compile(r"^[A-Za-z][A-Za-z0-9+.\-]*://[^/@:\s]*:([^@/\s]+)@")


def _has_plain_password(value: str) -> bool:
    match = _URL_PASSWORD.match(value.strip())
    return match is not None and not is_reference_only(match.group(1))


def _label_problems(loaded: LoadedConfig, system_id: str, system: SystemConfig) -> list[Problem]:
    """A label on several lines would break a document's title (both validate and docs)."""
    if system.label is not None and "\n" in system.label:
        return [
            loaded.problem(
                ("systems", system_id, "label"),
                f"the label of {system_id!r} spans several lines",
                "documents need a label on one line",
            )
        ]
    return []


def check(loaded: LoadedConfig) -> list[Problem]:
    """Every problem of a parsed config (errors and warnings)."""
    config = loaded.config
    schemas, found = describe_systems(loaded)
    problems = [*loaded.problems, *found, *todo_warnings(loaded), *unset_references(loaded)]
    for index, flow in enumerate(config.dataflows):
        problems.extend(_check_dataflow(loaded, index, flow, schemas))
    problems.extend(todo_comments(loaded, {p.line for p in problems}))
    reported = {p.line for p in problems}
    problems.extend(mark for mark in todo_marks(loaded) if mark.line not in reported)
    kept = [p for p in problems if id(p) not in loaded.consequences]
    return sorted(kept, key=lambda p: p.line)


def check_offline(loaded: LoadedConfig) -> list[Problem]:
    """What documents need, checked without any kind's connector: known kinds, the systems
    the dataflows name, texts on one line (no system, variable or file is touched; what
    only a run needs is `validate`'s)."""
    config = loaded.config
    kinds = all_kinds()
    problems = [
        loaded.problem(
            ("systems", system_id, "kind"),
            f"unknown system kind {system.kind!r}",
            _hint(system.kind, kinds, "kinds"),
        )
        for system_id, system in config.systems.items()
        if system.kind not in kinds and system.kind != TODO_KIND
    ]
    for system_id, system in config.systems.items():
        problems.extend(_label_problems(loaded, system_id, system))
    for index, flow in enumerate(config.dataflows):
        where: tuple[str | int, ...] = ("dataflows", index)
        named = [("source", flow.source_system), ("target", flow.target_system)]
        if flow.create_when is not None:
            into = flow.create_when.synchronized_into.partition(".")[0]
            named.append(("create_when", into))
        for key, system_id in named:
            if system_id not in config.systems:
                problems.append(
                    loaded.problem(
                        (*where, key),
                        f"unknown system {system_id!r}",
                        _hint(system_id, config.systems, "systems"),
                    )
                )
        texts = [
            (key, getattr(flow, key))
            for key in (
                "source_label",
                "target_label",
                "source_system_label",
                "target_system_label",
            )
        ]
        if flow.filter is not None:
            texts.append(("filter", flow.filter.text.strip()))
        for key, value in texts:
            if value is not None and "\n" in value:
                problems.append(
                    loaded.problem(
                        (*where, key), f"{key} spans several lines", "documents need it on one line"
                    )
                )
    return problems


def _check_dataflow(
    loaded: LoadedConfig, index: int, flow: Dataflow, schemas: dict[str, dict[str, EntityType]]
) -> list[Problem]:
    config = loaded.config
    where = ("dataflows", index)
    problems: list[Problem] = []
    sides: dict[str, EntityType | None] = {}
    for side in ("source", "target"):
        system_id, type_name = getattr(flow, side).split(".", 1)
        if system_id not in config.systems:
            problems.append(
                loaded.problem(
                    (*where, side),
                    f"unknown system {system_id!r}",
                    _hint(system_id, config.systems, "systems"),
                )
            )
            sides[side] = None
            continue
        types = schemas.get(system_id)
        if types is None:
            sides[side] = None
            continue
        if type_name not in types:
            problems.append(
                loaded.problem(
                    (*where, side),
                    f"system {system_id!r} has no entity type {type_name!r}",
                    _hint(type_name, types, "entity types"),
                )
            )
            sides[side] = None
            continue
        sides[side] = types[type_name]
    source, target = sides["source"], sides["target"]

    if target is not None and target.read_only:
        problems.append(
            loaded.problem(
                (*where, "target"),
                f"{flow.target} is read-only: the dataflow would have to write it",
                "swap source and target, or choose a writable type",
            )
        )
    if flow.on_delete == "propagate" and target is not None and not target.can_delete:
        problems.append(
            loaded.problem(
                (*where, "on_delete"),
                f"{flow.target} records cannot be deleted through the API",
                "use on_delete: archive (with an archive status) or unlink",
            )
        )
    if flow.on_delete == "archive" and target is not None and target.archive is None:
        problems.append(
            loaded.problem(
                (*where, "on_delete"),
                f"{flow.target} has no archive flag configured",
                "set the entity type's archive: {property: ..., value: ...}",
            )
        )
    if flow.priority is not None and flow.priority not in (flow.source_system, flow.target_system):
        problems.append(
            loaded.problem(
                (*where, "priority"),
                f"priority {flow.priority!r} is neither {flow.source_system!r} nor "
                f"{flow.target_system!r}",
            )
        )
    for key in ("source_label", "target_label", "source_system_label", "target_system_label"):
        value = getattr(flow, key)
        if value is not None and "\n" in value:
            problems.append(
                loaded.problem(
                    (*where, key), f"{key} spans several lines", "documents need it on one line"
                )
            )
    if flow.filter is not None and "\n" in flow.filter.text.strip():
        problems.append(
            loaded.problem(
                (*where, "filter", "text"),
                "the filter text spans several lines",
                "documents need it on one line",
            )
        )
    if flow.create_when is not None:
        rule_loc = (*where, "create_when")
        if not flow.create:
            problems.append(
                loaded.problem(
                    rule_loc,
                    "create_when has no effect: this dataflow has create: false",
                    "drop create: false to create targets under this condition",
                    "warning",
                )
            )
        into = flow.create_when.synchronized_into
        into_system, _, into_type = into.partition(".")
        into_loc = (*rule_loc, "synchronized_into")
        if into_system not in config.systems:
            problems.append(
                loaded.problem(
                    into_loc,
                    f"unknown system {into_system!r}",
                    _hint(into_system, config.systems, "systems"),
                )
            )
        elif into_type and into_system in schemas and into_type not in schemas[into_system]:
            problems.append(
                loaded.problem(
                    into_loc,
                    f"system {into_system!r} has no entity type {into_type!r}",
                    _hint(into_type, schemas[into_system], "entity types"),
                )
            )
        source_types = schemas.get(flow.source_system)
        for c_index, type_name in enumerate(flow.create_when.connected_to):
            if source_types is not None and type_name not in source_types:
                problems.append(
                    loaded.problem(
                        (*rule_loc, "connected_to", c_index),
                        f"system {flow.source_system!r} has no entity type {type_name!r}",
                        "connected_to lists entity types of the source system; "
                        + _hint(type_name, source_types, "entity types"),
                    )
                )
    if flow.filter is not None and not flow.filter.where:
        problems.append(
            loaded.problem(
                (*where, "filter"),
                "the filter has text but no 'where': every record passes",
                "add where: {property: value} for the condition the text describes",
                "warning",
            )
        )
    for share_key in ("max_delete_share", "max_change_share"):
        share = getattr(flow, share_key)
        if share is not None and not 0 < share <= 1:
            problems.append(loaded.problem((*where, share_key), f"{share_key} must be in (0, 1]"))

    def check_path(
        etype: EntityType | None, path: str, loc: tuple[str | int, ...]
    ) -> DataType | None:
        if etype is None:
            return None
        prop = etype.property(path)
        if prop is None:
            if etype.properties and not etype.open_schema:
                problems.append(
                    loaded.problem(
                        loc,
                        f"{etype.name} has no property {path!r}",
                        _hint(path, etype.properties, "properties"),
                    )
                )
            return None
        if prop.unreadable:
            reason, _, hint = prop.unreadable.partition("; ")
            problems.append(
                loaded.problem(
                    loc,
                    f"{etype.name}.{path} cannot be read: {reason}",
                    hint or "drop the mapping",
                )
            )
        return prop.type

    for m_index, combination in enumerate(flow.match):
        for t_index, term in enumerate(combination):
            term_loc = (*where, "match", m_index, t_index)
            check_path(source, term.source, (*term_loc, "from"))
            check_path(target, term.target, (*term_loc, "to"))
    seen_targets: dict[str, int] = {}
    for p_index, prop in enumerate(flow.properties):
        loc = (*where, "properties", p_index)
        source_type = check_path(source, prop.source, (*loc, "from"))
        target_type = check_path(target, prop.target, (*loc, "to"))
        if prop.target in seen_targets:
            problems.append(
                loaded.problem(
                    (*loc, "to"),
                    f"{prop.target!r} is mapped twice in this dataflow",
                    f"the first mapping is entry {seen_targets[prop.target] + 1}",
                )
            )
        seen_targets[prop.target] = p_index
        declared = prop.type or target_type
        if declared and source_type and not round_trips(source_type, declared):
            problems.append(
                loaded.problem(
                    (*loc, "type"),
                    f"{prop.source} ({source_type}) → {prop.target} ({declared}) "
                    "cannot round-trip: edits flowing back may lose information",
                    "use a type both sides can hold",
                    "warning",
                )
            )
        problems.extend(_declared_vs_target(loaded, loc, flow, prop, target_type))
        if prop.type is DataType.REFERENCE and source is not None and prop.source_ref is None:
            # the target side is inferred from the dataflow the referenced type flows into
            known = source.property(prop.source)
            if known is None or not known.references:
                problems.append(
                    loaded.problem(
                        (*loc, "from"),
                        f"the entity type {prop.source!r} refers to is not known",
                        "add source_ref: <entity type> to the mapping",
                        "warning",
                    )
                )
        target_prop = target.property(prop.target) if target is not None else None
        if prop.type is DataType.REFERENCE and prop.target_ref is None:
            problems.extend(_ambiguous_reference(loaded, loc, flow, prop, source, target_prop))
        if target_prop is not None and target_prop.read_only and prop.direction != "backward":
            problems.append(
                loaded.problem(
                    (*loc, "to"),
                    f"{flow.target}.{prop.target} is read-only",
                    "map it in the other direction, or drop it",
                )
            )
    return problems


def _declared_vs_target(
    loaded: LoadedConfig,
    loc: tuple[str | int, ...],
    flow: Dataflow,
    prop: PropertyMapping,
    target_type: DataType | None,
) -> list[Problem]:
    """A mapping's declared ``type:`` that the target's field (a SQL column's reflected
    type) cannot hold and give back the same: the values that would come back changed
    (``"008"`` into an INTEGER column) are refused and their records quarantined.  A
    reference is left out: its values are the target's own ids, translated by the engine."""
    declared = prop.type
    if declared is None or target_type is None or declared is DataType.REFERENCE:
        return []
    if prop.direction == "backward" or round_trips(declared, target_type):
        return []
    return [
        loaded.problem(
            (*loc, "type"),
            f"{prop.target} is declared {declared} but {flow.target}.{prop.target} holds "
            f"{target_type}: the values of type {declared} it cannot give back unchanged "
            "are refused and their records quarantined",
            f"declare type: {target_type}, or give {prop.target} a type that holds {declared} "
            "values",
            "warning",
        )
    ]


def _ambiguous_reference(
    loaded: LoadedConfig,
    loc: tuple[str | int, ...],
    flow: Dataflow,
    prop: PropertyMapping,
    source: EntityType | None,
    target_prop: Property | None,
) -> list[Problem]:
    """A reference whose target type is inferred (no ``target_ref``) from the dataflows of
    the parent type: refused when the parent flows into several types of the target system,
    where the engine would pick one of them."""
    if target_prop is not None and target_prop.references:
        return []
    known = source.property(prop.source) if source is not None else None
    parent = prop.source_ref or (known.references if known is not None else None)
    if parent is None:
        return []
    into = sorted(
        {
            other.target_type
            for other in loaded.config.dataflows
            if other.source == f"{flow.source_system}.{parent}"
            and other.target_system == flow.target_system
        }
        | {
            other.source_type
            for other in loaded.config.dataflows
            if other.target == f"{flow.source_system}.{parent}"
            and other.source_system == flow.target_system
        }
    )
    if len(into) < 2:
        return []
    return [
        loaded.problem(
            (*loc, "to"),
            f"{flow.source_system}.{parent} flows into {len(into)} types of "
            f"{flow.target_system} ({', '.join(into)}): which one {prop.target!r} refers to "
            "is ambiguous",
            f"add target_ref: <one of {', '.join(into)}> to the mapping",
        )
    ]


def validate_file(path: str | os.PathLike[str]) -> list[Problem]:
    """Every problem of the config at ``path``; raises nothing for config mistakes."""
    try:
        loaded = read_lenient(path)
    except ConfigError as exc:
        return exc.problems
    return check(loaded)


def load_valid(path: str | os.PathLike[str]) -> LoadedConfig:
    """The config at ``path``, to run; raise ConfigError when it has errors (warnings pass)
    or a dataflow touches a system whose kind is still a TODO."""
    loaded = read_lenient(path)
    errors = [p for p in check(loaded) if p.severity == "error"] + todo_refusals(loaded)
    if errors:
        raise ConfigError(errors)
    return loaded
