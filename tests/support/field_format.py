"""Documents in the field's format (the seeds' layout), written here independently of
``samband.docs.rst``, and realistic material for them from ``field-properties.tsv``.

A round-trip test writes such a document, imports it, generates it again from the
imported config and compares: the writer below is the specification, so a change of the
generator that departs from the field's layout fails the test instead of passing it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import strategies as st

INTRO = (
    "This technical document provides a detailed overview of the data flow from {a} to {b}. "
    "It serves as a QA checklist for testing purposes."
)


@dataclass
class FieldSection:
    x: str  # "<source system part> <type>"
    y: str  # "<target system part> <type>"
    s: str  # the system part of the Data Type header
    opening: str = "every"  # every | links | filter | filter+links
    filter_text: str = ""
    rule: tuple[str, list[str], str] | None = None  # (system part, types, into)
    merge: list[tuple[str, str]] = field(default_factory=list)
    rows: list[tuple[str, str, str]] = field(default_factory=list)


@dataclass
class FieldDocument:
    source: str
    target: str
    sections: list[FieldSection]
    generated: str = "2024-09-11 07:44:14"


def _or(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + ", or " + items[-1]


def _list_table(rows: list[tuple[str, ...]]) -> str:
    lines = [".. list-table::", "   :header-rows: 1", ""]
    for row in rows:
        lines.extend(("   * - " if i == 0 else "     - ") + cell for i, cell in enumerate(row))
    return "\n".join(lines)


def write(doc: FieldDocument) -> str:
    title = f"{doc.source} to {doc.target} Dataflow"
    bar = "=" * len(title)
    head = (
        f"{bar}\n{title}\n{bar}\n\nGenerated: {doc.generated}\n\nIntroduction\n------------\n\n"
        + INTRO.format(a=doc.source, b=doc.target)
        + "\n\n"
    )
    parts: list[str] = []
    for sec in doc.sections:
        x, y = sec.x, sec.y
        paras: list[str] = []
        if sec.opening.startswith("filter"):
            paras.append(f"{sec.filter_text}, it  will be synchronized with a {y}.")
        elif sec.opening == "every" and sec.rule is None:
            paras.append(f"Every {x} will be synchronized with a {y}.")
        links_only = sec.opening in ("links", "filter+links") or sec.rule is not None
        if links_only and not (sec.opening.startswith("filter") and sec.rule):
            paras.append(
                f"Before any synchronization can take place, a link between a {x} and a "
                f"{y} must be established."
            )
        unconditional = sec.rule is None and sec.opening in ("every", "filter")
        if unconditional and sec.merge:
            paras.append(
                f"If a matching {y} already exists, the {x} will be merged with the existing "
                f"one.\nIf no matching {y} is found, a new {y} will be created."
            )
        if sec.rule is not None:
            system, types, into = sec.rule
            paras.append(
                f"A new {y} will be created from a {x} if it is connected to a {system} "
                f"{_or(types)} that is synchronized into {into}."
            )
        if sec.merge:
            paras.append(
                f"A {x} will merge with a {y} if one of the following property combinations match:"
            )
            paras.append(_list_table([(f"{x} Property", f"{y} Property"), *sec.merge]))
        paras.append(
            f"Once a link between a {x} and a {y} is established, it will keep in sync between "
            "the two systems, regardless of where it is edited."
        )
        paras.append(f"The following properties are synchronized between a {x} and a {y}:")
        header = (f"{x} Property", f"{y} Property", f"{sec.s} Data Type")
        paras.append(_list_table([header, *sec.rows]))
        heading = f"{x} to {y}"
        parts.append(f"{heading}\n{'-' * len(heading)}\n" + "\n\n".join(paras) + "\n\n")
    return head + "\n".join(parts)


def comparable(text: str) -> str:
    """The document without its Generated value and its Introduction paragraph."""
    lines = text.split("\n")
    end = lines.index("", 9)
    return "\n".join([*lines[:4], "Generated: <stamp>", *lines[5:9], "<intro>", *lines[end:]])


# -- material from field-properties.tsv --------------------------------------------------


@dataclass(frozen=True)
class FieldProperty:
    system: str  # our kind ("poweroffice-go")
    entity: str  # "Customers (human data)"
    name: str
    data_type: str  # string, integer, float, boolean, N/A or "-"
    counterpart: str  # "businessnxt.Country.name"


def field_properties(tsv: Path) -> list[FieldProperty]:
    with tsv.open(encoding="utf-8") as stream:
        rows = [r for r in csv.reader(stream, delimiter="\t") if r and not r[0].startswith("#")]
    return [FieldProperty(r[0], r[1], r[2], r[3], r[5]) for r in rows[1:]]


# How the field's documents spell our systems in titles and sections.
OUR_LABELS = {
    "poweroffice-go": ["PowerOffice GO", "Powerofficego"],
    "exact-online": ["ExactOnline", "Exact"],
    "webcrm": ["WebCRM", ""],
    "crmoffice": ["CRMOffice"],
}
# Systems we have no connector for, as the counterpart column names them.
OTHER_LABELS = {
    "businesscentral": "Businesscentral",
    "businessnxt": "BusinessNXT",
    "tripletex": "Tripletex",
    "hubspot": "HubSpot",
    "superoffice": "SuperOffice",
    "tidsbanken": "Tidsbanken",
    "visma": "Visma",
    "chargebee": "Chargebee",
}
TYPE_CELLS = ['"string"', '"integer"', '"float"', '"boolean"', '"decimal"', '"datetime"', "N/A"]


def type_cell(data_type: str) -> str:
    return f'"{data_type}"' if data_type not in ("-", "N/A", "") else "N/A"


def split_counterpart(counterpart: str) -> tuple[str, str, str]:
    """(system, entity type, property) of "businessnxt.Country.name" (types may hold dots
    only in their parenthesised part; properties are dotted paths)."""
    system, _, rest = counterpart.partition(".")
    if "(" in rest.split(".", 1)[0]:
        entity, _, prop = rest.partition(").")
        return system, entity + ")", prop
    entity, _, prop = rest.partition(".")
    return system, entity, prop


@st.composite
def field_documents(draw: st.DrawFn, material: list[FieldProperty]) -> FieldDocument:
    """A document between one of our systems and another system (either may be one we have
    no connector for), with sections, rows and statement forms drawn from the field."""
    ours = draw(st.sampled_from(sorted(OUR_LABELS)))
    our_label = draw(st.sampled_from(OUR_LABELS[ours]))
    mine = [p for p in material if p.system == ours]
    other_kind = draw(st.sampled_from([*sorted(OTHER_LABELS), *sorted(OUR_LABELS)]))
    other_label = OTHER_LABELS.get(other_kind) or draw(st.sampled_from(OUR_LABELS[other_kind]))
    ours_is_source = draw(st.booleans())
    src_label, tgt_label = (our_label, other_label) if ours_is_source else (other_label, our_label)
    entities = sorted({p.entity for p in mine})
    theirs_types = sorted({split_counterpart(p.counterpart)[1] or "Customer" for p in mine})
    sections: list[FieldSection] = []
    for _ in range(draw(st.integers(1, 4))):
        entity = draw(st.sampled_from(entities))
        props = [p for p in mine if p.entity == entity]
        chosen = draw(st.lists(st.sampled_from(props), max_size=12))
        other_entity = split_counterpart(chosen[0].counterpart)[1] if chosen else "Customer"
        other_entity = other_entity or "Customer"
        rows = []
        for p in chosen:
            theirs = split_counterpart(p.counterpart)[2] or p.name
            pair = (p.name, theirs) if ours_is_source else (theirs, p.name)
            rows.append((*pair, type_cell(p.data_type)))
        rows.sort()  # the field's documents list rows in code-point order
        src_type, tgt_type = (entity, other_entity) if ours_is_source else (other_entity, entity)
        # a section may name a system by a shorter spelling than the title (seed 004)
        src_part = draw(st.sampled_from(sorted({src_label, src_label.split(" ")[0]})))
        x, y = f"{src_part} {src_type}", f"{tgt_label} {tgt_type}"
        opening = draw(st.sampled_from(["every", "links", "filter", "filter+links"]))
        section = FieldSection(x, y, tgt_label, opening, rows=rows)
        if opening.startswith("filter"):
            section.filter_text = draw(
                st.sampled_from(
                    [
                        f"When a {x} has a 100% probability of being sold",
                        f"When the {x} is active (status: 'A')",
                        "If IsPerson is true",
                    ]
                )
            )
        if opening != "links" and opening != "filter+links" and draw(st.booleans()):
            pool = entities if ours_is_source else theirs_types
            types = draw(st.lists(st.sampled_from(pool), min_size=1, max_size=3, unique=True))
            section.rule = (src_part, types, tgt_label)
        if rows and draw(st.booleans()):
            picked = draw(st.lists(st.sampled_from(rows), min_size=1, max_size=3, unique=True))
            section.merge = [(a, b) for a, b, _ in picked]
            if len(picked) > 1 and draw(st.booleans()):
                section.merge.append(
                    (" + ".join(a for a, _, _ in picked), " + ".join(b for _, b, _ in picked))
                )
        sections.append(section)
    return FieldDocument(src_label, tgt_label, sections)
