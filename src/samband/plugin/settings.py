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
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

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


def _known_keys(model: type[BaseModel]) -> list[str]:
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


def settings_problems(model: type[BaseModel], data: Mapping[str, Any]) -> list[SettingProblem]:
    """Every key of ``data`` that ``model`` refuses, with a "did you mean" hint."""
    known = _known_keys(model)
    problems: list[SettingProblem] = []
    checked: dict[str, Any] = {}
    unchecked: set[str] = set()
    open_model = model.model_config.get("extra") == "allow"
    for key, raw in data.items():
        if not open_model and key not in model.model_fields and key not in known:
            best = closest(str(key), known)
            hint = (
                f"did you mean {best!r}?" if best else f"known keys: {', '.join(known) or '(none)'}"
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
        for error in exc.errors():
            loc = tuple(error["loc"])
            if not loc or (error["type"] == "missing" and loc[0] in unchecked):
                continue
            message = str(error.get("msg", ""))
            message = message.removeprefix("Value error, ")
            problems.append(SettingProblem(loc, message))
    return problems
