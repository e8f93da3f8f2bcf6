"""Read dataflow documents (RST, every statement form) back into one config.

This is the migration path for teams that hold such documents: the systems and dataflows
they describe become a config, with system ids made from the labels and kinds guessed
where the label says it (the user fills in the rest).  Anything that is not in the format
raises :class:`DocumentError` with the file and line; nothing is written here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from samband.config.todo import TODO_KIND
from samband.docs import rst
from samband.docs.model import MERGE_JOIN, type_cell
from samband.docs.schemas import Schema, is_read_only, kind_schema
from samband.errors import DocumentError, SambandError
from samband.plugin import all_kinds, get_kind
from samband.types import DataType

# the first line of a config the import writes
IMPORTED_MARK = "# Imported by `samband docs import` from: "

# -- reading the blocks of a document --------------------------------------------------


@dataclass
class _Block:
    kind: str  # "title", "para" or "table"
    line: int  # 1-based line of the block's first line
    lines: list[str] = field(default_factory=list)  # title: [text]; para: its lines
    rows: list[list[str]] = field(default_factory=list)  # table rows, header first
    cell_lines: list[list[int]] = field(default_factory=list)  # 1-based line of each cell

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _is_bar(line: str, char: str) -> bool:
    return bool(line) and set(line) == {char}


class _Reader:
    def __init__(self, file: str, text: str) -> None:
        self.file = file
        # Editors add a BOM, CRLF line ends and trailing blanks; none of them carry meaning
        # (an empty cell "     - " reads the same as "     -").
        # (A property name that ends in blanks is therefore read without them.)
        text = text.removeprefix("\ufeff").replace("\r\n", "\n")
        self.lines = [line.rstrip() for line in text.split("\n")]

    def fail(self, index: int, message: str) -> DocumentError:
        return DocumentError(self.file, index + 1, message)

    def title(self) -> tuple[str, int]:
        lines = self.lines
        if len(lines) < 3 or not _is_bar(lines[0], "="):
            raise self.fail(0, "not a dataflow document: expected the title's overline of '='")
        if lines[2] != lines[0]:
            raise self.fail(2, "expected the title's underline, the same line of '=' as above")
        if not lines[1].endswith(" Dataflow"):
            raise self.fail(1, 'the title must read "<source> to <target> Dataflow"')
        return lines[1], 3

    def blocks(self, start: int) -> list[_Block]:
        lines, n, i = self.lines, len(self.lines), start
        result: list[_Block] = []

        def dash_after(j: int) -> bool:
            return j + 1 < n and _is_bar(lines[j + 1], "-")

        while i < n:
            line = lines[i]
            if not line.strip():
                i += 1
            elif dash_after(i):
                result.append(_Block("title", i + 1, [line]))
                i += 2
            elif line.rstrip() == ".. list-table::":
                block, i = self._table(i)
                result.append(block)
            elif line.startswith(" "):
                raise self.fail(i, "unexpected indented line (tables are '.. list-table::')")
            else:
                block = _Block("para", i + 1)
                while i < n and lines[i].strip() and not dash_after(i):
                    if lines[i].startswith(".. "):
                        raise self.fail(i, f"unexpected directive {lines[i].strip()!r}")
                    block.lines.append(lines[i])
                    i += 1
                result.append(block)
        return result

    def _table(self, i: int) -> tuple[_Block, int]:
        lines, n = self.lines, len(self.lines)
        block = _Block("table", i + 1)
        j = i + 1
        header_rows = False
        while j < n and lines[j].startswith("   :"):
            if lines[j].strip() != ":header-rows: 1":
                raise self.fail(j, f"unsupported table option {lines[j].strip()!r}")
            header_rows = True
            j += 1
        if not header_rows:
            raise self.fail(j, "a list-table needs ':header-rows: 1'")
        if j >= n or lines[j].strip():
            raise self.fail(j, "expected a blank line after the table options")
        j += 1
        while j < n and lines[j].strip():
            line = lines[j]
            if line.startswith("   * -"):
                block.rows.append([line[7:]])
                block.cell_lines.append([j + 1])
            elif line.startswith("     -"):
                if not block.rows:
                    raise self.fail(j, "a table cell before the first row ('   * - ')")
                block.rows[-1].append(line[7:])
                block.cell_lines[-1].append(j + 1)
            else:
                raise self.fail(
                    j, "unexpected line in a table (one cell per line: '   * - ' or '     - ')"
                )
            j += 1
        if not block.rows:
            raise self.fail(j, "the table has no header row")
        return block, j


# -- what one document says ------------------------------------------------------------


@dataclass
class _Flow:
    line: int
    x: str
    y: str
    s: str  # the target system part, from the Data Type header
    creates: bool = True
    filter_text: str | None = None
    create_left: str | None = None  # "<system part> <types>" of the creation rule
    create_into: str | None = None
    create_line: int = 0
    merge: list[tuple[str, str]] = field(default_factory=list)
    rows: list[tuple[str, str, str | None]] = field(default_factory=list)
    directions: dict[int, str] = field(default_factory=dict)  # row index → one-way note
    on_delete: str = "unlink"
    target_wins_ties: bool = False


@dataclass
class _Doc:
    file: str
    source: str
    target: str
    flows: list[_Flow]


def _parse(file: str, text: str) -> _Doc:
    reader = _Reader(file, text)
    title, start = reader.title()
    blocks = reader.blocks(start)
    if not blocks or blocks[0].kind != "para" or not blocks[0].text.startswith("Generated:"):
        line = blocks[0].line - 1 if blocks else start
        raise reader.fail(line, "expected 'Generated: YYYY-MM-DD HH:MM:SS' after the title")
    if (
        len(blocks) < 2
        or blocks[1].kind != "title"
        or blocks[1].text
        not in (
            "Introduction",
            "Introduction.",
        )
    ):
        line = blocks[1].line - 1 if len(blocks) > 1 else len(reader.lines) - 1
        raise reader.fail(line, "expected the 'Introduction' section")
    index = 2
    while index < len(blocks) and blocks[index].kind == "para":
        index += 1  # the introduction's own words
    if index < len(blocks) and blocks[index].kind != "title":
        raise reader.fail(blocks[index].line - 1, "unexpected table in the introduction")
    flows: list[_Flow] = []
    while index < len(blocks):
        head = blocks[index]
        end = index + 1
        while end < len(blocks) and blocks[end].kind != "title":
            end += 1
        flows.append(_section(reader, head, blocks[index + 1 : end]))
        index = end
    if not flows:
        raise reader.fail(len(reader.lines) - 1, "the document has no dataflow sections")
    source, target = _split_title(reader, title[: -len(" Dataflow")], flows)
    return _Doc(file, source, target, flows)


def _split_title(reader: _Reader, text: str, flows: list[_Flow]) -> tuple[str, str]:
    """Split "<source> to <target>" where a label may itself hold " to "."""
    candidates = [
        (text[: m.start()], text[m.start() + 4 :]) for m in re.finditer(r"(?= to )", text)
    ]
    if not candidates:
        raise reader.fail(1, 'the title must read "<source> to <target> Dataflow"')

    def score(pair: tuple[str, str]) -> int:
        a, b = pair
        return sum(
            int(f.x.startswith(a + " ")) + int(f.s == b or f.y.startswith(b + " ")) for f in flows
        )

    return max(candidates, key=score)  # max keeps the first of equal scores


def _cells(reader: _Reader, block: _Block, width: int) -> None:
    for row, lines in zip(block.rows, block.cell_lines, strict=True):
        if len(row) != width:
            raise reader.fail(
                lines[0] - 1, f"this table row has {len(row)} cells; expected {width}"
            )


def _section(reader: _Reader, head: _Block, body: list[_Block]) -> _Flow:
    fail_at = head.line  # 1-based; reader.fail takes 0-based
    tables = [index for index, block in enumerate(body) if block.kind == "table"]
    body, notes = (body[: tables[-1] + 1], body[tables[-1] + 1 :]) if tables else (body, [])
    if len(body) < 3 or body[-1].kind != "table":
        raise reader.fail(
            fail_at - 1,
            f"section {head.text!r} must end with the table of synchronized properties",
        )
    table = body[-1]
    _cells(reader, table, 3)
    hx, hy, hs = (cell.rstrip() for cell in table.rows[0])
    if not (hx.endswith(" Property") and hy.endswith(" Property") and hs.endswith(" Data Type")):
        raise reader.fail(
            table.cell_lines[0][0] - 1,
            "the header must read '<source> Property', '<target> Property', '<system> Data Type'",
        )
    x, y, s = hx[: -len(" Property")], hy[: -len(" Property")], hs[: -len(" Data Type")]
    if head.text != f"{x} to {y}".rstrip():  # lines are read without trailing blanks
        raise reader.fail(
            fail_at - 1, f"the section title should read {x + ' to ' + y!r} (from its table)"
        )
    flow = _Flow(head.line, x, y, s)
    for (a, b, c), lines in zip(table.rows[1:], table.cell_lines[1:], strict=True):
        flow.rows.append((a, b, _data_type(reader, lines[2], c.rstrip())))
    for note in notes:
        _note(reader, flow, note, head.text)

    def expect(block: _Block, wanted: str) -> None:
        if block.kind != "para" or block.text != wanted:
            raise reader.fail(block.line - 1, f"expected {wanted!r}")

    expect(body[-3], rst.once_linked(x, y))
    expect(body[-2], rst.following(x, y))
    rest = body[:-3]
    if not rest or rest[0].kind != "para":
        raise reader.fail(fail_at + 1, "expected the section's opening sentence")
    opening, i = rest[0], 1
    tail = rst.FILTER_TAIL.format(y=y)
    if opening.text == rst.every(x, y):
        pass
    elif opening.text == rst.links_only(x, y):
        flow.creates = False
    elif opening.text.endswith(tail) and len(opening.text) > len(tail):
        flow.filter_text = opening.text[: -len(tail)]
        if i < len(rest) and rest[i].kind == "para" and rest[i].text == rst.links_only(x, y):
            flow.creates = False
            i += 1
    else:
        raise reader.fail(
            opening.line - 1,
            f"expected {rst.every(x, y)!r}, {rst.links_only(x, y)!r} or '<condition>{tail}'",
        )
    if i < len(rest) and rest[i].kind == "para" and rest[i].text == rst.merge_lines(x, y):
        i += 1  # follows from the merge criteria; nothing of its own
    rule_head = rst.create_rule_head(x, y)
    if i < len(rest) and rest[i].kind == "para" and rest[i].text.startswith(rule_head):
        sentence = rest[i].text[len(rule_head) :]
        left, sep, into = sentence.rpartition(" that is synchronized into ")
        if not sep or not into.endswith(".") or not left:
            raise reader.fail(
                rest[i].line - 1,
                f"expected '{rule_head}<types> that is synchronized into <system>.'",
            )
        flow.creates = True
        flow.create_left, flow.create_into = left, into[:-1]
        flow.create_line = rest[i].line
        i += 1
    if i < len(rest) and rest[i].kind == "para" and rest[i].text == rst.merge_head(x, y):
        if i + 1 >= len(rest) or rest[i + 1].kind != "table":
            raise reader.fail(rest[i].line - 1, "the merge criteria need their table")
        merge = rest[i + 1]
        _cells(reader, merge, 2)
        if merge.rows[0] != [f"{x} Property", f"{y} Property"]:
            raise reader.fail(
                merge.cell_lines[0][0] - 1,
                f"the header must read '{x} Property', '{y} Property'",
            )
        for (a, b), lines in zip(merge.rows[1:], merge.cell_lines[1:], strict=True):
            if len(a.split(MERGE_JOIN)) != len(b.split(MERGE_JOIN)):
                raise reader.fail(
                    lines[0] - 1,
                    f"merge row {a!r} / {b!r}: both cells need as many properties",
                )
            flow.merge.append((a, b))
        i += 2
    if i < len(rest):
        block = rest[i]
        raise reader.fail(
            block.line - 1,
            "unexpected "
            + ("table" if block.kind == "table" else repr(block.text.splitlines()[0]))
            + f" in section {head.text!r}",
        )
    return flow


def _note(reader: _Reader, flow: _Flow, block: _Block, section: str) -> None:
    """A note after the table (what Samband writes beyond the field's format)."""
    x, y, text = flow.x, flow.y, block.text
    for index, (a, b, _) in enumerate(flow.rows):
        for direction in ("forward", "backward"):
            if text == rst.one_way(x, y, a, b, direction) and index not in flow.directions:
                flow.directions[index] = direction
                return
    for policy in rst.DELETE_POLICIES:
        if text == rst.on_delete(x, y, policy):
            flow.on_delete = policy
            return
    if text == rst.target_wins(y):
        flow.target_wins_ties = True
        return
    first = text.splitlines()[0] if block.kind == "para" else "table"
    raise reader.fail(
        block.line - 1,
        f"unexpected {first!r} after the table of section {section!r} "
        "(only the notes Samband writes may follow it)",
    )


def _data_type(reader: _Reader, line: int, cell: str) -> str | None:
    if cell == "N/A":
        return None
    match = re.fullmatch(r'"([a-z]+)"', cell)
    if not match or match.group(1) not in {t.value for t in DataType}:
        known = ", ".join(f'"{t.value}"' for t in DataType)
        raise reader.fail(line - 1, f"unknown data type {cell!r}; use N/A or one of {known}")
    return match.group(1)


# -- building the config ----------------------------------------------------------------


def guess_kind(label: str, types: set[str]) -> str | None:
    """The system kind a label (or, for an empty label, its entity types) names, if obvious.

    Every installed kind says which label prefixes name it (``label_aliases``) and, for a
    document that leaves the label empty, which entity types do (``entity_type_names``)."""
    squashed = re.sub(r"[^a-z0-9]", "", label.lower())
    kinds = all_kinds(include_test_only=False).values()
    for kind in kinds:
        if any(squashed.startswith(alias) for alias in kind.label_aliases):
            return kind.name
    if not squashed and types:
        for kind in kinds:
            names, telling = kind.entity_type_names, kind.telling_entity_types
            if names and types <= names and types & telling:
                return kind.name
    return None


def _unguessable_kinds() -> str:
    """The kinds a user picks by hand: those no label names."""
    names = [k.name for k in all_kinds(include_test_only=False).values() if not k.label_aliases]
    return ", ".join(names)


def _slug(label: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")


class _Systems:
    """The systems the documents name, by label (one label, one system)."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}  # label → id (assigned once every type is known)
        self.types: dict[str, list[str]] = {}  # label → entity types in use

    def add(self, label: str) -> None:
        if label not in self.ids:
            self.ids[label] = ""
            self.types[label] = []

    def use(self, label: str, type_name: str) -> None:
        self.add(label)
        if type_name not in self.types[label]:
            self.types[label].append(type_name)

    def assign(self) -> None:
        taken: set[str] = set()
        for label in self.ids:
            kind = guess_kind(label, set(self.types[label]))
            base = _slug(label) or (kind or "system")
            candidate, number = base, 2
            while candidate in taken:
                candidate, number = f"{base}-{number}", number + 1
            taken.add(candidate)
            self.ids[label] = candidate


def _split_label(label: str, system: str) -> tuple[str, str | None, str | None]:
    """(type, system part override, whole-label override) of a section's source label."""
    if label.startswith(system + " ") and label[len(system) + 1 :].strip():
        return label[len(system) + 1 :], None, None
    part, _, type_name = label.partition(" ")
    if part and type_name.strip():
        return type_name, part, None
    return (label.strip() or "Type"), None, label


def _q(value: str) -> str:
    """A YAML scalar: plain where that reads back as the same string, else double-quoted."""
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.\-/]*( [A-Za-z0-9_.\-/]+)*", value):
        try:
            if yaml.safe_load(value) == value:
                return value
        except yaml.YAMLError:
            pass
    return _NOT_YAML_PRINTABLE.sub(
        lambda m: f"\\u{ord(m.group()):04x}", json.dumps(value, ensure_ascii=False)
    )


# what YAML does not allow in a document even quoted (a noncharacter such as U+FFFE, C1
# controls) or reads as a line break (U+0085): written as a \u escape, read back as itself
_NOT_YAML_PRINTABLE = re.compile(r"[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass
class _Sides:
    src_type: str
    tgt_type: str
    overrides: list[tuple[str, str]]  # (key, value) label overrides of the dataflow
    src_system: str  # the source system part, as the creation rule names it


def _sides(doc: _Doc, flow: _Flow) -> _Sides:
    src_type, src_part, src_label = _split_label(flow.x, doc.source)
    if flow.y.startswith(flow.s + " ") and flow.y[len(flow.s) + 1 :].strip():
        tgt_type, tgt_label = flow.y[len(flow.s) + 1 :], None
        tgt_part = flow.s if flow.s != doc.target else None
    else:
        tgt_type = flow.y.partition(" ")[2].strip() or flow.y.strip() or "Type"
        tgt_label, tgt_part = flow.y, flow.s
    overrides = [
        (key, value)
        for key, value in (
            ("source_label", src_label),
            ("source_system_label", src_part),
            ("target_label", tgt_label),
            ("target_system_label", tgt_part),
        )
        if value is not None
    ]
    return _Sides(src_type, tgt_type, overrides, src_part if src_part is not None else doc.source)


def _flow_yaml(
    doc: _Doc,
    flow: _Flow,
    sides: _Sides,
    ids: dict[str, str],
    schemas: dict[str, Schema],
    out: list[str],
) -> None:
    source_id, target_id = ids[doc.source], ids[doc.target]
    out.append(f"  - source: {_q(source_id + '.' + sides.src_type)}")
    out.append(f"    target: {_q(target_id + '.' + sides.tgt_type)}")
    for key, value in sides.overrides:
        out.append(f"    {key}: {_q(value)}")
    if flow.filter_text is not None:
        out.append("    filter:")
        out.append(f"      text: {_q(flow.filter_text)}")
        out.append("      where: {}  # TODO: the condition the sync evaluates")
    if not flow.creates:
        out.append("    create: false")
    if flow.create_left is not None:
        names = _split_or(flow.create_left[len(sides.src_system) + 1 :])
        listed = ", ".join(_q(n) for n in names)
        out.append("    create_when:")
        out.append(f"      connected_to: [{listed}]")
        out.append(f"      synchronized_into: {_q(ids[flow.create_into or ''])}")
    if flow.on_delete != "unlink":
        out.append(f"    on_delete: {flow.on_delete}")
    if flow.target_wins_ties and target_id != source_id:
        out.append(f"    priority: {_q(target_id)}")
    if flow.merge:
        out.append("    match:")
        for a, b in flow.merge:
            terms = zip(a.split(MERGE_JOIN), b.split(MERGE_JOIN), strict=True)
            inner = ", ".join(f"{{from: {_q(s)}, to: {_q(t)}}}" for s, t in terms)
            out.append(f"      - [{inner}]")
    cells = [(a, b, type_cell(data_type)) for a, b, data_type in flow.rows]
    if cells != sorted(cells):
        out.append("    document_order: config  # as the document lists the properties")
    if flow.rows:
        out.append("    properties:")
        src_schema, tgt_schema = schemas.get(doc.source, {}), schemas.get(doc.target, {})
        for index, (a, b, data_type) in enumerate(flow.rows):
            typed = f", type: {data_type}" if data_type else ""
            direction = flow.directions.get(index)
            comment = ""
            if direction is None:
                # a property our connector cannot write on one side: the direction that works
                source_locked = is_read_only(src_schema, sides.src_type, a)
                target_locked = is_read_only(tgt_schema, sides.tgt_type, b)
                if target_locked and source_locked:
                    comment = "  # TODO: read-only in both systems: drop this mapping"
                elif target_locked:
                    direction = "backward"
                elif source_locked:
                    direction = "forward"
            way = f", direction: {direction}" if direction else ""
            out.append(f"      - {{from: {_q(a)}, to: {_q(b)}{typed}{way}}}{comment}")


def _split_or(text: str) -> list[str]:
    head, sep, last = text.rpartition(", or ")
    if not sep:
        head, sep, last = text.rpartition(" or ")
    if not sep:
        return [text]
    return [*head.split(", "), last]


def _system_yaml(label: str, system_id: str, types: list[str], out: list[str]) -> str | None:
    """Write the system; return its kind (None: a TODO)."""
    kind = guess_kind(label, set(types))
    out.append(f"  {_q(system_id)}:")
    descriptor = get_kind(kind) if kind is not None else None
    if descriptor is None:
        out.append(
            f"    kind: {TODO_KIND}  # TODO: {_unguessable_kinds()}, or another kind of"
            " `samband validate`"
        )
    else:
        out.append(f"    kind: {descriptor.name}")
    out.append(f"    label: {json.dumps(label, ensure_ascii=False) if not label else _q(label)}")
    if descriptor is not None:
        out.extend(f"    {line}" for line in descriptor.importer_lines)
    if descriptor is not None and descriptor.credentials:
        out.append("    credentials:")
        prefix = re.sub(r"[^A-Z0-9]+", "_", system_id.upper()).strip("_")
        for key in descriptor.credentials:
            out.append(f"      {key}: ${{{prefix}_{key.upper()}}}")
    if kind is None and types:
        out.append("    entity_types:  # TODO: the table or path of each type")
        for name in types:
            out.append(f"      {_q(name)}: {{}}")
    return descriptor.name if descriptor is not None else None


def import_documents(paths: list[str]) -> str:
    """The YAML text of one config holding the systems and dataflows of ``paths``."""
    if not paths:
        raise DocumentError("<none>", 0, "give at least one document")
    docs = []
    for path in paths:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            raise DocumentError(path, 1, "not UTF-8 text") from None
        except OSError as exc:
            raise DocumentError(path, 1, f"cannot read the document: {exc.strerror}") from None
        docs.append(_parse(path, text))
    systems = _Systems()
    planned: list[tuple[_Doc, _Flow, _Sides]] = []
    for doc in docs:
        systems.add(doc.source)
        systems.add(doc.target)
        for flow in doc.flows:
            sides = _sides(doc, flow)
            if flow.create_left is not None:
                if not flow.create_left.startswith(sides.src_system + " "):
                    # The rule names the source system differently from the section title
                    # ("… connected to a <system> <types>"): keep both, as written.
                    part = flow.create_left.partition(" ")[0]
                    sides.overrides = [
                        (key, value)
                        for key, value in sides.overrides
                        if key not in ("source_label", "source_system_label")
                    ] + [("source_label", flow.x), ("source_system_label", part)]
                    sides.src_system = part
                if not flow.create_left.startswith(sides.src_system + " "):
                    raise DocumentError(
                        doc.file,
                        flow.create_line,
                        f"the creation rule must name types of {sides.src_system!r}: "
                        f"'connected to a {sides.src_system} <type>, …'",
                    )
                systems.add(flow.create_into or "")
            systems.use(doc.source, sides.src_type)
            systems.use(doc.target, sides.tgt_type)
            planned.append((doc, flow, sides))
    systems.assign()
    out = [
        IMPORTED_MARK + ", ".join(Path(p).name for p in paths),
        "# Fill in what is marked TODO, then run `samband validate -c THIS_FILE`.",
        "systems:",
    ]
    schemas: dict[str, Schema] = {}
    for label, system_id in systems.ids.items():
        kind = _system_yaml(label, system_id, systems.types[label], out)
        schemas[label] = kind_schema(kind) if kind is not None else {}
    out.append("dataflows:")
    for doc, flow, sides in planned:
        _flow_yaml(doc, flow, sides, systems.ids, schemas, out)
    return "\n".join(out) + "\n"


def check_output(path: Path) -> None:
    """Refuse to write the imported config over a directory or over a config that an import
    did not write (a hand-written config would be lost); an earlier import is replaced."""
    if path.is_dir():
        raise SambandError(f"{path} is a folder; name the config file to write (-o FILE.yaml)")
    if not path.exists():
        return
    try:
        with path.open(encoding="utf-8", errors="replace") as stream:
            first = stream.readline()
    except OSError as exc:
        raise SambandError(f"cannot read {path}: {exc.strerror or exc}") from None
    if not first.startswith(IMPORTED_MARK):
        raise SambandError(
            f"{path} exists and was not written by `samband docs import`: it is left as it is; "
            "write the import to another file (-o imported.yaml) and copy what you need"
        )
