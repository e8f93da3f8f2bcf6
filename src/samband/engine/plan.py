"""Plan: the field-level three-way merge of one linked pair.

For each mapped property the engine compares, in the target's data type, the *base*
(the value both sides last agreed on), the source's value and the target's value:

* equal → nothing to do (the base follows);
* only the source moved → update the target;
* only the target moved → update the source through the inverse mapping (unless the
  property is one-way or the source cannot be written: then the target is reverted and
  a conflict is recorded with the reason);
* both moved to different values → conflict: the newer modification wins, a tie goes to
  the configured priority; both values are recorded.

References are translated through the links (``translate``); a reference whose parent is
not linked yet makes the pair wait.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from samband.engine.model import Flow, Mapping
from samband.errors import ConversionError
from samband.store.rows import Ref
from samband.types import DataType, coerce, id_value

MISSING = object()

# translate(system, entity type, id, into system, into type) → id in the other system
Translate = Callable[[str, str | None, str, str, str | None], str | None]


class WaitForParent(Exception):
    def __init__(self, parent: str) -> None:
        super().__init__(parent)
        self.parent = parent


@dataclass
class Conflict:
    property: str
    base: Any
    source_value: Any
    target_value: Any
    winner: str  # "source" | "target"
    reason: str


@dataclass
class PairPlan:
    to_target: dict[str, Any] = field(default_factory=dict)  # target path → canonical value
    to_source: dict[str, Any] = field(default_factory=dict)  # source path → value
    base: dict[str, Any] = field(default_factory=dict)  # target path → agreed value
    conflicts: list[Conflict] = field(default_factory=list)
    # parents whose link is missing: their reference properties were left out of this plan
    waiting: list[str] = field(default_factory=list)

    @property
    def writes(self) -> bool:
        return bool(self.to_target or self.to_source)


def _same(a: Any, b: Any) -> bool:
    """Equal values; an empty text and no value are the same (APIs give either)."""
    if a is None or b is None or a == "" or b == "":
        return a in (None, "") and b in (None, "")
    return bool(type(a) is type(b) and a == b) or (
        isinstance(a, int | float)
        and isinstance(b, int | float)
        and not isinstance(a, bool)
        and not isinstance(b, bool)
        and a == b
    )


def source_value(flow: Flow, m: Mapping, data: dict[str, Any], translate: Translate) -> Any:
    """The source's value of a mapping, in the target's type (references translated)."""
    raw = data.get(m.source)
    if m.is_reference:
        if raw is None or raw == "" or raw == 0:
            return None
        rid = coerce(raw, DataType.REFERENCE)
        target_id = translate(
            flow.source[0], m.source_ref_type, rid, flow.target[0], m.target_ref_type
        )
        if target_id is None:
            raise WaitForParent(Ref.text(flow.source[0], m.source_ref_type or "?", rid))
        return target_id
    return coerce(raw, m.type)


def target_value(m: Mapping, data: dict[str, Any]) -> Any:
    raw = data.get(m.target)
    if m.is_reference and (raw == "" or raw == 0):
        return None
    return coerce(raw, m.type)


def inverse_value(flow: Flow, m: Mapping, value: Any, translate: Translate) -> Any:
    """A target value converted for the source (references translated back)."""
    if value is None:
        return None
    if m.is_reference:
        source_id = translate(
            flow.target[0], m.target_ref_type, value, flow.source[0], m.source_ref_type
        )
        if source_id is None:
            raise WaitForParent(Ref.text(flow.target[0], m.target_ref_type or "?", value))
        return id_value(source_id)
    if m.source_type is not None and m.source_type is not DataType.REFERENCE:
        converted = coerce(value, m.source_type)
        if not _same(coerce(converted, m.type), value):
            # "008" into an integer source comes back as "8": the source would change it
            raise ConversionError(
                f"{m.target} = {value!r} would be stored as {converted!r} in "
                f"{flow.source[0]}.{flow.source[1]}.{m.source} ({m.source_type}), which "
                "changes it; write it in a form the source keeps, or map the property with "
                "the source's type"
            )
        return converted
    return value


def create_values(
    flow: Flow,
    data: dict[str, Any],
    translate: Translate,
    later: Callable[[str], bool] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Values for a new target record, and the base they establish.  A reference to a
    parent not linked yet raises :class:`WaitForParent`, unless ``later(parent)``: then it
    is left out (agreed as empty), to be filled by an update once the record exists."""
    values: dict[str, Any] = {}
    base: dict[str, Any] = {}
    for m in flow.mappings:
        if m.direction == "backward":
            continue
        try:  # as _convert does, without its extra call per property of every create
            value = source_value(flow, m, data, translate)
        except ConversionError as exc:
            raise ConversionError(f"{m.source} → {m.target}: {exc}") from None
        except WaitForParent as wait:
            if later is None or not later(wait.parent):
                raise
            value = None
        base[m.target] = value
        if value is not None:
            values[m.target] = value
    return values, base


def _convert(m: Mapping, get: Callable[..., Any], *args: Any) -> Any:
    try:
        return get(*args)
    except ConversionError as exc:
        raise ConversionError(f"{m.source} → {m.target}: {exc}") from None


class Side(Protocol):
    """What the plan reads of a record (a stored snapshot)."""

    data: dict[str, Any]
    modified: str | None


def plan_link(
    flow: Flow, base: dict[str, Any], source: Side, target: Side, translate: Translate
) -> PairPlan:
    """The three-way merge of a linked pair from its two snapshots."""
    return plan_pair(
        flow, source.data, target.data, base, source.modified, target.modified, translate
    )


def plan_pair(
    flow: Flow,
    source: dict[str, Any],
    target: dict[str, Any],
    base: dict[str, Any],
    source_modified: str | None,
    target_modified: str | None,
    translate: Translate,
) -> PairPlan:
    """The three-way merge of one linked pair.  ``base`` empty means "just linked"."""
    plan = PairPlan()
    first_link = not base
    for m in flow.mappings:
        try:
            _merge_property(
                flow,
                m,
                plan,
                source,
                target,
                base,
                first_link,
                source_modified,
                target_modified,
                translate,
            )
            if m.type is DataType.BOOLEAN and m.source in plan.to_source:
                plan.to_source[m.source] = boolean_in_spelling_of(
                    source.get(m.source), plan.to_source[m.source]
                )
        except WaitForParent as wait:
            # only this reference waits; the other properties still sync
            plan.waiting.append(wait.parent)
            plan.to_target.pop(m.target, None)
            plan.to_source.pop(m.source, None)
            plan.base.pop(m.target, None)
            plan.conflicts = [c for c in plan.conflicts if c.property != m.target]
    return plan


# the spellings of a flag a source may keep as text, each with its opposite
_FLAG_PAIRS = {"true": "false", "1": "0", "yes": "no", "y": "n", "on": "off", "t": "f"}
_OPPOSITE = {**_FLAG_PAIRS, **{no: yes for yes, no in _FLAG_PAIRS.items()}}


def boolean_in_spelling_of(current: Any, value: Any) -> Any:
    """A boolean flowing back to a source, spelled as the source spells the flag now
    ("yes"/"no", "Y"/"N", 1/0): a source whose app tests ``flag == "no"`` must not get
    "false".  A value the source has no spelling for yet is left as it is."""
    if value is None or isinstance(current, bool) or current is None:
        return value
    try:
        wanted = coerce(value, DataType.BOOLEAN)
    except ConversionError:
        return value
    if type(current) is int and current in (0, 1):
        return int(wanted)
    if not isinstance(current, str):
        return value
    text = current.strip()
    opposite = _OPPOSITE.get(text.lower())
    if opposite is None:
        return value
    if coerce(text, DataType.BOOLEAN) is wanted:
        return text
    if text.isupper():
        return opposite.upper()
    if text[:1].isupper():
        return opposite.capitalize()
    return opposite


def _merge_property(
    flow: Flow,
    m: Mapping,
    plan: PairPlan,
    source: dict[str, Any],
    target: dict[str, Any],
    base: dict[str, Any],
    first_link: bool,
    source_modified: str | None,
    target_modified: str | None,
    translate: Translate,
) -> None:
    s_val = _convert(m, source_value, flow, m, source, translate)
    t_val = _convert(m, target_value, m, target)
    b_val = base.get(m.target, MISSING)
    if _same(s_val, t_val):
        plan.base[m.target] = s_val
        return
    if m.direction == "backward":
        _to_source(flow, m, plan, t_val, translate)
        return
    if b_val is MISSING and not first_link:
        _first_agreement(flow, m, plan, s_val, t_val, source_modified, target_modified, translate)
        return
    if first_link:
        # Just linked (merge criteria): the source fills the target; a value only the
        # target has flows back.
        if s_val in (None, "") and m.direction == "both" and not _source_locked(flow, m):
            _to_source(flow, m, plan, t_val, translate)
        else:
            plan.to_target[m.target] = s_val
            plan.base[m.target] = s_val
            if t_val is not None:
                plan.conflicts.append(
                    Conflict(
                        m.target,
                        None,
                        s_val,
                        t_val,
                        "source",
                        "linked by the merge criteria: the source value replaced the target's",
                    )
                )
        return
    source_moved = not _same(s_val, _coerce_base(m, b_val))
    target_moved = not _same(t_val, _coerce_base(m, b_val))
    if source_moved and not target_moved:
        plan.to_target[m.target] = s_val
        plan.base[m.target] = s_val
    elif target_moved and not source_moved:
        if _source_locked(flow, m):
            plan.to_target[m.target] = s_val
            plan.base[m.target] = s_val
            plan.conflicts.append(
                Conflict(m.target, b_val, s_val, t_val, "source", _lock_reason(flow, m))
            )
        else:
            _to_source(flow, m, plan, t_val, translate)
    else:
        winner, reason = _winner(flow, m, source_modified, target_modified)
        if winner == "source":
            plan.to_target[m.target] = s_val
            plan.base[m.target] = s_val
        else:
            _to_source(flow, m, plan, t_val, translate)
        plan.conflicts.append(Conflict(m.target, b_val, s_val, t_val, winner, reason))


def edited_since(flow: Flow, target: dict[str, Any], base: dict[str, Any]) -> list[str]:
    """The mapped target properties whose value is no longer the one both sides agreed on
    (an edit made in the target since the last sync)."""
    edited = []
    for m in flow.mappings:
        if m.target not in base:
            continue
        try:
            value = target_value(m, target)
        except ConversionError:
            edited.append(m.target)
            continue
        if not _same(value, _coerce_base(m, base[m.target])):
            edited.append(m.target)
    return edited


def _first_agreement(
    flow: Flow,
    m: Mapping,
    plan: PairPlan,
    s_val: Any,
    t_val: Any,
    source_modified: str | None,
    target_modified: str | None,
    translate: Translate,
) -> None:
    """A property of a linked pair never agreed on before (newly mapped, or a reference
    that waited for its parent): a value only one side has fills the other; two values
    are a conflict, decided by the usual rule."""
    if s_val in (None, "") and m.direction == "both" and not _source_locked(flow, m):
        _to_source(flow, m, plan, t_val, translate)
        return
    if t_val in (None, ""):
        plan.to_target[m.target] = s_val
        plan.base[m.target] = s_val
        return
    winner, reason = _winner(flow, m, source_modified, target_modified, new=True)
    if winner == "source":
        plan.to_target[m.target] = s_val
        plan.base[m.target] = s_val
    else:
        _to_source(flow, m, plan, t_val, translate)
    plan.conflicts.append(Conflict(m.target, MISSING, s_val, t_val, winner, reason))


def _coerce_base(m: Mapping, value: Any) -> Any:
    try:
        return coerce(value, m.type) if value is not None else None
    except ConversionError:
        return value


def _to_source(flow: Flow, m: Mapping, plan: PairPlan, t_val: Any, translate: Translate) -> None:
    plan.to_source[m.source] = inverse_value(flow, m, t_val, translate)
    plan.base[m.target] = t_val


def _source_locked(flow: Flow, m: Mapping) -> bool:
    if m.direction == "forward" or flow.source_et.read_only:
        return True
    prop = flow.source_et.property(m.source)
    return bool(prop and prop.read_only)


def _lock_reason(flow: Flow, m: Mapping) -> str:
    if flow.source_et.read_only:
        return (
            f"{flow.source[0]}.{flow.source[1]} is read-only: the edit made in "
            f"{flow.target[0]} was reverted to the source value"
        )
    if m.direction == "forward":
        return "the property is mapped one way (forward): the target edit was reverted"
    return (
        f"{flow.source[0]}.{flow.source[1]}.{m.source} is read-only: the target edit was reverted"
    )


def _winner(
    flow: Flow, m: Mapping, s_mod: str | None, t_mod: str | None, *, new: bool = False
) -> tuple[str, str]:
    """Which side wins a conflict and why; ``new``: the property was never agreed on."""
    if _source_locked(flow, m):
        return "source", _lock_reason(flow, m)
    what = "newly mapped property, the two sides differ" if new else "both sides changed"
    s_time, t_time = _parse(s_mod), _parse(t_mod)
    if s_time is not None and t_time is not None and s_time != t_time:
        if s_time > t_time:
            return "source", f"{what}; {flow.source[0]} changed last ({s_mod})"
        return "target", f"{what}; {flow.target[0]} changed last ({t_mod})"
    side = "source" if flow.priority == flow.source[0] else "target"
    if new:
        return side, f"{what}; neither is newer: priority goes to {flow.priority}"
    return side, f"both sides changed at the same time; priority goes to {flow.priority}"


def _parse(value: str | None) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


def apply_resolution(
    flow: Flow,
    plan: PairPlan,
    prop: str,
    value: Any,
    source: dict[str, Any],
    target: dict[str, Any],
    translate: Translate,
) -> bool:
    """A conflict a user resolved (``samband conflicts resolve``): the chosen ``value``
    of target property ``prop`` replaces what ``plan`` does with it, on both sides,
    whatever either holds now.  False when the dataflow maps ``prop`` no more."""
    m = next((m for m in flow.mappings if m.target == prop), None)
    if m is None:
        return False
    wanted = None if value is None else coerce(value, m.type)
    plan.to_target.pop(m.target, None)
    plan.to_source.pop(m.source, None)
    plan.conflicts = [c for c in plan.conflicts if c.property != m.target]
    if not _same(_convert(m, target_value, m, target), wanted) and m.direction != "backward":
        plan.to_target[m.target] = wanted
    if not _same(_convert(m, source_value, flow, m, source, translate), wanted) and not (
        _source_locked(flow, m)
    ):
        plan.to_source[m.source] = inverse_value(flow, m, wanted, translate)
        if m.type is DataType.BOOLEAN:
            plan.to_source[m.source] = boolean_in_spelling_of(
                source.get(m.source), plan.to_source[m.source]
            )
    plan.base[m.target] = wanted
    return True
