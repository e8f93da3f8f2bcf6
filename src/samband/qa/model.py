"""What a QA run found: per document, per section (dataflow), per property and check."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# The three checks of every mapped property, in the order they run.
CREATE = "arrives in the target"
BACK = "target edit flows back"
FORWARD = "source edit flows forward"
QUIET = "a further run writes nothing"

PASSED, FAILED, SKIPPED = "passed", "failed", "skipped"


@dataclass
class PropertyResult:
    """One check of one mapped property."""

    source: str  # source path
    target: str  # target path
    data_type: str | None
    check: str  # CREATE, BACK or FORWARD
    status: str  # passed | failed | skipped
    expected: Any = None
    actual: Any = None
    reason: str = ""

    @property
    def passed(self) -> bool:
        return self.status != FAILED


@dataclass
class Leftover:
    """A test record the run created and could not delete."""

    ref: str  # system:type:id
    why: str
    archived: bool = False


@dataclass
class SectionResult:
    """One section of a document: one dataflow, executed."""

    document: str  # the document's stem, ``<source>-<target>``
    title: str  # "Customcrm Customer to Powerofficego Customers"
    source: str  # system.Type
    target: str  # system.Type
    status: str = PASSED
    properties: list[PropertyResult] = field(default_factory=list)
    messages: list[str] = field(default_factory=list)  # section-wide findings
    created: list[str] = field(default_factory=list)  # refs of every test record
    leftovers: list[Leftover] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.status = FAILED
        self.messages.append(message)

    def add(self, result: PropertyResult) -> None:
        self.properties.append(result)
        if result.status == FAILED:
            self.status = FAILED

    @property
    def passed(self) -> bool:
        return self.status != FAILED


@dataclass
class DocumentResult:
    stem: str
    title: str
    sections: list[SectionResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.sections)


@dataclass
class QaResult:
    """The outcome of ``samband qa``; ``passed`` decides the exit code."""

    run_id: str
    documents: list[DocumentResult] = field(default_factory=list)
    reports: list[str] = field(default_factory=list)  # paths of the files written

    @property
    def sections(self) -> list[SectionResult]:
        return [s for d in self.documents for s in d.sections]

    @property
    def leftovers(self) -> list[Leftover]:
        return [left for s in self.sections for left in s.leftovers]

    @property
    def passed(self) -> bool:
        return all(d.passed for d in self.documents)
