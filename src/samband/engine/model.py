"""Dataflows compiled against the systems' schemas: what the engine works from."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from samband.config.model import Config, Dataflow
from samband.connectors.base import EntityType
from samband.types import DataType

TypeKey = tuple[str, str]  # (system, entity type)


@dataclass(frozen=True)
class Mapping:
    source: str
    target: str
    type: DataType | None  # the type values are compared in (the target's)
    source_type: DataType | None  # the source's own type, for values flowing back
    direction: str  # both | forward | backward
    source_ref_type: str | None = None
    target_ref_type: str | None = None

    @cached_property
    def is_reference(self) -> bool:
        return self.type is DataType.REFERENCE


@dataclass(frozen=True)
class MatchTerm:
    source: str
    target: str
    normalizer: str


@dataclass
class Flow:
    """One dataflow, ready to run."""

    index: int
    key: str
    config: Dataflow
    source: TypeKey
    target: TypeKey
    source_et: EntityType
    target_et: EntityType
    mappings: list[Mapping]
    match: list[list[MatchTerm]]
    priority: str  # system that wins a tie

    @cached_property
    def mapping_digest(self) -> str:
        """What the plan of a linked pair depends on: the mapped properties."""
        text = repr([(m.source, m.target, m.type, m.direction) for m in self.mappings])
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    @cached_property
    def linking_digest(self) -> str:
        """What decides which source records flow and how they are linked: the filter,
        whether (and when) targets are created, and the merge criteria."""
        config = self.config
        text = repr(
            (
                config.filter.where if config.filter is not None else None,
                config.create,
                config.create_when.model_dump(mode="json") if config.create_when else None,
                [[(t.source, t.target, t.normalizer) for t in terms] for terms in self.match],
                NORMALIZE_VERSION,
            )
        )
        return hashlib.blake2b(text.encode(), digest_size=8).hexdigest()

    def match_index(self, combination: int) -> str:
        """The name of the merge-criteria index of one combination: the dataflow and what
        the index holds, so a changed combination (another property, another
        normalisation, one removed before it) is another index."""
        return self.match_indexes[combination]

    @cached_property
    def match_indexes(self) -> list[str]:
        names = []
        for combination in self.match:
            terms = "\x1f".join(f"{t.target}\x1e{t.normalizer}" for t in combination)
            digest = hashlib.blake2b(f"{terms}|{NORMALIZE_VERSION}".encode(), digest_size=6)
            names.append(f"{self.key}#{digest.hexdigest()}")
        return names

    @cached_property
    def waits_for_match(self) -> bool:
        """Whether a source record may stay unlinked until a matching target is entered
        (merge criteria, and creates off or conditional): such records are kept in a
        waiting index of their merge keys (see :meth:`wait_index`)."""
        return bool(self.match) and (not self.config.create or self.config.create_when is not None)

    def wait_index(self, combination: int) -> str:
        """The name of the index of the merge keys of this dataflow's source records that
        wait for a matching target (source rid → key), one per combination."""
        return f"{self.match_index(combination)}~waiting"

    @property
    def source_read_only(self) -> bool:
        return self.source_et.read_only


@dataclass
class TypeUse:
    """What the engine reads of one entity type: the union of every dataflow's needs."""

    key: TypeKey
    entity_type: EntityType
    paths: list[str] = field(default_factory=list)
    as_source: list[Flow] = field(default_factory=list)
    as_target: list[Flow] = field(default_factory=list)

    def add_paths(self, *paths: str | None) -> None:
        for path in paths:
            if path and path not in self.paths:
                self.paths.append(path)
        self.__dict__.pop("path_set", None)
        self.__dict__.pop("path_steps", None)

    @cached_property
    def path_set(self) -> frozenset[str]:
        return frozenset(self.paths)

    @cached_property
    def path_steps(self) -> tuple[tuple[str, tuple[str, ...] | None], ...]:
        """Each path with its steps when it is nested (None: a top-level key), split once
        for the hundreds of thousands of records a run projects."""
        return tuple((p, tuple(p.split(".")) if "." in p else None) for p in self.paths)

    @property
    def ext_index(self) -> str | None:
        """The name of the index of this type's external-reference values (a target type
        whose records creates stamp with their source's ref), None without one."""
        field_ = self.entity_type.external_ref_field
        if not field_ or not self.as_target:
            return None
        return f"ext:{self.key[0]}.{self.key[1]}#{EXT_INDEX_VERSION}"

    @property
    def indexed(self) -> bool:
        """Whether the type's records have index entries to keep: merge-criteria keys of
        a dataflow into it, or external-reference values."""
        return self.ext_index is not None or any(flow.match for flow in self.as_target)

    @property
    def signature(self) -> str:
        return hashlib.blake2b("\x1f".join(sorted(self.paths)).encode(), digest_size=8).hexdigest()


def infer_normalizer(path: str) -> str:
    """Normaliser for a merge-criteria property, from its name."""
    name = path.rsplit(".", 1)[-1].lower()
    if re.search(r"phone|telephone|mobile|fax", name):
        return "phone"
    if "email" in name or name in ("mail", "e_mail"):
        return "email"
    if re.search(r"org|vat|chamber|registration|kvk|company_?number", name):
        return "orgno"
    return "trim"


_NOT_DIGIT = re.compile(r"\D")
# characters that do not show (zero-width spaces and joiners, word joiner, BOM, soft
# hyphen) go; typographic quotes, apostrophes and dashes become their plain forms
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None) | {
    **dict.fromkeys(map(ord, "\u2018\u2019\u201a\u201b\u2032\u00b4"), "'"),
    **dict.fromkeys(map(ord, "\u201c\u201d\u201e\u201f\u2033"), '"'),
    **dict.fromkeys(map(ord, "\u2010\u2011\u2012\u2013\u2014\u2015\u2212"), "-"),
}
# bumped whenever what the external-reference index holds changes: it is then rebuilt
EXT_INDEX_VERSION = 1
# bumped whenever normalize() changes what it gives: stored merge keys are then rebuilt
NORMALIZE_VERSION = 3


def normalize(value: Any, normalizer: str) -> str | None:
    """The comparable form of a merge-criteria value; None when it is empty.  Unicode
    variants of one text compare equal: composed and decomposed letters, full-width
    forms, non-breaking and zero-width spaces."""
    if value is None:
        return None
    text = str(value)
    if not text.isascii():
        text = unicodedata.normalize("NFKC", text.translate(_INVISIBLE))
    text = text.strip()
    if normalizer in ("digits", "orgno"):
        if not text.isdecimal():
            text = _NOT_DIGIT.sub("", text)
        if not text.isascii():
            text = _ascii_digits(text)
    elif normalizer == "phone":
        text = _phone(text)
    elif normalizer == "email":
        text = _email(text.casefold())
    elif normalizer == "casefold":
        text = text.casefold()
    elif normalizer == "alnum":
        text = re.sub(r"[\W_]", "", text).casefold()
    elif normalizer == "trim":
        text = re.sub(r"\s+", " ", text).casefold()
    return text or None


def _ascii_digits(digits: str) -> str:
    """Decimal digits of any script as ASCII digits (Arabic-Indic ٩ → 9)."""
    if digits.isascii():
        return digits
    return "".join(str(unicodedata.decimal(c)) for c in digits)


_COUNTRY_CODES = ("47", "46", "45", "44", "49", "31", "32", "1")


def _email(text: str) -> str:
    """An address whose domain is written in Unicode (``bodø.no``) and one in its ASCII
    form (``xn--bod-2na.no``) compare equal."""
    local, at, domain = text.rpartition("@")
    if not at or domain.isascii():
        return text
    try:
        return f"{local}@{domain.encode('idna').decode('ascii')}"
    except UnicodeError:
        return text


def _phone(text: str) -> str:
    """Digits of a phone number without the international prefix or a trunk 0, so that
    "+47 22 33 44 55", "0047 22334455" and "22 33 44 55" compare equal."""
    international = text.lstrip("( ").startswith("+")  # "(+47) 22 33 44 55" too
    digits = _ascii_digits(re.sub(r"\D", "", text))
    if digits.startswith("00"):
        digits, international = digits[2:], True
    if international:
        for code in _COUNTRY_CODES:
            if digits.startswith(code):
                digits = digits[len(code) :]
                break
    return digits.lstrip("0")


def compile_flows(
    config: Config, schemas: dict[str, dict[str, EntityType]]
) -> tuple[list[Flow], dict[TypeKey, TypeUse]]:
    flows: list[Flow] = []
    uses: dict[TypeKey, TypeUse] = {}

    def use(key: TypeKey) -> TypeUse:
        if key not in uses:
            uses[key] = TypeUse(key, schemas[key[0]][key[1]])
        return uses[key]

    for index, cfg in enumerate(config.dataflows):
        skey: TypeKey = (cfg.source_system, cfg.source_type)
        tkey: TypeKey = (cfg.target_system, cfg.target_type)
        s_et, t_et = schemas[skey[0]][skey[1]], schemas[tkey[0]][tkey[1]]
        mappings = []
        for prop in cfg.properties:
            spath, tpath = s_et.canonical(prop.source), t_et.canonical(prop.target)
            s_prop, t_prop = s_et.property(spath), t_et.property(tpath)
            dtype = prop.type or (t_prop.type if t_prop else None)
            source_type = s_prop.type if s_prop else None
            mappings.append(
                Mapping(
                    spath,
                    tpath,
                    dtype,
                    source_type if source_type is not DataType.REFERENCE else DataType.REFERENCE,
                    prop.direction,
                    prop.source_ref or (s_prop.references if s_prop else None),
                    prop.target_ref or (t_prop.references if t_prop else None),
                )
            )
        match = [
            [
                MatchTerm(
                    s_et.canonical(term.source),
                    t_et.canonical(term.target),
                    term.normalize or infer_normalizer(term.target),
                )
                for term in combination
            ]
            for combination in cfg.match
        ]
        priority = cfg.priority or _priority(config, cfg)
        flow = Flow(index, cfg.key, cfg, skey, tkey, s_et, t_et, mappings, match, priority)
        flows.append(flow)
        su, tu = use(skey), use(tkey)
        su.as_source.append(flow)
        tu.as_target.append(flow)
        for m in mappings:
            su.add_paths(m.source)
            tu.add_paths(m.target)
        for combination in match:
            for term in combination:
                su.add_paths(term.source)
                tu.add_paths(term.target)
        if cfg.filter:
            su.add_paths(*[s_et.canonical(p) for p in cfg.filter.where])
        if cfg.create_when and cfg.create_when.via:
            su.add_paths(*[s_et.canonical(p) for p in cfg.create_when.via])
    for type_use in uses.values():
        et = type_use.entity_type
        if et.archive:
            type_use.add_paths(et.archive[0])
        if et.external_ref_field and type_use.as_target:
            # kept in the snapshot: a target stamped with a source's ref is found by it
            # (a source restored with its id, a store restored from an older copy)
            type_use.add_paths(et.external_ref_field)
    # Reference targets that were not declared: the type the referenced source type flows into.
    for flow in flows:
        resolved = []
        for m in flow.mappings:
            if m.is_reference and m.target_ref_type is None and m.source_ref_type:
                into = {
                    f.target[1]
                    for f in flows
                    if f.source == (flow.source[0], m.source_ref_type)
                    and f.target[0] == flow.target[0]
                } | {
                    f.source[1]
                    for f in flows
                    if f.target == (flow.source[0], m.source_ref_type)
                    and f.source[0] == flow.target[0]
                }
                if len(into) == 1:
                    m = Mapping(
                        m.source,
                        m.target,
                        m.type,
                        m.source_type,
                        m.direction,
                        m.source_ref_type,
                        into.pop(),
                    )
            resolved.append(m)
        flow.mappings = resolved
    return flows, uses


def _priority(config: Config, flow: Dataflow) -> str:
    source = config.systems[flow.source_system].priority
    target = config.systems[flow.target_system].priority
    return flow.target_system if target > source else flow.source_system


def children_of(flows: list[Flow]) -> dict[TypeKey, list[tuple[TypeKey, str]]]:
    """For each entity type that references point at: the types and paths that hold such
    references (the children to plan again when a parent loses its counterpart)."""
    children: dict[TypeKey, list[tuple[TypeKey, str]]] = {}
    for flow in flows:
        for m in flow.mappings:
            if not m.is_reference:
                continue
            sides = (
                (flow.source, m.source_ref_type, m.source),
                (flow.target, m.target_ref_type, m.target),
            )
            for child, parent_type, path in sides:
                if parent_type is None:
                    continue
                entry = (child, path)
                parents = children.setdefault((child[0], parent_type), [])
                if entry not in parents:
                    parents.append(entry)
    return children


def type_order(flows: list[Flow], uses: dict[TypeKey, TypeUse]) -> list[TypeKey]:
    """Entity types with parents (types referenced by others) first."""
    parents: dict[TypeKey, set[TypeKey]] = {key: set() for key in uses}
    for flow in flows:
        for m in flow.mappings:
            if m.is_reference:
                if m.source_ref_type and (flow.source[0], m.source_ref_type) in uses:
                    parents[flow.source].add((flow.source[0], m.source_ref_type))
                if m.target_ref_type and (flow.target[0], m.target_ref_type) in uses:
                    parents[flow.target].add((flow.target[0], m.target_ref_type))
                    # the source's records are translated into the target's parents: their
                    # deletions and links are settled first, so a child is not created
                    # pointing at a parent deleted in the target since the last run
                    parents[flow.source].add((flow.target[0], m.target_ref_type))
    order: list[TypeKey] = []
    visiting: set[TypeKey] = set()

    def visit(key: TypeKey) -> None:
        if key in order or key in visiting:
            return
        visiting.add(key)
        for parent in sorted(parents[key]):
            visit(parent)
        visiting.discard(key)
        order.append(key)

    # sources of dataflows before targets, so chains complete in one round where possible
    for flow in flows:
        visit(flow.source)
    for key in uses:
        visit(key)
    return order
