"""The OData v2 subset the Exact Online sandbox understands.

``$filter`` expressions with ``eq ne gt ge lt le``, ``and``/``or``/``not``, parentheses,
literals (``'text'`` with ``''`` escapes, numbers, ``true``/``false``/``null``,
``datetime'…'``, ``guid'…'``) and the functions ``trim``, ``tolower``, ``toupper``,
``length``, ``substringof``, ``startswith`` and ``endswith``.  Text is compared without
regard to case, as Exact Online's SQL Server collation does.  A filter is parsed once
into a predicate over a record (a dict of Python values; date-times aware).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from samband.kinds.exact_online.sandbox._wire import from_client

Predicate = Callable[[dict[str, Any]], bool]
Value = Callable[[dict[str, Any]], Any]


class ODataError(ValueError):
    """A query option the sandbox cannot understand (answered with 400)."""


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<typed>(?:datetime|guid|datetimeoffset)'[^']*')
      | (?P<string>'(?:[^']|'')*')
      | (?P<number>-?\d+(?:\.\d+)?[LMmdf]?)
      | (?P<punct>[(),])
      | (?P<name>[A-Za-z_][A-Za-z0-9_/]*)
    )""",
    re.VERBOSE,
)
_COMPARE = {"eq", "ne", "gt", "ge", "lt", "le"}
_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "trim": lambda s: s.strip() if isinstance(s, str) else s,
    "tolower": lambda s: s.lower() if isinstance(s, str) else s,
    "toupper": lambda s: s.upper() if isinstance(s, str) else s,
    "length": lambda s: len(s) if isinstance(s, str) else None,
    "substringof": lambda a, b: isinstance(a, str) and isinstance(b, str) and a in b,
    "startswith": lambda a, b: isinstance(a, str) and isinstance(b, str) and a.startswith(b),
    "endswith": lambda a, b: isinstance(a, str) and isinstance(b, str) and a.endswith(b),
}


def _tokens(text: str) -> list[tuple[str, str]]:
    result: list[tuple[str, str]] = []
    pos = 0
    text = text.rstrip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match or match.end() == pos:
            raise ODataError(f"cannot parse $filter near {text[pos : pos + 20]!r}")
        kind = match.lastgroup or ""
        result.append((kind, match.group(kind)))
        pos = match.end()
    return result


class _Parser:
    def __init__(self, text: str, known: set[str] | None) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.known = known
        self.named: set[str] = set()  # the fields the filter names

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.peek()
        if token is None:
            raise ODataError("the $filter ends too early")
        self.pos += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token and token[0] == "name" and token[1].lower() == word:
            self.pos += 1
            return True
        return False

    def expect(self, punct: str) -> None:
        _kind, value = self.take()
        if value != punct:
            raise ODataError(f"expected {punct!r} in $filter, found {value!r}")

    def parse(self) -> Predicate:
        predicate = self.or_expr()
        if self.peek() is not None:
            raise ODataError(f"unexpected {self.peek()[1]!r} in $filter")  # type: ignore[index]
        return predicate

    def or_expr(self) -> Predicate:
        parts = [self.and_expr()]
        while self.keyword("or"):
            parts.append(self.and_expr())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def and_expr(self) -> Predicate:
        parts = [self.not_expr()]
        while self.keyword("and"):
            parts.append(self.not_expr())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def not_expr(self) -> Predicate:
        if self.keyword("not"):
            inner = self.not_expr()
            return lambda r: not inner(r)
        return self.comparison()

    def comparison(self) -> Predicate:
        token = self.peek()
        if token and token[1] == "(":
            # a parenthesised boolean expression
            self.take()
            inner = self.or_expr()
            self.expect(")")
            return inner
        left = self.value()
        token = self.peek()
        if token and token[0] == "name" and token[1].lower() in _COMPARE:
            op = self.take()[1].lower()
            right = self.value()
            return lambda r: _compare(op, left(r), right(r))
        return lambda r: bool(left(r))

    def value(self) -> Value:
        kind, text = self.take()
        if kind == "typed":
            prefix, _, rest = text.partition("'")
            literal = rest[:-1]
            if prefix.lower() == "guid":
                guid = literal.lower()
                return lambda r: guid
            try:
                moment = from_client(literal)
            except ValueError:
                raise ODataError(f"{text} is not a valid date-time") from None
            return lambda r: moment
        if kind == "string":
            string = text[1:-1].replace("''", "'")
            return lambda r: string
        if kind == "number":
            number: Any = text.rstrip("LMmdf")
            number = Decimal(number) if "." in number else int(number)
            return lambda r: number
        if kind == "punct":
            if text == "(":
                inner = self.or_expr()
                self.expect(")")
                return inner
            raise ODataError(f"unexpected {text!r} in $filter")
        lowered = text.lower()
        if lowered in ("true", "false"):
            flag = lowered == "true"
            return lambda r: flag
        if lowered == "null":
            return lambda r: None
        nxt = self.peek()
        if lowered in _FUNCTIONS and nxt and nxt[1] == "(":
            self.take()
            args = [self.value()]
            while self.peek() and self.peek()[1] == ",":  # type: ignore[index]
                self.take()
                args.append(self.value())
            self.expect(")")
            function = _FUNCTIONS[lowered]
            return lambda r: function(*(a(r) for a in args))
        field = text
        if self.known is not None and field not in self.known:
            raise ODataError(f"No property '{field}' exists in this type")
        self.named.add(field)
        return lambda r: r.get(field)


def _normal(value: Any) -> Any:
    if isinstance(value, float):
        return Decimal(repr(value))
    return value


def _compare(op: str, left: Any, right: Any) -> bool:
    left, right = _normal(left), _normal(right)
    if isinstance(left, str) and isinstance(right, str):
        # Exact Online's database compares text without regard to case (a guid too)
        left, right = left.casefold(), right.casefold()
    if op == "eq":
        return bool(left == right)
    if op == "ne":
        return bool(left != right)
    if left is None or right is None:
        return False
    if isinstance(left, datetime) != isinstance(right, datetime):
        raise ODataError("cannot compare a date-time with another kind of value")
    try:
        if op == "gt":
            return bool(left > right)
        if op == "ge":
            return bool(left >= right)
        if op == "lt":
            return bool(left < right)
        return bool(left <= right)
    except TypeError:
        raise ODataError(f"cannot compare {left!r} with {right!r}") from None


def parse_filter(text: str, known: set[str] | None = None) -> Predicate:
    """``$filter`` text → predicate over a record; raises :class:`ODataError`, also for
    a field not in ``known`` (when given).  Missing fields of a record read as null."""
    if not text.strip():
        return lambda r: True
    return _Parser(text, known).parse()


def filter_fields(text: str) -> set[str]:
    """The fields a ``$filter`` names (raises :class:`ODataError` when it cannot be read)."""
    if not text.strip():
        return set()
    parser = _Parser(text, None)
    parser.parse()
    return parser.named


def parse_select(text: str | None) -> list[str] | None:
    """``$select`` → field names (None: every field)."""
    if text is None or not text.strip():
        return None
    fields = [part.strip() for part in text.split(",") if part.strip()]
    if "*" in fields:
        return None
    return fields


def parse_orderby(text: str | None) -> list[tuple[str, bool]]:
    """``$orderby`` → ``[(field, descending)]``."""
    result: list[tuple[str, bool]] = []
    for part in (text or "").split(","):
        words = part.split()
        if words:
            result.append((words[0], len(words) > 1 and words[1].lower() == "desc"))
    return result
