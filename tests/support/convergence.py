"""The convergence harness: three systems, five dataflows, random edits, crashes, runs.

A *world* creates, edits, deletes and lists records in the systems behind the engine's
back (as their users would).  ``MemoryWorld`` uses memory systems; other worlds put a
real connector (SQL, REST, …) in the place of system ``B`` and reuse the same checks.

Dataflows (A = crm, B = erp, C = pms):

* F1 ``A.Company → B.Org`` (merge on org number)      — with F2: many-to-one
* F2 ``A.Dept → B.Org`` (merge on code)
* F3 ``A.Person → B.Contact`` (reference to the company) — a reference
* F4 ``B.Org → C.Account``                             — with F1: a chain A → B → C
* F5 ``A.Company → C.Client``                          — with F1: one-to-many
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any, Protocol

from hypothesis import Phase

from samband.config import parse_config
from samband.config.model import Config
from samband.kinds.memory.connector import dataset
from samband.store import Ref, Store, schema
from samband.store.rows import loads
from samband.types import coerce

# Shrinking a long stateful run can take many minutes; the failing steps are printed.
PHASES = [Phase.explicit, Phase.reuse, Phase.generate]
# CI runs a fixed set of examples (reproducible); local runs draw new ones each time.
DERANDOMIZE = os.environ.get("CI", "").lower() == "true"
# The long profile (make chaos) sets SAMBAND_CONVERGENCE_SCALE: so many times the examples.
SCALE = int(os.environ.get("SAMBAND_CONVERGENCE_SCALE", "1"))

FLOWS_YAML = """
dataflows:
  - id: F1
    source: crm.Company
    target: erp.Org
    match: [[{from: org, to: org_no}]]
    properties:
      - {from: name, to: title, type: string}
      - {from: org, to: org_no, type: string}
      - {from: phone, to: tel, type: string}
      - {from: address.city, to: city, type: string}
  - id: F2
    source: crm.Dept
    target: erp.Org
    match: [[{from: code, to: org_no, normalize: trim}]]
    properties:
      - {from: label, to: title, type: string}
      - {from: code, to: org_no, type: string}
  - id: F3
    source: crm.Person
    target: erp.Contact
    match: [[{from: email, to: mail}]]
    properties:
      - {from: first, to: given, type: string}
      - {from: email, to: mail, type: string}
      - {from: company_id, to: org_id, type: reference, source_ref: Company, target_ref: Org}
  - id: F4
    source: erp.Org
    target: pms.Account
    match: [[{from: org_no, to: org_no}]]
    properties:
      - {from: title, to: name, type: string}
      - {from: org_no, to: org_no, type: string}
  - id: F5
    source: crm.Company
    target: pms.Client
    properties:
      - {from: name, to: name, type: string}
"""

MEMORY_SYSTEMS = """
systems:
  crm:
    kind: memory
    entity_types: {Company: {external_ref: ext}, Person: {external_ref: ext}, Dept: {}}
  erp:
    kind: memory
    entity_types: {Org: {external_ref: ext}, Contact: {}}
  pms:
    kind: memory
    entity_types: {Account: {external_ref: ext}, Client: {external_ref: ext}}
"""


@dataclass(frozen=True)
class Variant:
    """One shape of the wide dataflows (:func:`wide_flows`): the config changes a user
    makes between runs."""

    f5_key: str | None = "F5"  # F5, renamed, or no id (then keyed by its types)
    f1_phone: bool = True  # F1 maps phone → tel (removed and added back)
    f2_normalize: str = "trim"  # the normalisation of F2's merge criteria
    f1_by_name: bool = False  # F1 also matches by name, a second combination


def wide_flows(variant: Variant = Variant()) -> str:
    """The five dataflows with every hard value class: exact decimals (F1 amount),
    integers past 64 bits (F5 count), references to the own type (F1 billed_to: self
    and cycles) besides the others, and the config changes of :class:`Variant`."""
    phone = "      - {from: phone, to: tel, type: string}\n" if variant.f1_phone else ""
    by_name = ", [{from: name, to: title}]" if variant.f1_by_name else ""
    f5_id = f"  - id: {variant.f5_key}\n    source" if variant.f5_key else "  - source"
    return f"""
dataflows:
  - id: F1
    source: crm.Company
    target: erp.Org
    match: [[{{from: org, to: org_no}}]{by_name}]
    properties:
      - {{from: name, to: title, type: string}}
      - {{from: org, to: org_no, type: string}}
{phone}      - {{from: address.city, to: city, type: string}}
      - {{from: amount, to: amount, type: decimal}}
      - {{from: billed_to, to: bill_to, type: reference, source_ref: Company, target_ref: Org}}
  - id: F2
    source: crm.Dept
    target: erp.Org
    match: [[{{from: code, to: org_no, normalize: {variant.f2_normalize}}}]]
    properties:
      - {{from: label, to: title, type: string}}
      - {{from: code, to: org_no, type: string}}
  - id: F3
    source: crm.Person
    target: erp.Contact
    match: [[{{from: email, to: mail}}]]
    properties:
      - {{from: first, to: given, type: string}}
      - {{from: email, to: mail, type: string}}
      - {{from: company_id, to: org_id, type: reference, source_ref: Company, target_ref: Org}}
  - id: F4
    source: erp.Org
    target: pms.Account
    match: [[{{from: org_no, to: org_no}}]]
    properties:
      - {{from: title, to: name, type: string}}
      - {{from: org_no, to: org_no, type: string}}
{f5_id}: crm.Company
    target: pms.Client
    properties:
      - {{from: name, to: name, type: string}}
      - {{from: count, to: count, type: integer}}
"""


# Which properties a world may edit, per (system, type), and how values are drawn.
EDITABLE: dict[tuple[str, str], list[str]] = {
    ("crm", "Company"): ["name", "phone", "address.city"],
    ("crm", "Dept"): ["label"],
    ("crm", "Person"): ["first"],
    ("erp", "Org"): ["title", "tel", "city"],
    ("erp", "Contact"): ["given"],
    ("pms", "Account"): ["name"],
    ("pms", "Client"): ["name"],
}


class SimulatedCrash(BaseException):
    """Raised inside a connector call to stand for a killed process."""


class CrashOnDemand:
    """Mixin for a real connector in a world: the operations the world lists in
    ``failures`` raise :class:`SimulatedCrash` once (``after_create``: after the create)."""

    world: Any

    def _maybe_crash(self, op: str) -> None:
        if op in self.world.failures:
            self.world.failures.remove(op)
            raise SimulatedCrash(f"crash in erp.{op}")
        for index, (failing, exc) in enumerate(getattr(self.world, "failing", [])):
            if failing == op:
                del self.world.failing[index]
                raise exc

    def read(self, entity_type: str, cursor: str | None) -> Any:
        self._maybe_crash("read")
        return super().read(entity_type, cursor)  # type: ignore[misc]

    def get(self, entity_type: str, record_id: str) -> Any:
        self._maybe_crash("get")
        return super().get(entity_type, record_id)  # type: ignore[misc]

    def create(self, entity_type: str, values: Any, external_ref: str | None = None) -> Any:
        self._maybe_crash("create")
        created = super().create(entity_type, values, external_ref)  # type: ignore[misc]
        self._maybe_crash("after_create")
        return created

    def update(self, entity_type: str, record_id: str, changes: Any, **options: Any) -> Any:
        self._maybe_crash("update")
        return super().update(entity_type, record_id, changes, **options)  # type: ignore[misc]


class EditDuringTheRun:
    """A progress display that, once the run starts planning (everything is read),
    plays a user editing a record in one of the systems."""

    def __init__(self, edit: Any) -> None:
        self.edit, self.done_editing = edit, False

    def phase(self, name: str, total: int | None = None) -> None:
        if name == "sync" and not self.done_editing:
            self.done_editing = True
            self.edit()

    def advance(self, count: int = 1) -> None:
        pass

    def done(self) -> None:
        pass


class World(Protocol):
    def config(self, store_url: str, flows: str = ...) -> Config: ...
    def fail_on(self, system: str, op: str, exc: BaseException) -> None: ...
    def clear_failures(self) -> None: ...
    def insert(self, system: str, etype: str, data: dict[str, Any]) -> str: ...
    def edit(self, system: str, etype: str, rid: str, changes: dict[str, Any]) -> None: ...
    def delete(self, system: str, etype: str, rid: str) -> None: ...
    def records(self, system: str, etype: str) -> dict[str, dict[str, Any]]: ...
    def crash_on(self, system: str, op: str) -> None: ...
    def connectors(self) -> dict[str, Any] | None: ...


# The properties of the wide dataflows a world may edit, besides EDITABLE's.
EDITABLE_WIDE: dict[tuple[str, str], list[str]] = {
    **EDITABLE,
    ("crm", "Company"): [*EDITABLE[("crm", "Company")], "amount", "count"],
    ("erp", "Org"): [*EDITABLE[("erp", "Org")], "amount"],
    ("pms", "Client"): ["name", "count"],
}


class MemoryWorld:
    def config(self, store_url: str, flows: str = FLOWS_YAML) -> Config:
        return parse_config(f"store: '{store_url}'\n{MEMORY_SYSTEMS}{flows}").config

    def fail_on(self, system: str, op: str, exc: BaseException) -> None:
        """The next ``op`` call of ``system`` raises ``exc`` (a write failing)."""
        dataset(system).inject_failure(op, exc)

    def clear_failures(self) -> None:
        for system in ("crm", "erp", "pms"):
            dataset(system).failures.clear()

    def insert(self, system: str, etype: str, data: dict[str, Any]) -> str:
        return dataset(system).insert(etype, data)

    def edit(self, system: str, etype: str, rid: str, changes: dict[str, Any]) -> None:
        dataset(system).edit(etype, rid, changes)

    def delete(self, system: str, etype: str, rid: str) -> None:
        dataset(system).remove(etype, rid)

    def records(self, system: str, etype: str) -> dict[str, dict[str, Any]]:
        return dataset(system).records(etype)

    def crash_on(self, system: str, op: str) -> None:
        def crash() -> None:
            raise SimulatedCrash(f"crash in {system}.{op}")

        dataset(system).inject_failure(op, crash)

    def connectors(self) -> dict[str, Any] | None:
        return None


def get(data: dict[str, Any], path: str) -> Any:
    current: Any = data
    for part in path.split("."):
        if not isinstance(current, dict):
            return None
        current = current.get(part)
    return current


@dataclass
class Edit:
    system: str
    etype: str
    rid: str
    path: str
    value: Any


def check_agreement(world: World, store: Store, config: Config) -> list[str]:
    """Every link agrees on every mapped property (references translated)."""
    problems: list[str] = []
    link_map: dict[str, set[str]] = {}
    for link in store.all_links():
        link_map.setdefault(link.source_ref, set()).add(link.target_ref)
        link_map.setdefault(link.target_ref, set()).add(link.source_ref)
    cache: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
    waiting = {(row["dataflow"], row["ref"]) for row in store.table_rows(schema.waiting)}

    def records(system: str, etype: str) -> dict[str, dict[str, Any]]:
        if (system, etype) not in cache:
            cache[(system, etype)] = world.records(system, etype)
        return cache[(system, etype)]

    for flow in config.dataflows:
        for link in store.all_links(flow.key):
            s_sys, s_type, s_id = Ref.parse(link.source_ref)
            t_sys, t_type, t_id = Ref.parse(link.target_ref)
            source = records(s_sys, s_type).get(s_id)
            target = records(t_sys, t_type).get(t_id)
            if source is None or target is None:
                problems.append(
                    f"{flow.key}: link {link.source_ref} ↔ {link.target_ref} to a missing record"
                )
                continue
            for prop in flow.properties:
                s_val, t_val = get(source, prop.source), get(target, prop.target)
                if prop.type is not None and prop.type.value == "reference":
                    if s_val in (None, "") and t_val not in (None, ""):
                        # the target's reference flows back only once its parent has a
                        # counterpart in the source; until then the child waits, and says
                        # so (a parent deleted since is reported: nothing to translate)
                        parent = Ref.text(t_sys, prop.target_ref, t_val)
                        counterpart = any(
                            r.startswith(f"{s_sys}:{prop.source_ref}:")
                            for r in link_map.get(parent, set())
                        )
                        ok = str(t_val) not in records(t_sys, str(prop.target_ref)) or (
                            not counterpart and (flow.key, link.source_ref) in waiting
                        )
                    elif s_val in (None, ""):
                        ok = t_val in (None, "")
                    elif str(s_val) not in records(s_sys, str(prop.source_ref)):
                        ok = True  # points at a deleted record: nothing to translate
                    elif t_val not in (None, "") and str(t_val) not in records(
                        t_sys, str(prop.target_ref)
                    ):
                        # the parent's counterpart was deleted in the target: the parent is
                        # unlinked until it changes again, the child keeps its old reference
                        ok = True
                    else:
                        wanted = {
                            Ref.parse(r).id
                            for r in link_map.get(Ref.text(s_sys, prop.source_ref, s_val), set())
                            if r.startswith(f"{t_sys}:{prop.target_ref}:")
                        }
                        # a parent without a counterpart (its counterpart was deleted in
                        # the target), or a target reference to a parent that has none in
                        # the source: the child waits for it, and says so
                        parent = Ref.text(t_sys, prop.target_ref, t_val)
                        counterpart = t_val in (None, "") or any(
                            r.startswith(f"{s_sys}:{prop.source_ref}:")
                            for r in link_map.get(parent, set())
                        )
                        ok = str(t_val) in wanted or (
                            (not wanted or not counterpart)
                            and (flow.key, link.source_ref) in waiting
                        )
                else:
                    ok = same_value(coerce(s_val, prop.type), coerce(t_val, prop.type))
                if not ok:
                    problems.append(
                        f"{flow.key}: {link.source_ref}.{prop.source}={s_val!r} but "
                        f"{link.target_ref}.{prop.target}={t_val!r}"
                    )
    return problems


def same_value(a: Any, b: Any) -> bool:
    """Equal, an empty text and no value being the same."""
    return a == b or (a in (None, "") and b in (None, ""))


def comparable(value: Any) -> Any:
    """A value as an edit check compares it: numbers by value (``"0.10"`` is 0.1, a
    stored ``{"$decimal": …}`` too), anything else as text."""
    if isinstance(value, dict) and set(value) == {"$decimal"}:
        value = value["$decimal"]
    if not isinstance(value, bool) and isinstance(value, int | float | str | Decimal):
        try:
            number = Decimal(str(value).strip())
        except InvalidOperation:
            return str(value)
        if number.is_finite():
            return number.normalize()
    return str(value)


def check_no_duplicates(store: Store, config: Config) -> list[str]:
    """No source record has two counterparts in one target type; no orphan creates."""
    problems = []
    for flow in config.dataflows:
        seen: dict[str, str] = {}
        for link in store.all_links(flow.key):
            if link.source_ref in seen:
                problems.append(f"{flow.key}: {link.source_ref} linked twice")
            seen[link.source_ref] = link.target_ref
    return problems


def check_orphans(
    world: World, store: Store, config: Config, stamped: dict[tuple[str, str], str]
) -> list[str]:
    """A record the engine created (stamped with its source's ref) whose source still
    lives is the one linked to that source: no duplicate, no orphan."""
    problems = []
    links: dict[str, set[str]] = {}
    for link in store.all_links():
        links.setdefault(link.source_ref, set()).add(link.target_ref)
    for (system, etype), field in stamped.items():
        counts: dict[str, int] = {}
        for rid, data in world.records(system, etype).items():
            ext = data.get(field)
            if not ext:
                continue
            counts[ext] = counts.get(ext, 0) + 1
            s_sys, s_type, s_id = Ref.parse(ext)
            if s_id not in world.records(s_sys, s_type):
                continue  # its source was deleted; with on_delete: unlink the target stays
            created = Ref.text(system, etype, rid)
            if created not in links.get(ext, set()):
                problems.append(f"{created} (created for {ext}) is not linked to it")
        problems.extend(
            f"{system}.{etype}: {n} records created for {ext}" for ext, n in counts.items() if n > 1
        )
    return problems


def check_edits(world: World, store: Store, edits: list[Edit]) -> list[str]:
    """Every edit is present where the record lives, or was lost in a recorded conflict."""
    problems = []
    lost_values: set[Any] = set()
    for row in store.conflicts_rows():
        for key in ("source_value", "target_value"):
            value = loads(row[key])
            lost_values.add(comparable(value))
    for edit in edits:
        current = world.records(edit.system, edit.etype).get(edit.rid)
        if current is None:
            continue  # deleted since
        if comparable(get(current, edit.path)) == comparable(edit.value):
            continue
        if comparable(edit.value) in lost_values:
            continue
        problems.append(
            f"edit {edit.system}:{edit.etype}:{edit.rid}.{edit.path}={edit.value!r} is lost "
            f"(now {get(current, edit.path)!r}) and no conflict records it"
        )
    return problems


Crash = Callable[[], None]
