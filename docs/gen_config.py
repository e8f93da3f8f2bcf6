"""Generate docs/reference/configuration.md from the pydantic config models.

Documents the top-level models (``samband.config.model.Config`` and every model it
holds) and, where a kind registry exists, each kind's own settings model from its
descriptor (``descriptor.settings``, and ``descriptor.entity_type_settings`` when a kind
has its own).  Each key is listed with its type, its default and its description (the
field's docstring, or ``Field(description=...)``); :func:`undescribed` names the keys
that have none.  Without a registry the page says so and still builds.

``python docs/gen_config.py`` writes the page, ``--check`` exits 1 when the committed page
is not what the models generate.  docs/hooks.py runs it on every ``mkdocs build``.
"""

from __future__ import annotations

import enum
import importlib
import re
import sys
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

PAGE = Path(__file__).resolve().parent / "reference" / "configuration.md"


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation names (inside lists, dicts, unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    found: list[type[BaseModel]] = []
    for arg in typing.get_args(annotation):
        found.extend(_models_in(arg))
    return found


def _walk(model: type[BaseModel], seen: list[type[BaseModel]]) -> list[type[BaseModel]]:
    if model in seen:
        return seen
    seen.append(model)
    for field in model.model_fields.values():
        for inner in _models_in(field.annotation):
            _walk(inner, seen)
    return seen


def _anchor(model: type[BaseModel], prefix: str = "") -> str:
    return (prefix + model.__name__).lower()


def _type(annotation: Any, anchors: dict[type[BaseModel], str]) -> str:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        if annotation in anchors:
            return f"[{annotation.__name__}](#{anchors[annotation]})"
        return annotation.__name__
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin is typing.Annotated:
        for meta in annotation.__metadata__:
            choices = getattr(getattr(meta, "func", None), "choices", None)
            if choices:  # samband.plugin.settings.choice
                return " \\| ".join(f"`{arg}`" for arg in choices)
        return _type(args[0], anchors)
    if origin is typing.Literal:
        return " \\| ".join(f"`{arg}`" for arg in args)
    if origin in (typing.Union, types.UnionType):
        return " \\| ".join(_type(arg, anchors) for arg in args)
    if origin is not None:
        name = getattr(origin, "__name__", str(origin))
        return f"{name}[{', '.join(_type(arg, anchors) for arg in args)}]"
    if annotation is type(None):
        return "none"
    if isinstance(annotation, type):
        if issubclass(annotation, enum.Enum):
            return " \\| ".join(f"`{member.value}`" for member in annotation)
        return annotation.__name__
    return re.sub(r"\b[a-z_]+\.", "", str(annotation))


def _default(field: Any) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
        if isinstance(value, BaseModel):
            return "see below"
        return f"`{value!r}`" if value not in ({}, []) else "empty"
    if field.default is PydanticUndefined or field.default is None:
        return ""
    value = field.default
    value = getattr(value, "value", value)
    return f"`{value}`"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _model_section(
    model: type[BaseModel], anchors: dict[type[BaseModel], str], level: str = "###"
) -> list[str]:
    lines = [f"{level} {model.__name__} {{#{anchors[model]}}}", ""]
    doc = (model.__doc__ or "").strip()
    if doc and not doc.startswith(("Usage docs:", "!!! abstract")):
        lines += [_cell(doc.split("\n\n")[0]), ""]
    extra = model.model_config.get("extra")
    if extra == "allow":
        lines += ["Keys not listed here are passed on to the system's kind (see its settings).", ""]
    fields = [(field.alias or name, field) for name, field in model.model_fields.items()]
    fields = [(key, field) for key, field in fields if not field.exclude]
    rows = []
    for key, field in fields:
        shown = typing.Annotated[field.annotation, *field.metadata] if field.metadata else None
        row = f"| `{key}` | {_type(shown or field.annotation, anchors)} | {_default(field)} |"
        rows.append(row + f" {_cell(field.description or '')} |")
    if rows:
        header = "| key | type | default | what it does |"
        lines += [header, "|---" * (header.count("|") - 1) + "|"]
        lines += [*rows, ""]
    return lines


def _kind_descriptors() -> list[Any] | None:
    """The registered kinds' descriptors, or None when this version has no registry."""
    for module_name, function in (("samband.plugin", "all_kinds"), ("samband.kinds", "all_kinds")):
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        registry = getattr(module, function, None)
        if registry is None:
            continue
        try:
            kinds = registry(include_test_only=False)
        except TypeError:
            kinds = registry()
        values = list(kinds.values()) if isinstance(kinds, dict) else list(kinds)
        return sorted(values, key=lambda kind: getattr(kind, "name", ""))
    return None


def render() -> str:
    from samband.config.model import Config

    top = _walk(Config, [])
    anchors = {model: _anchor(model) for model in top}
    lines = [
        "# Configuration reference",
        "",
        "<!-- Generated by docs/gen_config.py from the pydantic models; do not edit. -->",
        "",
        "Every key of the config file, with its type, its default and what it does, as the models",
        "that read it declare them. How to write a config: [Configuration](../configuration.md).",
        "",
        "## The config file",
        "",
    ]
    for model in top:
        lines += _model_section(model, anchors)
    kinds = _kind_descriptors()
    lines += ["## Settings of each system kind", ""]
    if kinds is None:
        lines += [
            "The settings a kind reads beside `kind:` (URLs, rate limits, entity type",
            "settings) are described on the page of each system: "
            + ", ".join(
                f"[{title}](../systems/{page}.md)"
                for title, page in (
                    ("PowerOffice GO", "poweroffice"),
                    ("Exact Online", "exact"),
                    ("WebCRM", "webcrm"),
                    ("CRMOffice", "crmoffice"),
                    ("SQL", "sql"),
                    ("REST", "rest"),
                )
            )
            + ".",
            "",
        ]
    else:
        for kind in kinds:
            name = getattr(kind, "name", "?")
            title = getattr(kind, "title", name)
            lines += [f"### `kind: {name}` ({title})", ""]
            credentials = getattr(kind, "credentials", ())
            if credentials:
                lines += [
                    "Credentials: " + ", ".join(f"`{c}`" for c in credentials) + ".",
                    "",
                ]
            models = _kind_models(kind)
            # a model shared by several kinds (a rate limit) is described once, then linked
            models = [model for model in models if model not in anchors]
            anchors.update({model: _anchor(model, f"{name}-") for model in models})
            for model in models:
                lines += _model_section(model, anchors, level="####")
    return "\n".join(lines).rstrip("\n") + "\n"


def _kind_models(kind: Any) -> list[type[BaseModel]]:
    """A kind's settings model and entity-type model, with the models they hold."""
    models: list[type[BaseModel]] = []
    for attribute in ("settings", "entity_type_settings"):
        model = getattr(kind, attribute, None)
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            continue
        if attribute == "entity_type_settings" and not model.model_fields:
            continue
        models += [inner for inner in _walk(model, []) if inner not in models]
    return models


def undescribed() -> list[str]:
    """The keys the page lists without a description (``Model.key``): each field of the
    models needs a docstring or ``Field(description=...)``."""
    from samband.config.model import Config

    models = _walk(Config, [])
    for kind in _kind_descriptors() or []:
        models += [model for model in _kind_models(kind) if model not in models]
    return [
        f"{model.__name__}.{field.alias or name}"
        for model in models
        for name, field in model.model_fields.items()
        if not field.exclude and not (field.description or "").strip()
    ]


def write(page: Path = PAGE) -> bool:
    """Write the page if it changed; True when it did."""
    text = render()
    if page.exists() and page.read_text(encoding="utf-8") == text:
        return False
    page.parent.mkdir(parents=True, exist_ok=True)
    page.write_text(text, encoding="utf-8")
    return True


if __name__ == "__main__":
    if "--check" in sys.argv:
        current = PAGE.read_text(encoding="utf-8") if PAGE.exists() else ""
        sys.exit(0 if current == render() else 1)
    write()
