"""One section of a QA checklist, executed: create, sync, check, edit both ways, clean up.

The section's dataflow runs through the real engine, together with the dataflows its
references need (contact person → customer needs the customer dataflow), against a
store of its own and connectors that only see this section's test records
(:mod:`samband.qa.guard`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from samband.config.model import Config
from samband.connectors.base import Connector, EntityType, Property, RecordData
from samband.engine.model import Flow
from samband.engine.model import Mapping as FlowMapping
from samband.engine.run import Engine
from samband.errors import ConversionError, NotFound, SambandError
from samband.mapping import get_path
from samband.qa.guard import QaConnector
from samband.qa.model import (
    BACK,
    CREATE,
    FAILED,
    FORWARD,
    PASSED,
    SKIPPED,
    Leftover,
    PropertyResult,
    SectionResult,
)
from samband.qa.values import source_value_for, value_for
from samband.store import Ref, schema
from samband.types import DataType, coerce

TypeKey = tuple[str, str]
MAX_DEPTH = 4


class _Stop(Exception):
    """The section cannot go on (the reason is already in the result)."""


def flows_needed(flows: list[Flow], section: Flow) -> list[Flow]:
    """The section's dataflow and, transitively, those that sync what it refers to."""
    needed = [section]
    queue = [section]
    while queue:
        flow = queue.pop(0)
        for parent in _parent_flows(flows, flow):
            if parent not in needed:
                needed.append(parent)
                queue.append(parent)
    return sorted(needed, key=lambda f: f.index)


def source_ref_type(flows: list[Flow], flow: Flow, m: FlowMapping) -> str | None:
    """The type a reference of the source points at: declared, or (for a source without a
    schema) the source type of the dataflow that syncs the target's referenced type."""
    if m.source_ref_type or not m.target_ref_type:
        return m.source_ref_type
    for other in flows:
        if other.source[0] == flow.source[0] and other.target == (
            flow.target[0],
            m.target_ref_type,
        ):
            return other.source[1]
        if other.target[0] == flow.source[0] and other.source == (
            flow.target[0],
            m.target_ref_type,
        ):
            return other.target[1]
    return None


def _parent_flows(flows: list[Flow], flow: Flow) -> list[Flow]:
    found: list[Flow] = []
    wanted: list[tuple[str, str | None]] = []  # (source-side type, target-side type or None)
    for m in flow.mappings:
        ref_type = source_ref_type(flows, flow, m) if m.is_reference else None
        if ref_type:
            wanted.append((ref_type, m.target_ref_type))
    rule = flow.config.create_when
    if rule is not None:
        into_system, _, into_type = rule.synchronized_into.rpartition(".")
        if not into_system:
            into_system, into_type = into_type, ""
        for connected in rule.connected_to:
            for other in flows:
                if (
                    other.source == (flow.source[0], connected)
                    and other.target[0] == into_system
                    and (not into_type or other.target[1] == into_type)
                ):
                    found.append(other)
                    break
    for source_type, target_type in wanted:
        for other in flows:
            same_way = other.source == (flow.source[0], source_type) and (
                other.target[0] == flow.target[0]
                and (target_type is None or other.target[1] == target_type)
            )
            other_way = other.target == (flow.source[0], source_type) and (
                other.source[0] == flow.target[0]
                and (target_type is None or other.source[1] == target_type)
            )
            if same_way or other_way:
                found.append(other)
                break
    return found


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    return type(a) is type(b) and a == b


def _show(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


class SectionRun:
    """Executes one section; the findings go into ``result``."""

    def __init__(
        self,
        config: Config,
        flows: list[Flow],
        section: Flow,
        connectors: Mapping[str, Connector],
        *,
        run_id: str,
        store_path: Path,
        environ: Mapping[str, str] | None,
        result: SectionResult,
        state_dir: str | None = None,
    ) -> None:
        self.run_id = run_id
        self.result = result
        self.all_flows = flows
        self.flows = flows_needed(flows, section)
        self.flow = section
        self.log: list[tuple[str, str, str]] = []
        systems = {s for f in self.flows for s in (f.source[0], f.target[0])}
        self.guards = {sid: QaConnector(connectors[sid], self.log) for sid in sorted(systems)}
        sub = config.model_copy(
            update={"dataflows": [config.dataflows[f.index] for f in self.flows]}
        )
        store_path.parent.mkdir(parents=True, exist_ok=True)
        store_path.unlink(missing_ok=True)
        self.store_path = store_path
        self.engine = Engine(
            sub,
            connectors=dict(self.guards),
            store_url=f"sqlite:///{store_path.resolve()}",
            environ=environ,
            state_dir=state_dir,
        )
        self.made: dict[TypeKey, str] = {}

    # -- the whole section ---------------------------------------------------------
    def run(self) -> SectionResult:
        try:
            self.engine.compile()
            by_key = {f.key: f for f in self.engine.flows}
            self.flow = by_key[self.flow.key]
            self.flows = [by_key[f.key] for f in self.flows]
            reason = self._cannot_run()
            if reason:
                self.result.status = SKIPPED
                self.result.messages.append(reason)
                return self.result
            self._execute()
        except _Stop:
            pass
        except SambandError as exc:
            self.result.fail(str(exc))
        except Exception as exc:  # one section's surprise must not stop the clean-up
            self.result.fail(f"unexpected {type(exc).__name__}: {exc}")
        finally:
            try:
                self._clean_up()
            finally:
                self.engine.close()
                self.store_path.unlink(missing_ok=True)
        return self.result

    def _cannot_run(self) -> str | None:
        flow = self.flow
        if flow.source_et.read_only:
            return (
                f"{flow.source[0]}.{flow.source[1]} is read-only: QA cannot create a test "
                "record there; check this section with records that exist"
            )
        if flow.config.create and flow.target_et.read_only:
            return f"{flow.target[0]}.{flow.target[1]} is read-only: nothing is created there"
        if not flow.config.create and not flow.match:
            return "the dataflow neither creates records nor has merge criteria to link them"
        return None

    def _execute(self) -> None:
        flow = self.flow
        source_id = self._make(flow.source, flow)
        if not flow.config.create:
            self._make_counterpart(source_id)
        self._sync("the first run")
        target_id = self._counterpart(Ref.text(flow.source[0], flow.source[1], source_id), flow)
        source = self._get(flow.source, source_id)
        if target_id is None:
            self._not_linked(source_id, source)
            return
        target = self._get(flow.target, target_id)
        for m in flow.mappings:
            if m.direction == "backward":
                self._add(m, CREATE, SKIPPED, reason="mapped backward only")
                continue
            raw_id = self._raw_id(m)
            if raw_id:
                raw = (get_path(source.data, m.source), get_path(target.data, m.target))
                self._add(m, CREATE, FAILED, *raw, raw_id)
                continue
            expected = self._expected_forward(m, source)
            self._compare(m, CREATE, expected, target)
        self._edit_target(target_id)
        self._edit_source(source_id)
        report = self._sync("a further run")
        if report.writes:
            self.result.fail(
                f"a further run with no edits wrote {report.writes} time(s): the values do not "
                "settle (see the properties above)"
            )

    # -- creating the test records --------------------------------------------------
    def _make(self, key: TypeKey, flow: Flow | None = None, depth: int = 0) -> str:
        """The id of a test record of ``key`` (created once per section)."""
        if key in self.made:
            return self.made[key]
        if depth > MAX_DEPTH:
            self.result.fail(f"references nest deeper than {MAX_DEPTH} levels at {key[0]}.{key[1]}")
            raise _Stop
        if flow is None:
            flow = next((f for f in self.flows if f.source == key), None)
        if flow is None:
            # a parent only the source needs (not mapped): made like the records of any
            # dataflow that reads its type, and not synchronized
            flow = next((f for f in self.all_flows if f.source == key), None)
        if flow is None:
            other = next((f for f in self.flows if f.target == key), None)
            if other is None:
                self.result.fail(
                    f"no dataflow syncs {key[0]}.{key[1]}, which the test record refers to"
                )
                raise _Stop
            # the parent comes from the other side: create it there and let the engine copy it
            origin = self._make(other.source, other, depth + 1)
            self._sync(f"the run that copies the parent {other.source[1]}")
            rid = self._counterpart(Ref.text(other.source[0], other.source[1], origin), other)
            if rid is None:
                why = self._why_not_linked(Ref.text(other.source[0], other.source[1], origin))
                self.result.fail(f"the parent {key[0]}.{key[1]} was not created: {why}")
                raise _Stop
            self.made[key] = rid
            return rid
        values = self._values(flow, depth)
        guard = self.guards[key[0]]
        try:
            try:
                record = guard.create(key[1], values)
            except SambandError as exc:
                # a reference the API requires but the schema does not mark: fill what the
                # refusal names, once
                extra = self._refused_references(flow, values, str(exc), depth)
                if not extra:
                    raise
                values.update(extra)
                record = guard.create(key[1], values)
        except SambandError as exc:
            self.result.fail(
                f"creating the test record in {key[0]}.{key[1]} failed: {exc} "
                f"(values: {', '.join(sorted(values))})"
            )
            raise _Stop from None
        rid = str(record.id)
        self.made[key] = rid
        return rid

    def _refused_references(
        self, flow: Flow, values: dict[str, Any], refusal: str, depth: int
    ) -> dict[str, Any]:
        extra: dict[str, Any] = {}
        system = flow.source[0]
        for name, prop in flow.source_et.properties.items():
            if not prop.references or prop.read_only or name in values:
                continue
            if not re.search(rf"(?<![\w.]){re.escape(name)}(?!\w)", refusal):
                continue
            key = (system, prop.references)
            if key in self.made or any(f.source == key for f in self.all_flows):
                extra[name] = _reference(prop, self._make(key, depth=depth + 1))
        return extra

    def _values(self, flow: Flow, depth: int) -> dict[str, Any]:
        et = flow.source_et
        system = flow.source[0]
        normalizers = {t.source: t.normalizer for combo in flow.match for t in combo}
        values: dict[str, Any] = {}
        for m in flow.mappings:
            prop = et.property(m.source)
            if m.direction == "backward" or (prop is not None and prop.read_only):
                continue
            if m.is_reference:
                ref_type = source_ref_type(self.flows, flow, m)
                if ref_type:
                    parent = self._make((system, ref_type), depth=depth + 1)
                    values[m.source] = _reference(prop, parent)
                continue
            if prop is not None and prop.references:
                # a reference mapped as a plain value: it still needs a real parent
                values[m.source] = _reference(
                    prop, self._make((system, prop.references), depth=depth + 1)
                )
                continue
            values[m.source] = self._source_value(m.source, prop, m.type, "c", normalizers)
        for combo in flow.match:
            for term in combo:
                if term.source not in values:
                    prop = et.property(term.source)
                    values[term.source] = self._source_value(
                        term.source, prop, None, "c", normalizers
                    )
        rule = flow.config.filter
        for path, condition in (rule.where if rule else {}).items():
            wanted = condition
            if isinstance(condition, dict):
                if "eq" in condition:
                    wanted = condition["eq"]
                elif condition.get("in"):
                    wanted = condition["in"][0]
                else:
                    continue
            values[et.canonical(path)] = wanted
        create_when = flow.config.create_when
        if create_when is not None and create_when.via:
            for path, connected in zip(create_when.via, create_when.connected_to, strict=False):
                parent = self._make((system, connected), depth=depth + 1)
                values[et.canonical(path)] = _reference(et.property(path), parent)
        for name, prop in et.properties.items():
            if not prop.required or prop.read_only or name in values or name == et.id_field:
                continue
            if prop.references:
                values[name] = self._make((system, prop.references), depth=depth + 1)
            elif prop.type is not DataType.REFERENCE:
                values[name] = self._source_value(name, prop, None, "c", normalizers)
        return values

    def _source_value(
        self,
        path: str,
        prop: Property | None,
        mapped: DataType | None,
        variant: str,
        normalizers: dict[str, str],
    ) -> Any:
        return source_value_for(
            path,
            prop.type if prop else None,
            mapped,
            self.run_id,
            variant,
            prop=prop,
            normalizer=normalizers.get(path),
        )

    def _make_counterpart(self, source_id: str) -> None:
        """For a dataflow that only links: a target record the merge criteria find."""
        flow = self.flow
        source = self._get(flow.source, source_id)
        values: dict[str, Any] = {}
        for combo in flow.match[:1]:
            for term in combo:
                prop = flow.target_et.property(term.target)
                raw = get_path(source.data, term.source)
                values[term.target] = coerce(raw, prop.type if prop and prop.type else None)
        try:
            self.guards[flow.target[0]].create(flow.target[1], values)
        except SambandError as exc:
            self.result.fail(f"creating the record to link in {flow.target[0]} failed: {exc}")
            raise _Stop from None

    # -- edits --------------------------------------------------------------------
    def _edit_target(self, target_id: str) -> None:
        flow = self.flow
        edits: dict[str, Any] = {}
        edited: list[FlowMapping] = []
        for m in flow.mappings:
            why = self._back_blocked(m) or (self._raw_id(m) and "not edited: it copies a raw id")
            if why:
                self._add(m, BACK, SKIPPED, reason=why)
                continue
            t_prop = flow.target_et.property(m.target)
            own = t_prop.type if t_prop and t_prop.type not in (None, DataType.REFERENCE) else None
            edits[m.target] = value_for(m.target, own or m.type, self.run_id, "t", prop=t_prop)
            edited.append(m)
        if not edits:
            return
        self._write(flow.target, target_id, edits, "editing the target record")
        kept = self._get(flow.target, target_id)
        self._sync("the run after the target edit")
        source = self._get(flow.source, self.made[flow.source])
        for m in edited:
            expected = self._typed(m, edits[m.target])
            hint = None
            stored = get_path(kept.data, m.target)
            if not isinstance(expected, _Unconvertible) and not _same(
                expected, self._typed(m, stored)
            ):
                hint = f"the target itself did not keep the edited value (it holds {stored!r})"
            self._compare(m, BACK, expected, source, side="source", hint=hint)

    def _back_blocked(self, m: FlowMapping) -> str | None:
        flow = self.flow
        if m.direction == "forward":
            return "mapped forward only"
        if m.is_reference:
            return "references are checked on creation only"
        if flow.source_et.read_only:
            return f"{flow.source[0]}.{flow.source[1]} is read-only"
        s_prop = flow.source_et.property(m.source)
        if s_prop is not None and s_prop.read_only:
            return f"{flow.source[0]}.{flow.source[1]}.{m.source} is read-only"
        t_prop = flow.target_et.property(m.target)
        if t_prop is not None and t_prop.read_only:
            return f"{flow.target[0]}.{flow.target[1]}.{m.target} is read-only"
        return None

    def _edit_source(self, source_id: str) -> None:
        flow = self.flow
        edits: dict[str, Any] = {}
        edited: list[FlowMapping] = []
        normalizers = {t.source: t.normalizer for combo in flow.match for t in combo}
        for m in flow.mappings:
            s_prop = flow.source_et.property(m.source)
            why = None
            if m.direction == "backward":
                why = "mapped backward only"
            elif m.is_reference:
                why = "references are checked on creation only"
            elif self._raw_id(m):
                why = "not edited: it copies a raw id"
            elif s_prop is not None and s_prop.read_only:
                why = f"{flow.source[0]}.{flow.source[1]}.{m.source} is read-only"
            if why:
                self._add(m, FORWARD, SKIPPED, reason=why)
                continue
            edits[m.source] = self._source_value(m.source, s_prop, m.type, "s", normalizers)
            edited.append(m)
        if not edits:
            return
        self._write(flow.source, source_id, edits, "editing the source record")
        self._sync("the run after the source edit")
        target = self._get(flow.target, self.made_target(source_id))
        for m in edited:
            self._compare(m, FORWARD, self._typed(m, edits[m.source]), target)

    def made_target(self, source_id: str) -> str:
        flow = self.flow
        rid = self._counterpart(Ref.text(flow.source[0], flow.source[1], source_id), flow)
        if rid is None:
            self.result.fail("the link between the test records was lost")
            raise _Stop
        return rid

    def _write(self, key: TypeKey, rid: str, changes: dict[str, Any], what: str) -> None:
        try:
            self.guards[key[0]].update(key[1], rid, changes)
        except SambandError as exc:
            self.result.fail(f"{what} ({key[0]}.{key[1]} {rid}) failed: {exc}")
            raise _Stop from None

    # -- checks -------------------------------------------------------------------
    def _typed(self, m: FlowMapping, value: Any) -> Any:
        try:
            return coerce(value, m.type)
        except ConversionError as exc:
            return _Unconvertible(str(exc), value)

    def _expected_forward(self, m: FlowMapping, source: RecordData) -> Any:
        raw = get_path(source.data, m.source)
        if m.is_reference:
            if raw in (None, "", 0):
                return None
            ref_type = source_ref_type(self.flows, self.flow, m)
            ref = Ref.text(self.flow.source[0], str(ref_type), coerce(raw, DataType.REFERENCE))
            parent = self._counterpart_any(ref, self.flow.target[0], m.target_ref_type)
            return parent if parent is not None else _Unconvertible("the parent is not linked", raw)
        return self._typed(m, raw)

    def _compare(
        self,
        m: FlowMapping,
        check: str,
        expected: Any,
        record: RecordData,
        side: str = "target",
        hint: str | None = None,
    ) -> None:
        path = m.target if side == "target" else m.source
        key = self.flow.target if side == "target" else self.flow.source
        record_ref = Ref.text(key[0], key[1], record.id)
        raw = get_path(record.data, path)
        if isinstance(expected, _Unconvertible):
            self._add(
                m,
                check,
                FAILED,
                expected=expected.value,
                actual=raw,
                reason=f"the value cannot be converted to {m.type or 'the target type'}: "
                f"{expected.reason}",
            )
            return
        try:
            actual = coerce(raw, m.type)
        except ConversionError as exc:
            self._add(m, check, FAILED, expected, raw, f"the {side} value is not a {m.type}: {exc}")
            return
        if _same(expected, actual):
            self._add(m, check, PASSED, expected, actual)
            return
        refused = [r for r in self.engine.store().dead_letters() if r["ref"] == record_ref]
        if hint:
            reason = hint
        elif refused:
            reason = f"the edit was refused ({refused[0]['kind']}): {refused[0]['reason']}"
        elif m.is_reference:
            reason = f"the {side} refers to {actual!r}, not to the linked parent {expected!r}"
        elif isinstance(expected, str) and isinstance(actual, str) and expected.startswith(actual):
            reason = f"the {side} cut the value short ({len(actual)} of {len(expected)} characters)"
        elif actual is None:
            reason = f"the value did not arrive in the {side}"
        else:
            reason = f"the {side} holds another value"
        self._add(m, check, FAILED, expected, actual, reason)

    def _add(
        self,
        m: FlowMapping,
        check: str,
        status: str,
        expected: Any = None,
        actual: Any = None,
        reason: str = "",
    ) -> None:
        self.result.add(
            PropertyResult(
                m.source,
                m.target,
                m.type.value if m.type else None,
                check,
                status,
                _show(expected),
                _show(actual),
                reason,
            )
        )

    # -- the engine and the store ----------------------------------------------------
    def _sync(self, what: str) -> Any:
        report = self.engine.sync()
        if report.status != "ok":
            self.result.fail(f"{what} ended {report.status}: {'; '.join(report.messages)}")
            raise _Stop
        for row in self.engine.store().dead_letters():
            message = f"{row['ref']} ({row['kind']}): {row['reason']}"
            if message not in self.result.messages:
                self.result.messages.append(message)
        return report

    def _get(self, key: TypeKey, rid: str) -> RecordData:
        record = self.guards[key[0]].get(key[1], rid)
        if record is None:
            self.result.fail(f"the test record {key[0]}:{key[1]}:{rid} is gone")
            raise _Stop
        return record

    def _counterpart(self, ref: str, flow: Flow) -> str | None:
        for link in self.engine.store().all_links(flow.key):
            if link.source_ref == ref:
                return Ref.parse(link.target_ref).id
        return None

    def _counterpart_any(self, ref: str, system: str, etype: str | None) -> str | None:
        for link in self.engine.store().all_links():
            for mine, other in (
                (link.source_ref, link.target_ref),
                (link.target_ref, link.source_ref),
            ):
                o_system, o_type, o_id = Ref.parse(other)
                if mine == ref and o_system == system and (etype is None or o_type == etype):
                    return o_id
        return None

    def _raw_id(self, m: FlowMapping) -> str | None:
        """Why a mapping that copies a reference as a plain value is wrong, if it does."""
        flow = self.flow
        prop = flow.source_et.property(m.source)
        if m.is_reference or prop is None or not prop.references:
            return None
        return (
            f"{m.source} refers to a {flow.source[0]} {prop.references}, but the mapping "
            f"copies the raw id as {m.type or 'a value'}: ids differ between systems (map it "
            "with type: reference)"
        )

    def _not_linked(self, source_id: str, source: RecordData) -> None:
        """No target record: the property the refusal names fails, the others are unchecked."""
        flow = self.flow
        why = self._why_not_linked(Ref.text(flow.source[0], flow.source[1], source_id))
        self.result.status = FAILED
        culprits = [m for m in flow.mappings if _named_in(m, why)]
        if "waits for its parent" in why or "(reference)" in why or _UNTYPED in why:
            culprits = [m for m in flow.mappings if m.is_reference]
        culprits += [m for m in flow.mappings if self._raw_id(m) and m not in culprits]
        for m in flow.mappings:
            if m.direction == "backward":
                continue
            expected = self._expected_forward(m, source)
            if isinstance(expected, _Unconvertible):
                self._compare(m, CREATE, expected, RecordData("", {}))
            elif m in culprits or not culprits:
                raw_id = self._raw_id(m)
                self._add(m, CREATE, FAILED, expected, None, f"{raw_id}; {why}" if raw_id else why)
            else:
                self._add(m, CREATE, SKIPPED, expected, None, f"not checked: {why}")
        if not culprits:
            self.result.messages.append(why)

    def _why_not_linked(self, ref: str) -> str:
        rows = [r for r in self.engine.store().dead_letters() if r["ref"] == ref]
        if rows:
            hint = _UNTYPED if ":?:" in rows[0]["reason"] else ""
            return f"the record was quarantined ({rows[0]['kind']}): {rows[0]['reason']}{hint}"
        store = self.engine.store()
        waits = store.table_rows(schema.waiting, schema.waiting.c.ref == ref)
        if waits:
            parent = waits[0]["parent"]
            hint = _UNTYPED if ":?:" in parent else ""
            return f"no target record was created: it waits for its parent {parent}{hint}"
        others = [r for r in store.dead_letters() if r["ref"] != ref]
        if others:
            return (
                f"no target record was created: {others[0]['ref']}, which it depends on, was "
                f"not synchronized ({others[0]['reason']})"
            )
        flow = self.flow
        if flow.config.create_when is not None:
            return "no target record was created: the creation rule did not hold"
        if flow.config.filter is not None:
            return "no target record was created: the filter left the record out"
        return "no target record was created or linked"

    # -- cleaning up ----------------------------------------------------------------
    def _clean_up(self) -> None:
        self.result.created = [Ref.text(s, t, r) for s, t, r in self.log]
        for system, etype_name, rid in reversed(list(self.log)):
            guard = self.guards[system]
            ref = Ref.text(system, etype_name, rid)
            et: EntityType = guard.entity_type(etype_name)
            if et.can_delete and not et.read_only:
                try:
                    guard.delete(etype_name, rid)
                    continue
                except NotFound:
                    continue
                except Exception as exc:  # whatever happens, the next record is tried
                    why = f"deleting failed: {exc}"
            else:
                why = f"{system} does not let {etype_name} records be deleted through its API"
            if et.archive is not None:
                try:
                    guard.archive(etype_name, rid)
                    self.result.leftovers.append(Leftover(ref, f"{why}; archived instead", True))
                    continue
                except Exception as exc:
                    why = f"{why}; archiving failed too: {exc}"
            self.result.leftovers.append(Leftover(ref, why))


_UNTYPED = (
    ": the engine cannot tell which type the reference points at; declare source_ref "
    "(and target_ref) on the reference mapping"
)


def _reference(prop: Property | None, record_id: str) -> Any:
    """A reference value for a create: the str id the connector protocol asks for when the
    schema knows the property is a reference (the connector converts it); for a source
    without a schema, a number when the id is one (as the engine writes references back)."""
    if prop is not None and prop.type is DataType.REFERENCE:
        return record_id
    return int(record_id) if record_id.isdigit() and len(record_id) < 19 else record_id


def _named_in(m: FlowMapping, text: str) -> bool:
    names = {m.source, m.target, m.target.rsplit(".", 1)[-1], m.source.rsplit(".", 1)[-1]}
    return any(re.search(rf"(?<![\w.]){re.escape(name)}(?![\w])", text) for name in names)


class _Unconvertible:
    """An expected value that could not be converted to the mapping's type."""

    def __init__(self, reason: str, value: Any) -> None:
        self.reason = reason
        self.value = value
