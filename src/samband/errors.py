"""The exceptions Samband raises, in one hierarchy.

``SambandError`` is the root.  Errors about a whole system (wrong URL, wrong credentials,
an exhausted API budget) stop the work on that system; errors about one record
(``RecordError``) quarantine that record and let the run go on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


class SambandError(Exception):
    """Root of every error Samband raises on purpose."""


@dataclass
class Problem:
    """One finding of config or document validation, printed as ``FILE:LINE:COLUMN: message``."""

    file: str
    line: int
    column: int
    message: str
    hint: str | None = None
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        text = f"{self.file}:{self.line}:{self.column}: {self.severity}: {self.message}"
        if self.hint:
            text += f" (hint: {self.hint})"
        return text


class ConfigError(SambandError):
    """The config file cannot be used; ``problems`` lists every finding."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class DocumentError(SambandError):
    """A dataflow document that is not in the expected format."""

    def __init__(self, file: str, line: int, message: str) -> None:
        self.file, self.line = file, line
        super().__init__(f"{file}:{line}: {message}")


class ConversionError(SambandError, ValueError):
    """A value that cannot be converted to a data type without loss."""


class StoreError(SambandError):
    """The state store cannot be opened or written."""


class ConnectorError(SambandError):
    """A system-level failure: the system cannot be used for this run."""

    def __init__(self, system: str, message: str, hint: str | None = None) -> None:
        self.system, self.hint = system, hint
        text = f"system {system!r}: {message}"
        if hint:
            text += f" — {hint}"
        super().__init__(text)


class AuthError(ConnectorError):
    """Credentials were refused or a token could not be obtained."""


class UnreachableError(ConnectorError):
    """The system's URL does not answer."""


class ContractError(ConnectorError):
    """An API answer that breaks the API's contract (not JSON, missing id, wrong shape)."""


class QuotaExhausted(ConnectorError):
    """The API budget is spent; the run ends cleanly and can go on at ``resume_at``."""

    def __init__(self, system: str, message: str, resume_at: datetime | None = None) -> None:
        self.resume_at = resume_at
        hint = f"the run can go on after {resume_at.isoformat()}" if resume_at else None
        super().__init__(system, message, hint)


class CursorExpired(SambandError):
    """Raised by a read, before its first page, when the change feed no longer reaches
    back to the cursor (its log was pruned past it): the engine reads everything again."""


class Stale(SambandError):
    """An update refused because the record no longer holds the values it had when it was
    read (someone edited it in the meantime): it is read again and planned anew."""


class TransientError(SambandError):
    """A failure that may pass (timeouts, 5xx, 429 after retries were used up)."""


@dataclass
class RecordError(SambandError):
    """One record was rejected or cannot be converted; it is quarantined with ``reason``."""

    reason: str
    ref: str | None = None
    details: dict[str, object] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.reason)

    def __str__(self) -> str:
        return f"{self.ref}: {self.reason}" if self.ref else self.reason


class NotFound(RecordError):
    """The record does not exist (any longer) in the system."""


class InUse(RecordError):
    """The record cannot be deleted because other records use it."""


class CircuitBreakerTripped(SambandError):
    """A run would delete or change an unusual share of an entity type.  ``details`` is
    what ``--json`` prints: the dataflow, the counts, the records it would have written
    or deleted, and the commands to go on."""

    def __init__(self, message: str, details: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.details: dict[str, Any] = details or {}


class RunLocked(SambandError):
    """Another process holds the lease this run needs."""
