"""What a dataflow document says, built from a config (and rebuilt from a document).

A :class:`Document` covers one ordered pair (source system, target system); each
:class:`Section` is one dataflow.  Labels are resolved here, once, so that the RST writer
and the importer agree on them:

* a section's source label is ``source_label`` or ``<source system part> <type>``, where the
  system part is ``source_system_label`` or the system's label (same for the target);
* the third column header is ``<target system part> Data Type``.

Property rows are sorted (code-point order, as in the field's documents) unless the dataflow
says ``document_order: config`` (the importer does, for a document listing them otherwise).
What the config says beyond the field's format and that changes what a section means
becomes a note after its table: a property synchronized one way by choice (not one whose
other side cannot be written anyway), a delete policy other than ``unlink``, and a tie
that goes to the target.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from samband.config.model import Config, Dataflow
from samband.docs.schemas import ReadOnlyProperties


@dataclass
class Section:
    source: str  # "Powerofficego Customers"
    target: str  # "Custom Customer"
    source_system: str  # the system part of the source label ("Powerofficego")
    target_system: str  # the system part of the target label ("Custom")
    creates: bool = True  # a target is created for every (filtered) source record
    filter_text: str | None = None
    create_from: list[str] | None = None  # connected-to types, when creation is conditional
    create_into: str | None = None  # the system label those types are synchronized into
    merge: list[tuple[str, str]] = field(default_factory=list)  # rows of the merge table
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # property rows
    # notes after the table
    one_way: list[tuple[str, str, str]] = field(default_factory=list)  # (from, to, direction)
    on_delete: str = "unlink"
    target_wins_ties: bool = False

    @property
    def title(self) -> str:
        return f"{self.source} to {self.target}"


@dataclass
class Document:
    source_id: str
    target_id: str
    source_label: str
    target_label: str
    sections: list[Section] = field(default_factory=list)

    @property
    def title(self) -> str:
        return f"{self.source_label} to {self.target_label} Dataflow"

    @property
    def stem(self) -> str:
        return file_stem(f"{self.source_id}-{self.target_id}")


STEM_LIMIT = 120  # bytes: file systems refuse a name over 255 bytes ('.html' and a temp suffix)


def file_stem(name: str) -> str:
    """``name`` as a file name stem that every file system takes: a name over the limit keeps
    its start and gets a hash of the whole, so two long names still make two files."""
    encoded = name.encode("utf-8")
    if len(encoded) <= STEM_LIMIT:
        return name
    digest = hashlib.sha256(encoded).hexdigest()[:12]
    start = encoded[: STEM_LIMIT - 13].decode("utf-8", errors="ignore")
    return f"{start}-{digest}"


MERGE_JOIN = " + "  # how the terms of one merge combination share a table cell


def type_cell(data_type: str | None) -> str:
    return f'"{data_type}"' if data_type else "N/A"


def system_part(type_label: str | None, system_label: str | None, type_name: str, default: str):
    """The system part of a type label, for the Data Type header and the creation rule."""
    if system_label is not None:
        return system_label
    if type_label is not None and type_label.endswith(" " + type_name):
        return type_label[: -len(type_name) - 1]
    return default


def section_of(
    config: Config, flow: Dataflow, read_only: ReadOnlyProperties | None = None
) -> Section:
    src_sys = system_part(
        flow.source_label,
        flow.source_system_label,
        flow.source_type,
        config.label(flow.source_system),
    )
    tgt_sys = system_part(
        flow.target_label,
        flow.target_system_label,
        flow.target_type,
        config.label(flow.target_system),
    )
    source = flow.source_label if flow.source_label is not None else f"{src_sys} {flow.source_type}"
    target = flow.target_label if flow.target_label is not None else f"{tgt_sys} {flow.target_type}"
    rule = flow.create_when if flow.create else None
    section = Section(
        source=source,
        target=target,
        source_system=src_sys,
        target_system=tgt_sys,
        creates=flow.create and rule is None,
        filter_text=flow.filter.text.strip() if flow.filter is not None else None,
    )
    if rule is not None:
        section.create_from = list(rule.connected_to)
        # "system" or "system.Type": the document names the system.
        section.create_into = config.label(rule.synchronized_into.split(".", 1)[0])
    section.merge = [
        (MERGE_JOIN.join(t.source for t in combo), MERGE_JOIN.join(t.target for t in combo))
        for combo in flow.match
        if combo
    ]
    section.rows = [
        (p.source, p.target, type_cell(p.type.value if p.type else None)) for p in flow.properties
    ]
    if flow.document_order == "sorted":
        section.rows.sort()
    read_only = read_only or ReadOnlyProperties(config)
    for p in flow.properties:
        # the side a one-way property never writes: a choice only when it could be written
        if p.direction == "forward":
            unwritten = (flow.source_system, flow.source_type, p.source)
        elif p.direction == "backward":
            unwritten = (flow.target_system, flow.target_type, p.target)
        else:
            continue
        if not read_only(*unwritten):
            section.one_way.append((p.source, p.target, p.direction))
    if flow.document_order == "sorted":
        section.one_way.sort()  # in the order of the rows
    section.on_delete = flow.on_delete
    winner = flow.priority or (
        flow.target_system
        if _priority(config, flow.target_system) > _priority(config, flow.source_system)
        else flow.source_system
    )
    section.target_wins_ties = winner == flow.target_system != flow.source_system
    return section


def _priority(config: Config, system_id: str) -> int:
    system = config.systems.get(system_id)
    return system.priority if system is not None else 0


def documents_of(config: Config) -> list[Document]:
    """One document per ordered pair of systems, in the order the dataflows first name them."""
    documents: dict[tuple[str, str], Document] = {}
    read_only = ReadOnlyProperties(config)
    for flow in config.dataflows:
        pair = (flow.source_system, flow.target_system)
        if pair not in documents:
            documents[pair] = Document(
                source_id=pair[0],
                target_id=pair[1],
                source_label=config.label(pair[0]),
                target_label=config.label(pair[1]),
            )
        documents[pair].sections.append(section_of(config, flow, read_only))
    return list(documents.values())
