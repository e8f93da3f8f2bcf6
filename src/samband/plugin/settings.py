"""Typed settings of a kind, and the one rate-limit type every connector uses.

A kind's settings model lists every key a system of that kind may have next to ``kind``,
``label`` and ``credentials``; its entity-type model lists the keys under
``entity_types.<type>``.  Both refuse unknown keys (``extra="forbid"``), and
:func:`settings_problems` words that refusal with the closest known key.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, ClassVar, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
)

_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}


class RateLimit(BaseModel):
    """At most ``calls`` requests in any ``per`` seconds.

    In a config: ``{calls: 250, per: 60}``, ``"250/minute"`` (``s``, ``min``, ``hour`` and
    their spellings), or a bare number, which keeps the meaning the kind always gave it
    (see :attr:`KindSettings.bare_rate_limit_per`).  ``0`` calls: no pacing.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", use_attribute_docstrings=True)

    calls: float = Field(ge=0)
    """Requests allowed in each period; 0 turns pacing off."""
    per: float = Field(default=1.0, gt=0)
    """The period, in seconds."""

    @property
    def paced(self) -> bool:
        return self.calls > 0

    def __str__(self) -> str:
        return f"{self.calls:g}/{self.per:g}s"

    @classmethod
    def parse(cls, value: Any, bare_per: float) -> RateLimit:
        """A config value → RateLimit; ``bare_per`` is the period of a bare number."""
        if isinstance(value, RateLimit):
            return value
        if isinstance(value, Mapping):
            data = dict(value)
            if "period" in data and "per" not in data:  # CRMOffice's first spelling
                data["per"] = data.pop("period")
            return cls.model_validate(data)
        if isinstance(value, bool):
            raise ValueError("a rate limit is a number of calls, not true/false")
        if isinstance(value, int | float):
            return cls(calls=value, per=bare_per)
        if isinstance(value, str):
            text = value.strip()
            calls, slash, unit = text.partition("/")
            try:
                if not slash:
                    return cls(calls=float(text), per=bare_per)
                unit = unit.strip().lower()
                per = _UNITS.get(unit)
                if per is None:
                    per = float(unit.rstrip("s") if unit.endswith("s") else unit)
                return cls(calls=float(calls), per=per)
            except ValueError:
                pass
        raise ValueError(
            f"rate limit {value!r} is not understood; write {{calls: 10, per: 1}} "
            "or '10/second', '250/minute'"
        )


def _http_url(value: str | None) -> str | None:
    if value is None or "${" in value:
        return value  # a reference is checked once it is resolved
    parts = urlsplit(value.strip())
    if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
        best = closest(parts.scheme, ("http", "https")) if parts.scheme else None
        hint = f" (did you mean {best}://?)" if best and parts.netloc else ""
        raise ValueError(
            f"{value!r} is not an http:// or https:// address{hint}; write it as https://host/path"
        )
    return value


HttpUrl = Annotated[str, AfterValidator(_http_url)]
"""An http:// or https:// address (a ``${VAR}`` reference is checked at run time)."""


def choice(*allowed: str, lower: bool = False) -> BeforeValidator:
    """A text setting that must be one of ``allowed``, refused with a "did you mean"."""

    def check(value: Any) -> Any:
        if not isinstance(value, str) or "${" in value:
            return value
        text = value.lower() if lower else value
        if text in allowed:
            return text
        best = closest(value, allowed)
        maybe = f" (did you mean {best!r}?)" if best else ""
        raise ValueError(f"{value!r} is not known{maybe}; use one of {', '.join(allowed)}")

    check.choices = allowed  # type: ignore[attr-defined]  # for docs/gen_config.py
    return BeforeValidator(check)


class _Strict(BaseModel):
    # a number where text is expected is its text (a config's ``id: 7``), as before
    model_config = ConfigDict(
        extra="forbid",
        populate_by_name=True,
        coerce_numbers_to_str=True,
        use_attribute_docstrings=True,  # a field's docstring is its description
    )


class KindSettings(_Strict):
    """The settings every kind has.  A kind subclasses this and adds its own keys."""

    # What a bare number under ``rate_limit`` means, in seconds (per second, per minute);
    # None: the kind paces itself from the vendor's headers and has no ``rate_limit``.
    bare_rate_limit_per: ClassVar[float | None] = None

    base_dir: str | None = Field(default=None, exclude=True)
    """The folder of the config file; set by Samband, not written in configs."""

    @field_validator("rate_limit", mode="before", check_fields=False)
    @classmethod
    def _rate_limit(cls, value: Any) -> Any:
        if value is None or cls.bare_rate_limit_per is None:
            return value
        return RateLimit.parse(value, cls.bare_rate_limit_per)

    @classmethod
    def of(cls, config: Any, system_id: str = "?") -> Any:
        """The settings of a ``SystemConfig`` (``${VAR}`` already resolved)."""
        return _parse(cls, config.settings(), system_id, "")


class EntityTypeSettings(_Strict):
    """Keys every kind accepts under ``entity_types.<type>``."""

    read_only: bool | None = None
    """True: Samband never writes this entity type (default: what the kind says)."""

    @classmethod
    def of(cls, type_config: Any, system_id: str = "?", type_name: str = "") -> Any:
        """The settings of an ``EntityTypeConfig`` (None: the type is not configured)."""
        data = type_config.settings() if type_config is not None else {}
        return _parse(cls, data, system_id, f"entity type {type_name}: " if type_name else "")


def _parse(model: type[BaseModel], data: Mapping[str, Any], system_id: str, where: str) -> Any:
    try:
        return model.model_validate(dict(data))
    except ValidationError:
        from samband.errors import ConnectorError

        problems = settings_problems(model, data) or [SettingProblem((), "invalid settings")]
        first = problems[0]
        key = ".".join(str(p) for p in first.path)
        raise ConnectorError(
            system_id, f"{where}{key + ': ' if key else ''}{first.message}", first.hint
        ) from None


@dataclass(frozen=True)
class SettingProblem:
    """One refused setting: where (keys below the model's root), what, and a hint."""

    path: tuple[str | int, ...]
    message: str
    hint: str | None = None


def closest(name: str, candidates: Iterable[str]) -> str | None:
    options = list(candidates)
    found = difflib.get_close_matches(name, options, n=1, cutoff=0.5)
    if found:
        return found[0]
    return {c.lower(): c for c in options}.get(name.lower())


def known_keys(model: type[BaseModel]) -> list[str]:
    keys = []
    for name, info in model.model_fields.items():
        if info.exclude:
            continue
        keys.append(info.alias or name)
    return sorted(keys)


def _offline(value: Any) -> tuple[Any, bool]:
    """A value as validation can see it before a run: a ``${VAR:-default}`` reference is
    its default; a reference without one cannot be checked (False)."""
    if not isinstance(value, str) or "${" not in value:
        return value, True
    match = _REFERENCE.fullmatch(value.strip())
    if match is None:
        return value, False
    if match.group(2) is None:
        return value, False
    return match.group(2), True


def settings_problems(
    model: type[BaseModel], data: Mapping[str, Any], also_known: Iterable[str] = ()
) -> list[SettingProblem]:
    """Every key of ``data`` that ``model`` refuses, with a "did you mean" hint (among the
    model's keys and ``also_known``, the keys that sit beside them: ``label``, ...)."""
    known = known_keys(model)
    suggested = sorted({*known, *also_known})
    problems: list[SettingProblem] = []
    checked: dict[str, Any] = {}
    unchecked: set[str] = set()
    open_model = model.model_config.get("extra") == "allow"
    for key, raw in data.items():
        if not open_model and key not in model.model_fields and key not in known:
            best = closest(str(key), suggested)
            hint = (
                f"did you mean {best!r}?"
                if best
                else f"known keys: {', '.join(suggested) or '(none)'}"
            )
            problems.append(SettingProblem((key,), f"unknown key {key!r}", hint))
            continue
        value, checkable = _offline(raw)
        if checkable:
            checked[key] = value
        else:
            unchecked.add(key)
    try:
        model.model_validate(checked)
    except ValidationError as exc:
        errors = exc.errors()
        misspelt = misspelt_in(errors)
        for error in errors:
            loc = tuple(error["loc"])
            if not loc or (error["type"] == "missing" and loc[0] in unchecked):
                continue
            if error["type"] == "missing" and loc[:-1] in misspelt:
                continue  # the unknown key beside it is most likely this one misspelt
            if error["type"] == "extra_forbidden":
                problems.append(unknown_key_problem(model, loc))
                continue
            problems.append(SettingProblem(loc, error_text(error)))
    return problems


def misspelt_in(errors: Iterable[Any]) -> set[tuple[Any, ...]]:
    """The objects (their locations) that hold an unknown key: a required key missing
    from one of them is not reported on its own."""
    return {tuple(e["loc"])[:-1] for e in errors if e["type"] == "extra_forbidden"}


def error_text(error: Any) -> str:
    """A pydantic error in the words of a config message; an unknown choice (an enum or a
    literal) with the closest allowed value."""
    message = str(error.get("msg", "")).removeprefix("Value error, ")
    if error.get("type") in ("enum", "literal_error") and isinstance(error.get("input"), str):
        allowed = re.findall(r"'([^']*)'", str((error.get("ctx") or {}).get("expected", "")))
        best = closest(error["input"], allowed)
        maybe = f" (did you mean {best!r}?)" if best else ""
        return f"{error['input']!r} is not known{maybe}; use one of {', '.join(allowed)}"
    return message


def unknown_key_problem(model: type[BaseModel], loc: tuple[Any, ...]) -> SettingProblem:
    """An unknown key at ``loc`` below ``model``, with the closest known key as a hint."""
    key = str(loc[-1])
    inner = model_at(model, loc[:-1])
    known = known_keys(inner) if inner is not None else []
    best = closest(key, known)
    hint = f"did you mean {best!r}?" if best else f"known keys: {', '.join(known) or '(none)'}"
    return SettingProblem(tuple(loc), f"unknown key {key!r}", hint)


def model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that validates the object at ``loc`` (keys and list indexes) below
    ``model``, or None where the value is not a model."""
    current: Any = model
    for part in loc:
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            current = _step(current, part)
            if current is None:
                return None
            continue
        field = current.model_fields.get(str(part))
        if field is None:
            field = next((f for f in current.model_fields.values() if f.alias == part), None)
        if field is None:
            return None
        current = field.annotation
        while True:  # unwrap Optional and Annotated
            unwrapped = _unwrap(current)
            if unwrapped is current:
                break
            current = unwrapped
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    origin = get_origin(annotation)
    if origin is Annotated:
        return get_args(annotation)[0]
    if origin in (Union, type(int | None)):
        models = [
            a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if len(models) == 1:
            return models[0]
        rest = [a for a in get_args(annotation) if a is not type(None)]
        return rest[0] if len(rest) == 1 else annotation
    return annotation


def _step(annotation: Any, part: Any) -> Any:
    """One key or index into a ``dict[...]`` or ``list[...]`` annotation."""
    annotation = _unwrap(annotation)
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is dict and len(args) == 2:
        return _unwrap(args[1])
    if origin is list and args and isinstance(part, int):
        return _unwrap(args[0])
    if origin in (Union, type(int | None)):
        for option in args:
            found = _step(option, part)
            if found is not None:
                return found
    return None
